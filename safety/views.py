"""Safety pages for admins and the policy team: prompt sets (list, detail, import with a progress bar, the spec's
examples in one click), guards (list, create) and a guard's decision log with send-to-campaign.

Raters never see these pages (403); a set or guard outside the user's specs is a 404 through the selectors.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from labeling import selectors as labeling_selectors
from labeling.import_jobs import upload_discard
from labeling.views import spooled_upload
from rewardmodels import selectors as model_selectors
from rewardmodels.models import RewardModel
from specloop.errors import ValidationFailed
from specloop.roles import ADMIN, POLICY, role_required, user_roles
from taxonomy import selectors as spec_selectors

from . import import_jobs, selectors, services
from .forms import (
    DecisionFilterForm,
    GuardCreateForm,
    GuardTryForm,
    PromptSetImportForm,
    SendToCampaignForm,
    SpecExamplesForm,
)
from .prompt_imports import import_options_parse

LOG_PAGE = 50  # decisions per page of the log


def _is_admin(request: HttpRequest) -> bool:
    return ADMIN in user_roles(request.user)


def _versions(request: HttpRequest):
    return spec_selectors.spec_version_published_list(user=request.user)


def _version(request: HttpRequest, version_id: int):
    for version in _versions(request):
        if version.pk == version_id:
            return version.__class__.objects.select_related("spec").get(pk=version.pk)
    raise ValidationFailed.one("spec_version", "pick a published spec version you can see")


# --- prompt sets ----------------------------------------------------------------------------------


@role_required(POLICY, ADMIN)
def prompt_set_list_view(request: HttpRequest) -> HttpResponse:
    context = {"prompt_sets": list(selectors.prompt_set_list(user=request.user)[:500]), "can_manage": _is_admin(request)}
    if context["can_manage"]:
        versions = _versions(request)
        context.update(import_form=PromptSetImportForm(versions=versions), examples_form=SpecExamplesForm(versions=versions),
                       has_versions=bool(versions))
    return render(request, "safety/prompt_set_list.html", context)


@role_required(POLICY, ADMIN)
def prompt_set_detail_view(request: HttpRequest, prompt_set_id: int) -> HttpResponse:
    prompt_set = selectors.prompt_set_get(user=request.user, prompt_set_id=prompt_set_id)
    names = {c["key"]: c["name"] for c in prompt_set.spec_version.document["categories"]}
    labels = selectors.prompt_set_category_labels(prompt_set=prompt_set)
    by_category = [{"key": k, "name": names.get(k, k), "n": n, "labels": (labels or {}).get(k)}
                   for k, n in prompt_set.by_category.items()]
    return render(request, "safety/prompt_set_detail.html", {
        "prompt_set": prompt_set, "by_category": by_category, "category_names": names, "cross_tab": labels is not None,
        "by_label": [(label, prompt_set.by_label.get(label, 0)) for label in ("safe", "unsafe", "unknown")],
        "unmapped": sorted(prompt_set.unmapped.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": selectors.prompt_set_sample(prompt_set=prompt_set), "can_launch": _is_admin(request),
    })


@role_required(ADMIN)
@require_POST
def prompt_set_import_view(request: HttpRequest) -> HttpResponse:
    """The file is handed to an import job (its bar polls the job page); a form error names the field."""
    form = PromptSetImportForm(request.POST, request.FILES, versions=_versions(request))
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ValidationFailed.one(field, errors[0])
    upload = form.cleaned_data["file"]
    data = form.cleaned_data
    fmt = form.fmt(upload.name)
    options = import_options_parse(fmt=fmt, values={k: data[k] for k in (
        "label", "prompt_column", "label_column", "category_column", "code_column", "taxonomy")},
        response_columns=form.response_column_list()).as_dict()
    services._checked_name(data["name"])
    version = _version(request, data["spec_version"])
    path, size = spooled_upload(upload)
    try:
        job = import_jobs.prompt_set_import_job_create(
            user=request.user, name=data["name"], spec_version=version, upload=path, size=size,
            options={**options, "filename": upload.name[:200]})
    except BaseException:
        upload_discard(path)
        raise
    job.refresh_from_db()  # without a worker it may have run already
    if request.htmx:
        return render(request, "safety/import_job.html#job", {"entry": import_jobs.prompt_set_import_entry(job)},
                      status=202)
    return redirect("safety:import-job", job.pk)


@role_required(ADMIN)
def prompt_set_import_job_view(request: HttpRequest, job_id: int) -> HttpResponse:
    """An import's progress: the bar polls this every second (htmx) until the job ends."""
    job = selectors.prompt_set_import_get(user=request.user, job_id=job_id)
    entry = import_jobs.prompt_set_import_entry(job)
    if request.htmx:
        return render(request, "safety/import_job.html#job", {"entry": entry})
    return render(request, "safety/import_job.html", {"entry": entry})


@role_required(ADMIN)
@require_POST
def prompt_set_from_spec_view(request: HttpRequest) -> HttpResponse:
    form = SpecExamplesForm(request.POST, versions=_versions(request))
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ValidationFailed.one(field, errors[0])
    version = _version(request, form.cleaned_data["spec_version"])
    prompt_set = services.prompt_set_from_spec_examples(user=request.user, spec_version=version,
                                                        name=form.cleaned_data["name"] or None)
    messages.success(request, f"Prompt set “{prompt_set.name}”: {prompt_set.n_prompts} examples of {version}.")
    return redirect("safety:prompt-set", prompt_set.pk)


