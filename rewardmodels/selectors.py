"""Reads of the model registry, with the same visibility as the jobs that made the models."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from training import selectors as training_selectors

from .models import RewardModel


def reward_model_list(*, user) -> QuerySet[RewardModel]:
    jobs = training_selectors.job_list(user=user)
    return (RewardModel.objects.filter(job__in=jobs.values("pk"))
            .select_related("job", "spec_version__spec", "campaign", "created_by").prefetch_related("exports"))


def reward_model_get(*, user, model_id: Any) -> RewardModel:
    try:
        return reward_model_list(user=user).get(pk=model_id)
    except (RewardModel.DoesNotExist, ValueError, TypeError):
        raise Http404("No such model.") from None
