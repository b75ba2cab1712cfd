"""Training pages: the job list, the launch form, the live job page (htmx polling), cancel, and compare.

Admins and the policy team read them (raters 403); launching and cancelling need admin. A job the user
cannot see is a 404 through the selectors.
"""

import json
import uuid
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from labeling import selectors as labeling_selectors
from specloop.errors import Conflict, ServiceUnavailable, ValidationFailed
from specloop.roles import ADMIN, POLICY, has_role, role_required

from . import eval_pages, page_selectors, selectors, services
from .forms import JobLaunchForm, kind_defaults
from .models import TrainingJob

PAGE_SIZE = 50
POLL_SECONDS = 2
MAX_COMPARE = 8
STATUSES = [s for s, _ in TrainingJob.STATUS_CHOICES]
KINDS = [k for k, _ in TrainingJob.KIND_CHOICES]


# --- small formatting helpers (also used by the model pages) ------------------------------------------


def duration_label(seconds: float | None) -> str:
    """1 h 02 min, 3 min 20 s, 12 s; empty when unknown."""
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def number(value: Any) -> float | None:
    """A metric value when it is a number (metrics dicts come from the ml package: tolerate anything)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def percent(value: Any) -> str:
    value = number(value)
    return "" if value is None else f"{100 * value:.1f}%"


def _job_row(job: TrainingJob) -> dict[str, Any]:
    return {
        "job": job,
        "exports": list(job.exports.all()),
        "prompt_sets": list(job.prompt_sets.all()),
        "duration": duration_label(job.seconds),
        "accuracy": percent((job.final_metrics or {}).get("accuracy")),
        "over_refusal": percent((job.final_metrics or {}).get("over_refusal")),
        "refusal_accuracy": percent(((job.final_metrics or {}).get("response_refusal") or {}).get("accuracy")),
        "progress_pct": round(100 * job.progress),
    }


# --- list --------------------------------------------------------------------------------------------


@role_required(POLICY, ADMIN)
def job_list_view(request: HttpRequest) -> HttpResponse:
    services.training_jobs_reap()
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    status = status if status in STATUSES else ""
    kind = kind if kind in KINDS else ""
    jobs = page_selectors.job_list_filtered(user=request.user, status=status, kind=kind)
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page, "rows": [_job_row(j) for j in page], "status": status, "kind": kind,
        "status_choices": STATUSES, "kind_choices": TrainingJob.KIND_CHOICES,
        "can_launch": has_role(request.user, ADMIN), "filtered": bool(status or kind),
        # While a listed job is queued or running, the table refreshes itself (see the template).
        "live": any(j.status in (TrainingJob.QUEUED, TrainingJob.RUNNING) for j in page),
    }
    return render(request, "training/job_list.html#job-table" if request.htmx else "training/job_list.html", context)


# --- launch ------------------------------------------------------------------------------------------


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def job_new_view(request: HttpRequest) -> HttpResponse:
    exports = list(labeling_selectors.export_list(user=request.user)[:500])
    prompt_sets, registry = page_selectors.launch_choices(user=request.user)
    initial = {"exports": [int(i) for i in request.GET.getlist("exports") if i.isdigit()],
               "prompt_sets": [int(i) for i in request.GET.getlist("prompt_sets") if i.isdigit()],
               "idempotency_key": uuid.uuid4().hex}
    if request.GET.get("kind") in services.RUNNABLE_KINDS:
        initial["kind"] = request.GET["kind"]
    choices = {"exports": exports, "prompt_sets": prompt_sets, "registry": registry}
    form = JobLaunchForm(request.POST or None, initial=initial, **choices)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = services.training_job_create(user=request.user, **form.service_kwargs())
        except ValidationFailed as error:
            form.add_service_errors(error)
        except ServiceUnavailable as error:  # the form stays filled in, to submit again later
            form.add_error(None, error.message)
            status = error.status_code
        except Conflict as error:  # this form's key made a job with other settings (back, edit, submit)
            data = request.POST.copy()
            data["idempotency_key"] = uuid.uuid4().hex  # submitting again is a deliberate new launch
            form = JobLaunchForm(data, initial=initial, **choices)
            form.is_valid()
            form.add_error(None, f"This form already launched job {error.detail.get('job')} with other settings; "
                                 "submit again to launch another job.")
            status = error.status_code
        else:
            if job.replayed:
                messages.info(request, f"This form already launched job {job.pk}; no second job was made.")
            else:
                messages.success(request, f"Job {job.pk} queued: it starts when a worker is free.")
            return redirect("training:detail", job.pk)
    return render(request, "training/job_new.html", {
        "form": form, "exports": exports, "picked": {str(p) for p in form["exports"].value() or []},
        "prompt_sets": prompt_sets, "picked_sets": {str(p) for p in form["prompt_sets"].value() or []},
        "defaults": kind_defaults(), "runnable": form.runnable, "service_error": status != 200,
    }, status=status if status != 200 else 400 if form.errors else 200)


# --- the live job page -------------------------------------------------------------------------------


def _cursor(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _live_context(job: TrainingJob, *, metrics_after: int, logs_after: int, full: bool) -> dict[str, Any]:
    """What the polled fragment shows, plus the metric points and log lines after the page's cursors."""
    series, metrics_last = page_selectors.job_metric_points_after(job=job, after=metrics_after)
    logs = selectors.job_logs(job=job, after=logs_after)
    started, created = job.started_at, job.created_at
    evaluation, prompt_sets = None, []
    if job.kind == TrainingJob.EVALUATION and job.status == TrainingJob.SUCCEEDED:
        prompt_sets = page_selectors.job_prompt_sets(job=job)
        order = eval_pages.spec_order(prompt_sets[0].spec_version) if prompt_sets else []
        evaluation = eval_pages.evaluation_summary(job.final_metrics, order)
    return {
        "job": job,
        "evaluation": evaluation,
        "prompt_sets": prompt_sets,
        "has_items": any(a.get("name") == "items.jsonl" for a in job.artifacts or []),
        "model": getattr(job, "reward_model", None) if job.status == TrainingJob.SUCCEEDED else None,
        "live": not job.is_finished,
        "poll_seconds": POLL_SECONDS,
        "progress_pct": round(100 * job.progress, 1),
        "eta": duration_label(job.eta_seconds),
        "duration": duration_label(job.seconds),
        "waited": duration_label((started - created).total_seconds()) if started else "",
        "final_metrics": metric_rows(job.final_metrics),
        "series": series,
        "new_series": series if not full and series else None,
        "metrics_after": metrics_last,
        "logs": logs,
        "logs_after": logs[-1].pk if logs else logs_after,
    }


