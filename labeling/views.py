"""Campaign pages for admins and the policy team: progress, raters, item import, exports, agreement.

Raters never see these pages (403); a campaign outside the user's specs is a 404 through the selectors.
"""

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from specloop.errors import ValidationFailed
from specloop.roles import ADMIN, POLICY, role_required, user_roles
from taxonomy import selectors as spec_selectors

from . import selectors, services
from .dialogue import dialogue_turns, reply_is_empty
from .forms import (
    PREFERENCE_CHOICES,
    AdjudicationForm,
    CampaignCreateForm,
    ExportCreateForm,
    ItemImportForm,
    RatersAddForm,
)
from .import_jobs import (
    import_job_create,
    import_job_entry,
    import_job_get,
    import_jobs_running,
    import_run,
    runs_as_job,
    upload_discard,
    upload_path,
    upload_spool,
)
from .imports import check_size, detect_format_file
from .models import Campaign, ImportJob

QUEUE_PAGE = 20  # disputed tasks shown before "show all"
ALPHA_GOOD, ALPHA_TENTATIVE = 0.8, 0.667  # Krippendorff's usual thresholds
DIRECTION_LABELS = {-2: "X ≫", -1: "X >", 0: "=", 1: "Y >", 2: "Y ≫"}
PREFERENCE_LABELS = dict(PREFERENCE_CHOICES)


# --- campaign list -----------------------------------------------------------------------------------


@role_required(POLICY, ADMIN)
@require_http_methods(["GET", "POST"])
def campaign_list_view(request: HttpRequest) -> HttpResponse:
    is_admin = ADMIN in user_roles(request.user)
    if request.method == "POST" and not is_admin:
        raise PermissionDenied("Creating campaigns needs the admin role.")
    form = CampaignCreateForm(request.POST or None, versions=spec_selectors.spec_version_published_list(user=request.user)) if is_admin else None
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(user=request.user, **form.service_kwargs())
        except ValidationFailed as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Created the campaign “{campaign.name}”. Add raters and import items next.")
            return redirect("campaigns:detail", campaign.pk)
    campaigns = selectors.campaign_list_with_progress(user=request.user)
    return render(request, "labeling/campaign_list.html", {"campaigns": campaigns, "form": form},
                  status=400 if form is not None and form.errors else 200)


# --- campaign page ------------------------------------------------------------------------------------


def _per_day_series(per_day: list[dict[str, Any]], days: int = 30) -> list[dict[str, Any]]:
    """Judgments per day for the last ``days`` days up to today, zeros included, from the first active day."""
    if not per_day:
        return []
    counts = {row["day"]: row["n"] for row in per_day}
    today = timezone.now().date()
    start = max(date.fromisoformat(per_day[0]["day"]), today - timedelta(days=days - 1))
    start = min(start, today - timedelta(days=6))  # at least a week, so one busy day is not one fat bar
    return [{"day": (start + timedelta(d)).isoformat(), "n": counts.get((start + timedelta(d)).isoformat(), 0)}
            for d in range((today - start).days + 1)]


def _progress_context(campaign: Campaign) -> dict[str, Any]:
    progress = selectors.campaign_progress(campaign=campaign)
    total = progress["tasks"]
    return {
        "progress": progress,
        "done_pct": round(100 * progress["tasks_done"] / total) if total else 0,
        "judged_pct": round(100 * progress["judgments"] / progress["judgments_needed"]) if progress["judgments_needed"] else 0,
        "progress_chart": {"per_day": _per_day_series(progress["per_day"])},
    }


def _raters_context(campaign: Campaign) -> dict[str, Any]:
    return {"raters": list(campaign.raters.order_by("username").values_list("username", flat=True))}


def _exports_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    return {"exports": list(selectors.export_list(user=request.user, campaign=campaign))}


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    return selectors.campaign_get(user=request.user, campaign_id=campaign_id)


@role_required(POLICY, ADMIN)
def campaign_detail_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    is_admin = ADMIN in user_roles(request.user)
    context = {
        "campaign": campaign,
        "can_manage": is_admin,
        "timeout_label": _duration(campaign.assignment_timeout_seconds),
        **_progress_context(campaign),
        **_raters_context(campaign),
        **_exports_context(request, campaign),
    }
    if is_admin:
        context.update(
            raters_form=RatersAddForm(), import_form=ItemImportForm(),
            import_jobs=import_jobs_running(user=request.user, campaign=campaign),
            export_form=ExportCreateForm(categories=campaign.spec_version.document["categories"]),
        )
    return render(request, "labeling/campaign_detail.html", context)


