"""Reads for the rater's own pages: their campaigns and their work. Nothing here shows another rater's labels."""

from typing import Any

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from .models import Assignment, Campaign, Judgment, Task

# The same sign on both sides: negative, zero (tie) or positive.
_SAME_SIGN = (
    Q(judgment__preference_xy__lt=0, task__gold_preference__lt=0)
    | Q(judgment__preference_xy=0, task__gold_preference=0)
    | Q(judgment__preference_xy__gt=0, task__gold_preference__gt=0)
)


def rate_campaign_get(*, user, campaign_id: Any) -> Campaign:
    """A campaign the user is assigned to rate, with its spec version (one query); anything else is a 404.

    Like ``selectors.campaign_for_rater`` but with every field loaded: the page shows the name, the
    guidelines and the spec's categories.
    """
    try:
        return Campaign.objects.select_related("spec_version__spec").get(pk=campaign_id, raters=user)
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise Http404("No such campaign.") from None


def rater_work_summary(*, campaign: Campaign, rater) -> dict[str, Any]:
    """This rater's own work in the campaign: judged, skipped, median seconds and gold accuracy (two queries)."""
    mine = Assignment.objects.filter(campaign=campaign, rater=rater)
    counts = mine.aggregate(
        judged=Count("id", filter=Q(status=Assignment.JUDGED)),
        skipped=Count("id", filter=Q(status=Assignment.SKIPPED)),
        gold=Count("id", filter=Q(status=Assignment.JUDGED, task__is_gold=True, task__gold_preference__isnull=False)),
        gold_correct=Count("id", filter=Q(status=Assignment.JUDGED, task__is_gold=True) & _SAME_SIGN),
        timed=Count("judgment__seconds"),
    )
    n = counts["timed"]
    median = None
    if n:
        # The middle one or two of the ordered times, read by offset: no per-row work in Python.
        middle = list(
            Judgment.objects.filter(campaign=campaign, rater=rater, seconds__isnull=False)
            .order_by("seconds").values_list("seconds", flat=True)[(n - 1) // 2:n // 2 + 1]
        )
        median = sum(middle) / len(middle)
    gold = counts["gold"]
    return {
        "judged": counts["judged"],
        "skipped": counts["skipped"],
        "median_seconds": median,
        "gold": gold,
        "gold_correct": counts["gold_correct"],
        "gold_accuracy": counts["gold_correct"] / gold if gold else None,
    }


def assignment_age_seconds(*, assignment_id: Any, rater) -> float | None:
    """Seconds since the rater's own assignment was handed out (the fallback for a missing client timer)."""
    try:
        created = Assignment.objects.filter(pk=assignment_id, rater=rater).values_list("created_at", flat=True).first()
    except (ValueError, TypeError):
        return None
    if created is None:
        return None
    return max(0.0, (timezone.now() - created).total_seconds())


def rater_campaigns(*, rater) -> QuerySet[Campaign]:
    """The rater's campaigns, newest first, each with ``has_work`` and ``n_mine`` (their judgments): one query.

    A campaign has work for the rater when they hold an open assignment, or a task has room
    (judged + open below the overlap) and the rater has neither judged nor skipped it.
    """
    now = timezone.now()
    seen = Assignment.objects.filter(task=OuterRef("pk"), rater=rater).exclude(status=Assignment.EXPIRED)
    open_task = Task.objects.filter(campaign=OuterRef("pk"), n_judgments__lt=OuterRef("overlap") - F("n_open")).filter(
        ~Exists(seen)
    )
    holding = Assignment.objects.filter(campaign=OuterRef("pk"), rater=rater, status=Assignment.OPEN, expires_at__gte=now)
    n_mine = (
        Judgment.objects.filter(campaign=OuterRef("pk"), rater=rater).order_by()
        .values("campaign").annotate(n=Count("id")).values("n")
    )
    return (
        Campaign.objects.filter(raters=rater).select_related("spec_version__spec")
        .annotate(
            has_work=ExpressionWrapper(Q(Exists(holding)) | Q(Exists(open_task)), output_field=BooleanField()),
            n_mine=Coalesce(Subquery(n_mine), 0),
        )
    )