FIRST_METRICS = ("accuracy", "sign_accuracy", "loss")


def metric_rows(metrics: Any) -> list[dict[str, Any]]:
    """Scalar held-out metrics as rows, accuracy first; nested ones by their scalar leaves (calibration.ece)."""
    rows = []
    if not isinstance(metrics, dict):
        return rows
    for key, value in metrics.items():
        if (scalar := number(value)) is not None:
            rows.append({"key": key, "value": scalar})
        elif isinstance(value, dict) and key != "per_category":
            rows.extend({"key": f"{key}.{k}", "value": number(v)} for k, v in value.items() if number(v) is not None)
    rank = {key: n for n, key in enumerate(FIRST_METRICS)}
    return sorted(rows, key=lambda r: (rank.get(r["key"], len(rank)), r["key"]))


def config_value(value: Any) -> str:
    """A config value as the API and the launch form spell it: text as is, the rest as JSON (true, 2e-05)."""
    return value if isinstance(value, str) else json.dumps(value)


def config_rows(config: Any) -> list[tuple[str, str]]:
    return sorted((k, config_value(v)) for k, v in config.items()) if isinstance(config, dict) else []


@role_required(POLICY, ADMIN)
def job_detail_view(request: HttpRequest, job_id: int) -> HttpResponse:
    services.training_jobs_reap()
    job = selectors.job_get(user=request.user, job_id=job_id)
    can_cancel = has_role(request.user, ADMIN)
    if request.htmx:  # the page's poll: the live fragment, new log lines and metric points after its cursors
        context = _live_context(job, metrics_after=_cursor(request.GET.get("metrics_after")),
                                logs_after=_cursor(request.GET.get("logs_after")), full=False)
        return render(request, "training/job_detail.html#job-live", {**context, "can_cancel": can_cancel,
                                                                     "append": True})
    context = _live_context(job, metrics_after=0, logs_after=0, full=True)
    exports, prompt_sets = page_selectors.job_exports(job=job), page_selectors.job_prompt_sets(job=job)
    return render(request, "training/job_detail.html", {
        **context, "can_cancel": can_cancel, "exports": exports, "prompt_sets": prompt_sets,
        "n_inputs": len(exports) + len(prompt_sets) + len(job.data_files or []),
        "config_rows": config_rows(job.config),
        "chart_data": {"series": context["series"], "live": context["live"]},
    })