def _back_to(campaign: Campaign, anchor: str) -> HttpResponse:
    return redirect(reverse("campaigns:detail", args=[campaign.pk]) + f"#{anchor}")


@role_required(ADMIN)
@require_POST
def raters_add_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = RatersAddForm(request.POST)
    if not form.is_valid() or not form.usernames_list():
        raise ValidationFailed.one("usernames", "type one or more rater usernames, separated by commas or spaces")
    added = form.usernames_list()
    services.campaign_raters_add(campaign=campaign, usernames=added)
    message = f"Added {', '.join(added)}." if len(added) < 6 else f"Added {len(added)} raters."
    if not request.htmx:
        messages.success(request, message)
        return _back_to(campaign, "raters")
    return render(request, "labeling/campaign_detail.html#raters-card", {
        "campaign": campaign, "can_manage": True, "raters_form": RatersAddForm(), "message": message,
        **_raters_context(campaign),
    })


def spooled_upload(upload) -> tuple[str, int]:
    """A form's file copied in chunks under MEDIA_ROOT (Django spools a large upload to disk, never to memory).
    (Its path relative to MEDIA_ROOT, bytes); the caller removes it or hands it to an import job."""
    check_size(upload.size, field="file")  # refused before copying it
    path, size = upload_spool(upload.chunks(), field="file")
    if not size:
        upload_discard(path)
        raise ValidationFailed.one("file", "the file is empty")
    return path, size


def import_job_started(request: HttpRequest, job: ImportJob) -> HttpResponse:
    """A large upload handed to a job: its progress bar (htmx), or its page."""
    job.refresh_from_db()  # without a worker it may have run already
    if request.htmx:
        return _job_fragment(request, job, status=202)
    messages.info(request, "The file is large: it is imported in the background. This page shows its progress.")
    return redirect("campaigns:import-job", job.pk)


@role_required(ADMIN)
@require_POST
def items_import_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = ItemImportForm(request.POST, request.FILES)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        missing = field == "file" and "required" in errors[0]
        raise ValidationFailed.one(field, "choose an item file to upload" if missing else errors[0])
    upload = form.cleaned_data["file"]
    path, size = spooled_upload(upload)
    handed = False
    try:
        fmt = form.cleaned_data["format"]
        if fmt == "auto":
            with open(upload_path(path), "rb") as source:
                fmt = detect_format_file(source)
        options = {"format": fmt, "keep_empty": form.cleaned_data["keep_empty"], "filename": upload.name[:200]}
        if runs_as_job(size):
            job = import_job_create(user=request.user, kind=ImportJob.ITEMS, upload=path, size=size, options=options,
                                    campaign=campaign)
            handed = True
            return import_job_started(request, job)
        result = import_run(kind=ImportJob.ITEMS, user=request.user, upload=path, options=options, campaign=campaign)
    finally:
        if not handed:
            upload_discard(path)
    summary = {"fmt": fmt, "name": upload.name, **result.as_dict()}
    if not request.htmx:
        messages.success(request, f"Imported {summary['name']} ({fmt}): {result.created_items} new items, "
                                  f"{result.created_tasks} tasks, {result.duplicates} duplicates skipped.")
        return _back_to(campaign, "import")
    context = {"campaign": campaign, "summary": summary, **_progress_context(campaign), "oob": True}
    response = render(request, "labeling/campaign_detail.html#import-result", context)
    response.write(render(request, "labeling/campaign_detail.html#progress-card", context).content)
    return response


@role_required(ADMIN)
def import_job_view(request: HttpRequest, job_id: int) -> HttpResponse:
    """A large import's progress: the bar polls this every second (htmx) until the job ends."""
    job = import_job_get(user=request.user, job_id=job_id)
    if not request.htmx:
        return render(request, "labeling/import_job.html", {"entry": import_job_entry(job)})
    return _job_fragment(request, job)


def _job_fragment(request: HttpRequest, job: ImportJob, status: int = 200) -> HttpResponse:
    """The job's bar or outcome; once items are in, the campaign's progress card too (swapped out of band)."""
    response = render(request, "labeling/import_job.html#job", {"entry": import_job_entry(job)}, status=status)
    if job.status == ImportJob.SUCCEEDED and job.campaign is not None:
        context = {"campaign": job.campaign, **_progress_context(job.campaign), "oob": True}
        response.write(render(request, "labeling/campaign_detail.html#progress-card", context).content)
    return response


