"""The rater page: one task at a time, judged or skipped over htmx; the next task swaps in without a reload."""

import math
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from specloop.errors import ValidationFailed
from specloop.roles import RATER, role_required
from taxonomy.document import category_tree

from . import rater_selectors, services
from .api import assignment_out
from .dialogue import dialogue_turns, reply_is_empty
from .models import Assignment, Campaign

PAGE = "labeling/rate.html"
# Keys 1..5 on screen and on the keyboard; the stored preference is key - 3 (negative: A better).
PREFERENCES = [(-2, "1", "A much better"), (-1, "2", "A better"), (0, "3", "Tie"), (1, "4", "B better"),
               (2, "5", "B much better")]


def _category_groups(categories: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Chips grouped under their top-level category, in the spec's tree order."""
    groups: list[list[dict[str, Any]]] = []
    for depth, category in category_tree(categories):
        if depth == 0:
            groups.append([])
        groups[-1].append({"depth": depth, **category})
    return groups


def _controls(campaign: Campaign) -> dict[str, Any]:
    doc = campaign.spec_version.document
    return {
        "category_groups": _category_groups(doc["categories"]),
        "severity_scale": doc["rubric"]["severity_scale"],
        "axes": doc["rubric"]["axes"],
        "preferences": PREFERENCES,
    }


def _task_context(campaign: Campaign, assignment: Assignment | None) -> dict[str, Any]:
    task = assignment_out(assignment) if assignment is not None else None
    return {
        "campaign": campaign,
        "assignment": assignment,
        "task": task,
        "turns": dialogue_turns(task["prompt"]) if task else [],
        "replies": [{"side": side, "label": side.upper(), "text": task[side]["text"],
                     "empty": reply_is_empty(task[side]["text"] or "")} for side in ("a", "b")] if task else [],
        **_controls(campaign),
    }


@role_required(RATER)
@require_GET
def rate_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = rater_selectors.rate_campaign_get(user=request.user, campaign_id=campaign_id)
    assignment = services.next_task_assign(campaign=campaign, rater=request.user)
    context = _task_context(campaign, assignment)
    context.update(
        spec_version=campaign.spec_version,
        doc=campaign.spec_version.document,
        # The groups already hold every category in tree order: the reference panel lists them ungrouped.
        tree=[chip for group in context["category_groups"] for chip in group],
        work=rater_selectors.rater_work_summary(campaign=campaign, rater=request.user),
    )
    return render(request, PAGE, context)


def _index(value: str | None) -> Any:
    """A form index as an int; anything else is passed on as typed, for the service to name the field."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, 86400.0)  # a tab left open overnight still saves; the service caps at a day


def judgment_from_form(post: QueryDict) -> dict[str, Any]:
    """The form fields as the judgment dict ``services.judgment_submit`` takes (axes left unset are omitted)."""
    preference = _index(post.get("preference"))
    if preference is None:
        raise ValidationFailed.one("preference", "choose which reply is better (keys 1–5) before submitting")
    severity = {side: _index(post.get(f"severity_{side}")) for side in ("a", "b")}
    axes: dict[str, dict[str, Any]] = {}
    for name in post:
        side, _, key = name.removeprefix("axis_").partition("_")
        value = _index(post.get(name))
        if name.startswith("axis_") and side in ("a", "b") and key and value is not None:
            axes.setdefault(key, {})[side] = value
    return {
        "preference": preference,
        "categories": {side: post.getlist(f"categories_{side}") for side in ("a", "b")},
        "severity": {side: value for side, value in severity.items() if value is not None},
        "axes": axes,
        "rationale": post.get("rationale", "").strip(),
        "seconds": _seconds(post.get("seconds")),
    }


def _next_task(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """After a judgment or a skip: the next task for htmx (with my-work out of band), else back to the page."""
    if not request.htmx:
        return redirect(reverse("rate", args=[campaign.pk]))
    assignment = services.next_task_assign(campaign=campaign, rater=request.user)
    context = {
        **_task_context(campaign, assignment),
        "work": rater_selectors.rater_work_summary(campaign=campaign, rater=request.user),
        "oob": True,
    }
    response = render(request, f"{PAGE}#task", context)
    response.write(render(request, f"{PAGE}#my-work", context).content)
    response.write(b'<div id="flash" hx-swap-oob="innerHTML"></div>')  # clear an earlier error banner
    return response


@role_required(RATER)
@require_POST
def judge_view(request: HttpRequest, assignment_id: int) -> HttpResponse:
    data = judgment_from_form(request.POST)
    if data["seconds"] is None:
        data["seconds"] = rater_selectors.assignment_age_seconds(assignment_id=assignment_id, rater=request.user)
    judgment = services.judgment_submit(assignment_id=assignment_id, rater=request.user, data=data)
    return _next_task(request, judgment.campaign)


@role_required(RATER)
@require_POST
def skip_view(request: HttpRequest, assignment_id: int) -> HttpResponse:
    reason = request.POST.get("reason", "").strip()
    assignment = services.assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason)
    return _next_task(request, assignment.campaign)
