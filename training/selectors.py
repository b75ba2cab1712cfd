"""Reads of training jobs: who sees which job, its metric series and its log tail."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from labeling import selectors as labeling_selectors
from labeling.models import ExportSnapshot
from specloop import roles

from .models import JobLog, JobMetric, TrainingJob


def prompt_sets_usable(*, user) -> QuerySet:
    """The prompt sets ``user`` may read and so name as a job's input (the safety app's own rule when it has one)."""
    try:
        from safety.selectors import prompt_set_list
    except ImportError:  # before the safety app's reads exist: admins and the policy team read every set
        from safety.models import PromptSet

        return PromptSet.objects.all() if roles.has_role(user, roles.ADMIN, roles.POLICY) else PromptSet.objects.none()
    return prompt_set_list(user=user)


def job_list(*, user) -> QuerySet[TrainingJob]:
    """Admins see every job; a policy user the jobs whose every input export and prompt set they can see."""
    qs = TrainingJob.objects.select_related("created_by", "reward_model")
    if roles.has_role(user, roles.ADMIN):
        return qs
    if roles.has_role(user, roles.POLICY):
        from safety.models import PromptSet

        hidden = ExportSnapshot.objects.exclude(pk__in=labeling_selectors.export_list(user=user).values("pk"))
        hidden_sets = PromptSet.objects.exclude(pk__in=prompt_sets_usable(user=user).values("pk"))
        return qs.exclude(exports__in=hidden).exclude(prompt_sets__in=hidden_sets)
    return qs.none()


def job_get(*, user, job_id: Any) -> TrainingJob:
    try:
        return job_list(user=user).get(pk=job_id)
    except (TrainingJob.DoesNotExist, ValueError, TypeError):
        raise Http404("No such training job.") from None


def job_metric_series(*, job: TrainingJob) -> dict[str, dict[str, list[list[float]]]]:
    """{split: {metric: [[step, value], ...]}}: numbers only, ready to plot."""
    series: dict[str, dict[str, list[list[float]]]] = {}
    for step, split, values in JobMetric.objects.filter(job=job).values_list("step", "split", "values"):
        by_name = series.setdefault(split, {})
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                by_name.setdefault(name, []).append([step, value])
    return series


def job_logs(*, job: TrainingJob, after: int = 0, limit: int = 200) -> list[JobLog]:
    """Log lines after id ``after``; with no ``after``, the last ``limit`` lines (the tail)."""
    qs = JobLog.objects.filter(job=job)
    if after:
        return list(qs.filter(pk__gt=after)[:limit])
    return list(reversed(qs.order_by("-id")[:limit]))
