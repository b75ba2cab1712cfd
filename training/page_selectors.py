"""Reads for the training pages, beside training/selectors.py: a filtered list, metric points after a cursor
(the live page appends only what is new), and several jobs' series at once (the compare page)."""

from typing import Any

from django.db.models import QuerySet

from .models import JobMetric, TrainingJob
from .selectors import job_list, prompt_sets_usable

Series = dict[str, dict[str, list[list[float]]]]  # {split: {metric: [[step, value], ...]}}


def job_list_filtered(*, user, status: str = "", kind: str = "") -> QuerySet[TrainingJob]:
    """The user's jobs (selectors.job_list), narrowed by status and kind, with their inputs prefetched."""
    jobs = job_list(user=user).prefetch_related("exports", "prompt_sets")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs


def _add_point(series: Series, step: int, split: str, values: Any) -> None:
    if not isinstance(values, dict):
        return
    by_name = series.setdefault(split, {})
    for name, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            by_name.setdefault(name, []).append([step, value])


def job_metric_points_after(*, job: TrainingJob, after: int = 0) -> tuple[Series, int]:
    """The job's metric points with id > ``after`` as a series, and the last id read (``after`` if none)."""
    series: Series = {}
    last = after
    for pk, step, split, values in (JobMetric.objects.filter(job=job, pk__gt=after).order_by("pk")
                                    .values_list("pk", "step", "split", "values")):
        _add_point(series, step, split, values)
        last = pk
    return series, last


def job_metric_series_many(*, jobs: list[TrainingJob]) -> dict[int, Series]:
    """{job id: series} for several (already visible) jobs in one query."""
    out: dict[int, Series] = {job.pk: {} for job in jobs}
    for job_id, step, split, values in (JobMetric.objects.filter(job__in=[j.pk for j in jobs]).order_by("pk")
                                        .values_list("job_id", "step", "split", "values")):
        _add_point(out[job_id], step, split, values)
    return out


def job_exports(*, job: TrainingJob) -> list:
    """The job's input snapshots with their campaigns, in id order."""
    return list(job.exports.select_related("campaign").order_by("pk"))


def job_prompt_sets(*, job: TrainingJob) -> list:
    """The job's prompt sets with their spec versions, in id order."""
    return list(job.prompt_sets.select_related("spec_version__spec").order_by("pk"))


def launch_choices(*, user) -> tuple[list, list]:
    """What the launch form offers beside the exports: the prompt sets and the registry's models ``user`` may use."""
    from rewardmodels.selectors import reward_model_list

    prompt_sets = list(prompt_sets_usable(user=user).select_related("spec_version__spec", "created_by").order_by("-created_at", "-id")[:500])
    return prompt_sets, list(reward_model_list(user=user)[:500])


def jobs_category_order(*, jobs: list[TrainingJob]) -> list[str]:
    """The category keys of the first spec version among the jobs' prompt sets, in the document's order (one query)."""
    from safety.models import PromptSet

    first = (PromptSet.objects.filter(training_jobs__in=[j.pk for j in jobs]).select_related("spec_version")
             .order_by("pk").first())
    if first is None:
        return []
    return [c.get("key") for c in first.spec_version.document.get("categories") or [] if isinstance(c, dict)]