@role_required(ADMIN)
@require_POST
def export_create_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = ExportCreateForm(request.POST, categories=campaign.spec_version.document["categories"])
    if not form.is_valid():
        if not request.htmx:
            raise ValidationFailed([{"field": f, "message": " ".join(e)} for f, e in form.errors.items()])
        response = render(request, "labeling/campaign_detail.html#export-form",
                          {"campaign": campaign, "export_form": form}, status=400)
        response["HX-Retarget"] = "#export-form"
        response["HX-Reswap"] = "outerHTML"
        return response
    export = services.export_snapshot_create(campaign=campaign, user=request.user, filters=form.filters())
    message = f"Export #{export.pk}: {export.n_pairs} pairs, {export.n_ties} ties left out."
    if not request.htmx:
        messages.success(request, message)
        return _back_to(campaign, "exports")
    return render(request, "labeling/campaign_detail.html#exports-table", {
        "campaign": campaign, "message": message, "fresh": export.pk, **_exports_context(request, campaign),
    })


# --- agreement ---------------------------------------------------------------------------------------


def _alpha_row(key: str, label: str, stats: dict[str, Any]) -> dict[str, Any]:
    alpha = stats["alpha"]
    if alpha is None:
        level = "none"
        why = ("undefined: no task has two judgments of this yet" if not stats["n_units"] else
               "undefined: every judgment gave the same value, so there is no variation to agree on")
    else:
        level = "good" if alpha >= ALPHA_GOOD else "tentative" if alpha >= ALPHA_TENTATIVE else "low"
        why = f"α = {alpha:.3f} over {stats['n_units']} units ({stats['n_values']} values)"
    return {"key": key, "label": label, "alpha": alpha, "n_units": stats["n_units"], "level": level, "why": why}


def _alpha_rows(agreement: dict[str, Any], document: dict[str, Any]) -> tuple[list, list]:
    axis_names = {a["key"]: a["name"] for a in document["rubric"]["axes"]}
    fields = [
        _alpha_row("preference", "Preference (5-point)", agreement["preference"]),
        _alpha_row("preference_direction", "Preference direction", agreement["preference_direction"]),
        _alpha_row("severity", "Severity", agreement["severity"]),
        *(_alpha_row(key, axis_names.get(key, key), stats) for key, stats in agreement["axes"].items()),
    ]
    names = {c["key"]: c["name"] for c in document["categories"]}
    categories = [
        {**_alpha_row(key, names.get(key, key), stats), "n_tagged": stats["n_tagged"]}
        for key, stats in agreement["categories"].items()
    ]
    return fields, categories


def _queue_rows(campaign: Campaign, task_ids: list[int]) -> list[dict[str, Any]]:
    """Disputed tasks with their texts, every judgment's direction and any adjudication, in the given order.

    Two queries whatever the length.
    """
    tasks, judgments = selectors.disputed_tasks_get(campaign=campaign, task_ids=task_ids)
    rows = []
    for task_id in task_ids:
        task = tasks.get(task_id)
        if task is None:
            continue
        own = judgments.get(task_id, [])
        marks = [{"rater": j.rater.username, "value": j.preference_xy, "label": DIRECTION_LABELS[j.preference_xy],
                  "side": "x" if j.preference_xy < 0 else "y" if j.preference_xy > 0 else "tie"} for j in own]
        directions = {"x": 0, "tie": 0, "y": 0}
        for mark in marks:
            directions[mark["side"]] += 1
        n = len(own)
        responses = task.item.responses
        adjudication = getattr(task, "adjudication", None)
        rows.append({
            "task": task,
            "prompt": task.item.prompt,
            "turns": dialogue_turns(task.item.prompt),
            "x": responses[task.x_index], "y": responses[task.y_index],
            "x_empty": reply_is_empty(responses[task.x_index]["text"] or ""),
            "y_empty": reply_is_empty(responses[task.y_index]["text"] or ""),
            "judgments": marks,
            "directions": directions,
            "n": n,
            "agreement": max(directions.values()) / n if n else None,
            "adjudication": adjudication,
            "adjudication_label": PREFERENCE_LABELS.get(adjudication.preference_xy) if adjudication else "",
            "_judgments": own,
        })
    return rows