@role_required(ADMIN)
@require_POST
def job_cancel_view(request: HttpRequest, job_id: int) -> HttpResponse:
    job = services.training_job_cancel(job=selectors.job_get(user=request.user, job_id=job_id), user=request.user)
    if not request.htmx:
        messages.success(request, f"Job {job.pk}: {'cancelled' if job.is_finished else 'cancel requested'}.")
        return redirect("training:detail", job.pk)
    context = _live_context(job, metrics_after=_cursor(request.POST.get("metrics_after")),
                            logs_after=_cursor(request.POST.get("logs_after")), full=False)
    return render(request, "training/job_detail.html#job-live", {**context, "can_cancel": True, "append": True})


# --- compare -----------------------------------------------------------------------------------------


def _same(values: list[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def _best(key: str, values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if len(set(present)) < 2:  # nothing to pick between
        return None
    if "acc" in key:
        return max(present)
    if "loss" in key or "ece" in key or "harmful" in key or "over_refusal" in key:
        return min(present)
    return None


@role_required(POLICY, ADMIN)
def job_compare_view(request: HttpRequest) -> HttpResponse:
    ids = list(dict.fromkeys(request.GET.getlist("jobs")))
    if len(ids) < 2 or not all(i.isdigit() for i in ids):
        raise ValidationFailed.one("jobs", "tick two or more jobs in the list to compare them")
    if len(ids) > MAX_COMPARE:
        raise ValidationFailed.one("jobs", f"compare at most {MAX_COMPARE} jobs at a time")
    found = {j.pk: j for j in selectors.job_list(user=request.user).filter(pk__in=ids)}
    if len(found) != len(ids):
        raise Http404("No such training job.")
    jobs = [found[int(i)] for i in ids]
    series = page_selectors.job_metric_series_many(jobs=jobs)
    keys = sorted({k for j in jobs for k in (j.config or {})})
    rows = []
    for key in keys:
        values = [(j.config or {}).get(key, "—") for j in jobs]
        rows.append({"key": key, "values": [config_value(v) for v in values], "differs": not _same(values)})
    per_job = [metric_rows(j.final_metrics) for j in jobs]
    metrics_table = []
    for key in dict.fromkeys(r["key"] for rows_of_job in per_job for r in rows_of_job):  # accuracy first
        values = [next((r["value"] for r in rows_of_job if r["key"] == key), None) for rows_of_job in per_job]
        best = _best(key, values)
        metrics_table.append({"key": key, "cells": [{"value": v, "best": v is not None and v == best} for v in values]})
    chart_data = {"jobs": [{"id": j.pk, "label": f"#{j.pk} {j.name}".strip(), "series": series[j.pk]} for j in jobs]}
    evaluations = all(j.kind == TrainingJob.EVALUATION for j in jobs)
    return render(request, "training/job_compare.html", {
        "evaluation": (eval_pages.evaluation_comparison(jobs, page_selectors.jobs_category_order(jobs=jobs))
                       if evaluations else None),
        "jobs": jobs, "config_rows": rows, "n_differ": sum(r["differs"] for r in rows),
        "metric_rows": metrics_table, "chart_data": chart_data,
        "durations": [duration_label(j.seconds) for j in jobs],
    })
