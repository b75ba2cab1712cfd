"""Reads for labeling. Admins see every campaign, policy users those on specs they edit, raters their own."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils import timezone

from specloop import roles

from . import agreement
from .models import Assignment, Campaign, ExportSnapshot, Judgment, Task

User = get_user_model()


def campaign_list(*, user) -> QuerySet[Campaign]:
    qs = Campaign.objects.select_related("spec_version__spec")
    user_roles = roles.user_roles(user)
    if roles.ADMIN in user_roles:
        return qs
    visible = Q(pk__in=[])
    if roles.POLICY in user_roles:
        visible |= Q(spec_version__spec__editors=user)
    if roles.RATER in user_roles:
        visible |= Q(raters=user)
    return qs.filter(visible).distinct()


def campaign_get(*, user, campaign_id: Any) -> Campaign:
    try:
        return campaign_list(user=user).get(pk=campaign_id)
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise Http404("No such campaign.") from None


def campaign_for_rater(*, user, campaign_id: Any) -> Campaign:
    """A campaign the user is assigned to rate (one query); anything else is a 404."""
    try:
        return Campaign.objects.only(
            "id", "overlap", "gold_share", "assignment_timeout_seconds", "spec_version_id"
        ).get(pk=campaign_id, raters=user)
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise Http404("No such campaign.") from None


def campaign_progress(*, campaign: Campaign) -> dict[str, Any]:
    tasks = Task.objects.filter(campaign=campaign, is_gold=False).aggregate(
        total=Count("id"), done=Count("id", filter=Q(n_judgments__gte=campaign.overlap)),
        started=Count("id", filter=Q(n_judgments__gt=0)),
    )
    judgments = Judgment.objects.filter(campaign=campaign)
    since = timezone.now() - timedelta(days=30)
    per_day = list(
        judgments.filter(created_at__gte=since).annotate(day=TruncDate("created_at")).values("day")
        .annotate(n=Count("id")).order_by("day")
    )
    return {
        "tasks": tasks["total"],
        "tasks_done": tasks["done"],
        "tasks_started": tasks["started"],
        "judgments": judgments.count(),
        "judgments_needed": tasks["total"] * campaign.overlap,
        "skips": Assignment.objects.filter(campaign=campaign, status=Assignment.SKIPPED).count(),
        "open_assignments": Assignment.objects.filter(campaign=campaign, status=Assignment.OPEN).count(),
        "raters": campaign.raters.count(),
        "per_day": [{"day": row["day"].isoformat(), "n": row["n"]} for row in per_day],
    }


AGREEMENT_CACHE = "agreement"


def campaign_agreement(*, campaign: Campaign) -> dict[str, Any]:
    """The campaign's agreement, computed once per state of its judgments.

    Judgments are only ever added (never edited or deleted on their own), so the campaign's last
    judgment id names the state: one index probe on (campaign, id). The result is kept per process
    until a judgment is added (about 1.5 s to compute at 1M judgments).
    """
    last = Judgment.objects.filter(campaign=campaign).aggregate(last=Max("id"))["last"]
    key = f"campaign-agreement:{campaign.pk}:{campaign.spec_version_id}:{last}"
    cache = caches[AGREEMENT_CACHE]
    result = cache.get(key)
    if result is None:
        result = _campaign_agreement_compute(campaign)
        cache.set(key, result, timeout=3600)
    return result


def _campaign_agreement_compute(campaign: Campaign) -> dict[str, Any]:
    doc = campaign.spec_version.document
    axes = {a["key"]: len(a["scale"]) for a in doc["rubric"]["axes"]}
    arrays = agreement.load_arrays(campaign.pk, list(axes))
    result = agreement.agreement_compute(
        arrays, axes=axes, categories=[c["key"] for c in doc["categories"]],
        severity_levels=len(doc["rubric"]["severity_scale"]),
    )
    names = dict(User.objects.filter(pk__in=[r["rater"] for r in result["raters"]]).values_list("pk", "username"))
    for row in result["raters"]:
        row["username"] = names.get(row["rater"], str(row["rater"]))
    return result


def judgment_list(*, user, campaign_id: Any = None) -> QuerySet[Judgment]:
    qs = Judgment.objects.select_related("rater").order_by("-id")
    if campaign_id not in (None, ""):
        try:
            qs = qs.filter(campaign_id=int(campaign_id))
        except ValueError:
            raise Http404("No such campaign.") from None
    user_roles = roles.user_roles(user)
    if roles.ADMIN in user_roles:
        return qs
    if roles.POLICY in user_roles:
        return qs.filter(campaign__in=campaign_list(user=user))
    return qs.filter(rater=user)


def task_get(*, user, task_id: Any) -> Task:
    """A task for adjudication (policy/admin), within the campaigns the user can see."""
    try:
        return Task.objects.select_related("item", "campaign__spec_version").get(
            pk=task_id, campaign__in=campaign_list(user=user)
        )
    except (Task.DoesNotExist, ValueError, TypeError):
        raise Http404("No such task.") from None


def export_list(*, user, campaign: Campaign | None = None) -> QuerySet[ExportSnapshot]:
    qs = ExportSnapshot.objects.select_related("campaign", "created_by")
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    if roles.has_role(user, roles.ADMIN):
        return qs
    visible = Q(campaign__in=campaign_list(user=user))
    if roles.has_role(user, roles.POLICY):
        visible |= Q(source=ExportSnapshot.IMPORTED)  # imported datasets are shared with the policy team
    return qs.filter(visible)


def export_get(*, user, export_id: Any) -> ExportSnapshot:
    try:
        return export_list(user=user).get(pk=export_id)
    except (ExportSnapshot.DoesNotExist, ValueError, TypeError):
        raise Http404("No such export.") from None


def campaign_list_with_progress(*, user) -> QuerySet[Campaign]:
    """Campaigns with tasks done/total and judgments as subqueries: one query however many campaigns."""
    tasks = Task.objects.filter(campaign=OuterRef("pk"), is_gold=False).order_by().values("campaign")
    judgments = Judgment.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign")

    def count(qs):
        return Coalesce(Subquery(qs.annotate(c=Count("id")).values("c")), 0)

    return campaign_list(user=user).defer("spec_version__document").annotate(
        n_tasks=count(tasks), n_done=count(tasks.filter(n_judgments__gte=OuterRef("overlap"))),
        n_judgments=count(judgments),
    )


def disputed_tasks_get(*, campaign: Campaign, task_ids: list[int]) -> tuple[dict[int, Task], dict[int, list[Judgment]]]:
    """The disputed tasks (with item and adjudication) and their judgments in order: two queries."""
    tasks = {t.pk: t for t in Task.objects.filter(campaign=campaign, pk__in=task_ids)
             .select_related("item", "adjudication__decided_by")}
    judgments: dict[int, list[Judgment]] = {}
    for j in (Judgment.objects.filter(task_id__in=tasks).select_related("rater").order_by("id")
              .only("task_id", "preference_xy", "severity_x", "severity_y", "categories_x", "categories_y",
                    "rater__username")):
        judgments.setdefault(j.task_id, []).append(j)
    return tasks, judgments