# --- guards ---------------------------------------------------------------------------------------


def _guard_form(request: HttpRequest, data=None) -> GuardCreateForm:
    models = list(model_selectors.reward_model_list(user=request.user))
    return GuardCreateForm(data, classifiers=[m for m in models if m.kind == RewardModel.SAFETY],
                           cost_models=[m for m in models if m.kind == RewardModel.COST], versions=_versions(request))


@role_required(POLICY, ADMIN)
@require_http_methods(["GET", "POST"])
def guard_list_view(request: HttpRequest) -> HttpResponse:
    is_admin = _is_admin(request)
    if request.method == "POST" and not is_admin:
        raise PermissionDenied("Creating guards needs the admin role.")
    form = _guard_form(request, request.POST or None) if is_admin else None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            classifier = model_selectors.reward_model_get(user=request.user, model_id=data["safety_classifier"])
            cost_model = (model_selectors.reward_model_get(user=request.user, model_id=data["cost_model"])
                          if data["cost_model"] else None)
            version = _version(request, data["spec_version"]) if data["spec_version"] else None
            guard = services.guard_create(user=request.user, name=data["name"], safety_classifier=classifier,
                                          spec_version=version, cost_model=cost_model,
                                          log_decisions=data["log_decisions"])
        except ValidationFailed as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Created the guard “{guard.name}” (id {guard.pk}).")
            return redirect("safety:guard", guard.pk)
    guards = list(selectors.guard_list(user=request.user)[:200])
    return render(request, "safety/guard_list.html", {"guards": guards, "form": form},
                  status=400 if form is not None and form.errors else 200)


def _guard_context(request: HttpRequest, guard) -> dict:
    filter_form = DecisionFilterForm(request.GET or None)
    decision = filter_form.cleaned_data["decision"] if filter_form.is_valid() else ""
    page = Paginator(selectors.guard_decision_list(guard=guard, decision=decision or None), LOG_PAGE).get_page(
        request.GET.get("page"))
    campaigns = list(labeling_selectors.campaign_list(user=request.user))
    return {
        "guard": guard, "page": page, "filter_form": filter_form, "decision": decision,
        "counts": selectors.guard_decision_counts(guard=guard), "try_form": GuardTryForm(),
        "send_form": SendToCampaignForm(campaigns=campaigns) if campaigns else None,
    }


@role_required(POLICY, ADMIN)
def guard_detail_view(request: HttpRequest, guard_id: int) -> HttpResponse:
    """The guard, a try-it form and its decision log (filter by decision; tick decisions and send them to a campaign)."""
    guard = selectors.guard_get(user=request.user, guard_id=guard_id)
    return render(request, "safety/guard_detail.html", _guard_context(request, guard))


@role_required(POLICY, ADMIN)
@require_POST
def guard_try_view(request: HttpRequest, guard_id: int) -> HttpResponse:
    """One (prompt, response?) judged by the guard, as the API would answer it; not logged."""
    guard = selectors.guard_get(user=request.user, guard_id=guard_id)
    form = GuardTryForm(request.POST)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ValidationFailed.one(field, errors[0])
    item = {"prompt": form.cleaned_data["prompt"], "response": form.cleaned_data["response"] or None}
    result = services.guard_score(guard=guard, items=[item], user=request.user, log=False)[0]
    if request.htmx:
        return render(request, "safety/guard_detail.html#try-result", {"result": result})
    return render(request, "safety/guard_detail.html", {**_guard_context(request, guard), "result": result,
                                                        "try_form": form})


@role_required(POLICY, ADMIN)
@require_POST
def guard_send_view(request: HttpRequest, guard_id: int) -> HttpResponse:
    guard = selectors.guard_get(user=request.user, guard_id=guard_id)
    campaigns = list(labeling_selectors.campaign_list(user=request.user))
    form = SendToCampaignForm(request.POST, campaigns=campaigns)
    if not form.is_valid():
        raise ValidationFailed.one("campaign", "pick a campaign you can see")
    campaign = next(c for c in campaigns if c.pk == form.cleaned_data["campaign"])
    outcome = services.guard_decisions_send_to_campaign(user=request.user, guard=guard,
                                                        decision_ids=form.decision_ids(), campaign=campaign)
    if request.htmx:
        return render(request, "safety/guard_detail.html#send-result", {"outcome": outcome, "campaign": campaign})
    messages.success(request, f"Sent {outcome['sent']} decisions to “{campaign.name}”: {outcome['created_items']} new "
                              f"items, {outcome['created_tasks']} tasks; {len(outcome['skipped'])} prompts could not "
                              "become items.")
    for skipped in outcome["skipped"][:10]:
        messages.warning(request, f"Not sent: “{skipped['prompt'][:80]}” (decisions {', '.join(map(str, skipped['decisions']))}): "
                                  f"{skipped['reason']}.")
    return redirect(reverse("safety:guard", args=[guard.pk]) + "#log")
