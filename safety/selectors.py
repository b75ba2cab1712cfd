"""Reads of prompt sets, guards and decision logs. Visibility as for campaigns: admins see everything, a policy
user what is tied to the specs they edit; anything else is a 404 (ids leak nothing)."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from specloop import roles
from taxonomy.models import Spec

from .models import Guard, GuardDecision, Prompt, PromptSet, PromptSetImport


def _visible(qs: QuerySet, user, spec_path: str) -> QuerySet:
    """Admins: everything; policy users: what hangs off the specs they edit (a subquery: no join to repeat rows)."""
    if roles.has_role(user, roles.ADMIN):
        return qs
    if roles.has_role(user, roles.POLICY):
        return qs.filter(**{f"{spec_path}__in": Spec.objects.filter(editors=user).values("pk")})
    return qs.none()


def prompt_set_list(*, user) -> QuerySet[PromptSet]:
    qs = PromptSet.objects.select_related("spec_version__spec", "created_by").defer("spec_version__document")
    return _visible(qs, user, "spec_version__spec")


def prompt_set_get(*, user, prompt_set_id: Any) -> PromptSet:
    try:
        return (_visible(PromptSet.objects.select_related("spec_version__spec", "created_by"), user, "spec_version__spec")
                .get(pk=prompt_set_id))
    except (PromptSet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such prompt set.") from None


def prompt_set_prompts(*, prompt_set: PromptSet) -> QuerySet[Prompt]:
    return Prompt.objects.filter(prompt_set=prompt_set).order_by("index")


def prompt_set_sample(*, prompt_set: PromptSet, n: int = 20) -> list[Prompt]:
    """Up to ``n`` prompts spread evenly over the set (one query)."""
    if prompt_set.n_prompts <= n:
        return list(prompt_set_prompts(prompt_set=prompt_set))
    step = prompt_set.n_prompts / n
    indexes = sorted({int(i * step) for i in range(n)})
    return list(prompt_set_prompts(prompt_set=prompt_set).filter(index__in=indexes))


CROSS_TAB_MAX_PROMPTS = 50_000  # the detail page's category × label table is counted on read up to this size


def prompt_set_category_labels(*, prompt_set: PromptSet) -> dict[str, dict[str, int]] | None:
    """{category key: {"safe", "unsafe", "unknown": n}} counted from the prompts (one query); None for a set too
    large to count on a page read."""
    if prompt_set.n_prompts > CROSS_TAB_MAX_PROMPTS:
        return None
    table: dict[str, dict[str, int]] = {}
    for categories, label in prompt_set_prompts(prompt_set=prompt_set).values_list("categories", "label").iterator():
        for key in categories:
            row = table.setdefault(key, {"safe": 0, "unsafe": 0, "unknown": 0})
            row[label or "unknown"] += 1
    return table


def prompt_set_rows(prompt_set: PromptSet) -> list[dict[str, Any]]:
    """What the evaluation and training services hand the ml code: ``{"prompt", "label", "categories", "response",
    "response_harmful", "response_refusal"}`` per prompt, in order; label "" and response_refusal "" are unknown."""
    fields = ("text", "label", "categories", "response", "response_harmful", "response_refusal")
    return [{"prompt": text, "label": label, "categories": categories, "response": response,
             "response_harmful": harmful, "response_refusal": refusal}
            for text, label, categories, response, harmful, refusal
            in prompt_set_prompts(prompt_set=prompt_set).values_list(*fields)]


def prompt_set_import_get(*, user, job_id: Any) -> PromptSetImport:
    """The user's own import job; anyone else's is not found."""
    try:
        return PromptSetImport.objects.select_related("spec_version__spec", "prompt_set").get(pk=int(job_id), owner=user)
    except (PromptSetImport.DoesNotExist, ValueError, TypeError):
        raise Http404("No such import.") from None


def guard_list(*, user) -> QuerySet[Guard]:
    qs = Guard.objects.select_related("spec_version__spec", "safety_classifier", "cost_model", "created_by")
    return _visible(qs, user, "spec_version__spec")


def guard_get(*, user, guard_id: Any) -> Guard:
    try:
        return guard_list(user=user).get(pk=guard_id)
    except (Guard.DoesNotExist, ValueError, TypeError):
        raise Http404("No such guard.") from None


# What scoring reads of a guard: the spec version's document and the models' checkpoint folders. Compiling the full
# select_related of guard_list (five tables, every column) was most of the endpoint's own time.
_SCORING_FIELDS = ("id", "log_decisions", "created_at", "spec_version__id", "spec_version__spec_id", "spec_version__number",
                   "spec_version__document", "safety_classifier__id", "safety_classifier__path",
                   "safety_classifier__kind", "cost_model__id", "cost_model__path", "cost_model__kind")


def guard_for_scoring(*, user, guard_id: Any = None) -> Guard:
    """The guard ``guard_id`` (default: the newest the user can see), with only what scoring reads; else a 404."""
    qs = _visible(Guard.objects.select_related("spec_version", "safety_classifier", "cost_model").only(*_SCORING_FIELDS),
                  user, "spec_version__spec")
    try:
        guard = qs.get(pk=guard_id) if guard_id is not None else qs.first()
    except (Guard.DoesNotExist, ValueError, TypeError):
        raise Http404("No such guard.") from None
    if guard is None:
        raise Http404("No guard yet: an admin creates one (POST /api/v1/guards/).")
    return guard


def guard_decision_list(*, guard: Guard, decision: str | None = None) -> QuerySet[GuardDecision]:
    qs = GuardDecision.objects.filter(guard=guard).select_related("client", "sent_to_campaign")
    return qs.filter(decision=decision) if decision else qs


def guard_decision_counts(*, guard: Guard) -> dict[str, int]:
    from django.db.models import Count

    return dict(GuardDecision.objects.filter(guard=guard).values_list("decision").annotate(n=Count("id")).order_by())