def _adjudication_initial(row: dict[str, Any]) -> dict[str, Any]:
    """An earlier decision, else the raters' majority tags and mean severities (the preference is left to choose)."""
    adjudication = row["adjudication"]
    if adjudication is not None:
        return {"preference": adjudication.preference_xy, "categories_x": adjudication.categories_x,
                "categories_y": adjudication.categories_y, "severity_x": adjudication.severity_x,
                "severity_y": adjudication.severity_y, "note": adjudication.note}
    own = row["_judgments"]
    initial: dict[str, Any] = {}
    for side in ("x", "y"):
        tags: dict[str, int] = {}
        for j in own:
            for tag in getattr(j, f"categories_{side}"):
                tags[tag] = tags.get(tag, 0) + 1
        initial[f"categories_{side}"] = [t for t, c in tags.items() if 2 * c > len(own)]
        severities = [getattr(j, f"severity_{side}") for j in own if getattr(j, f"severity_{side}") is not None]
        initial[f"severity_{side}"] = round(sum(severities) / len(severities)) if severities else 0
    return initial


def _adjudication_form(row: dict[str, Any], document: dict[str, Any], data=None) -> AdjudicationForm:
    return AdjudicationForm(data, initial=_adjudication_initial(row), document=document, prefix_id=f"t{row['task'].pk}_")


@role_required(POLICY, ADMIN)
def agreement_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    document = campaign.spec_version.document
    agreement = selectors.campaign_agreement(campaign=campaign)
    progress = selectors.campaign_progress(campaign=campaign)
    fields, categories = _alpha_rows(agreement, document)
    disputed = agreement["disagreements"]
    show_all = request.GET.get("queue") == "all"
    queue = _queue_rows(campaign, [d["task"] for d in (disputed if show_all else disputed[:QUEUE_PAGE])])
    chart_data = {
        "fields": [{k: r[k] for k in ("label", "alpha", "n_units", "why")} for r in fields],
        "categories": [{k: r[k] for k in ("label", "alpha", "n_units", "why")} for r in categories],
        "per_day": _per_day_series(progress["per_day"]),
        "thresholds": [ALPHA_TENTATIVE, ALPHA_GOOD],
    }
    return render(request, "labeling/agreement.html", {
        "campaign": campaign, "agreement": agreement, "progress": progress, "fields": fields,
        "categories": categories, "chart_data": chart_data, "queue": queue, "n_disputed": len(disputed),
        "show_all": show_all, "queue_page": QUEUE_PAGE, "severity_scale": document["rubric"]["severity_scale"],
        "category_names": {c["key"]: c["name"] for c in document["categories"]},
    })


@role_required(POLICY, ADMIN)
@require_http_methods(["GET", "POST"])
def adjudication_view(request: HttpRequest, campaign_id: int, task_id: int) -> HttpResponse:
    """GET: the inline form (or a page without JavaScript). POST: save the decision, answer the marked task."""
    task = selectors.task_get(user=request.user, task_id=task_id)
    if task.campaign_id != campaign_id:
        raise Http404("No such task.")
    campaign = task.campaign
    document = campaign.spec_version.document
    row = _queue_rows(campaign, [task.pk])[0]
    form = _adjudication_form(row, document, request.POST if request.method == "POST" else None)
    context = {"campaign": campaign, "row": row, "form": form,
               "category_names": {c["key"]: c["name"] for c in document["categories"]},
               "severity_scale": document["rubric"]["severity_scale"]}
    if request.method == "POST":
        if form.is_valid():
            services.adjudication_save(task=task, user=request.user, data=form.data_for_service())
            if not request.htmx:
                messages.success(request, f"Task {task.pk} adjudicated.")
                return redirect(reverse("campaigns:agreement", args=[campaign.pk]) + f"#task-{task.pk}")
            context["row"] = _queue_rows(campaign, [task.pk])[0]
            context["message"] = "Saved: this decision overrides the raters' consensus in the next export."
            return render(request, "labeling/agreement.html#queue-item", context)
        if request.htmx:
            response = render(request, "labeling/agreement.html#adjudication-form", context, status=400)
            response["HX-Retarget"] = f"#adjudicate-{task.pk}"
            response["HX-Reswap"] = "innerHTML"
            return response
    if request.htmx:
        return render(request, "labeling/agreement.html#adjudication-form", context)
    return render(request, "labeling/adjudicate.html", context, status=400 if form.errors else 200)
