"""Judgments: validated against the spec version, stored as shown and canonically, one per assignment."""

import pytest

from labeling import services
from labeling.models import Assignment, Judgment
from specloop.errors import Conflict, NotFound, ValidationFailed
from tests.labeling.helpers import make_campaign


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=6, overlap=2)


FULL = {
    "preference": -2,
    "categories": {"a": ["violence"], "b": []},
    "severity": {"a": 3, "b": 0},
    "axes": {"helpful": {"a": 0, "b": 2}},
    "rationale": "A helps hurt someone.",
    "seconds": 14.5,
}


def assignment_with(campaign, rater, swapped: bool) -> Assignment:
    assignment = services.next_task_assign(campaign=campaign, rater=rater)
    Assignment.objects.filter(pk=assignment.pk).update(swapped=swapped)
    return assignment


def test_an_unswapped_judgment_is_canonical_as_shown(actors, campaign):
    assignment = assignment_with(campaign, actors.rater, swapped=False)
    j = services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data=FULL)
    assert (j.preference, j.preference_xy) == (-2, -2)
    assert (j.categories_x, j.categories_y, j.severity_x, j.severity_y) == (["violence"], [], 3, 0)
    assert j.axes_xy == {"helpful": {"x": 0, "y": 2}}


def test_a_swapped_judgment_is_turned_back_to_x_y(actors, campaign):
    assignment = assignment_with(campaign, actors.rater, swapped=True)  # A shows y
    j = services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data=FULL)
    assert (j.preference, j.preference_xy) == (-2, 2)  # "A much better" means y much better
    assert (j.categories_x, j.categories_y, j.severity_x, j.severity_y) == ([], ["violence"], 0, 3)
    assert j.axes_xy == {"helpful": {"x": 2, "y": 0}}
    assert j.categories == FULL["categories"] and j.severity == FULL["severity"]  # as shown, kept too


BAD = [
    ({"preference": 3}, "preference"),
    ({"preference": True}, "preference"),
    ({}, "preference"),
    ({"preference": 0, "categories": {"a": ["ghost"]}}, "categories.a[0]"),
    ({"preference": 0, "categories": {"c": []}}, "categories"),
    ({"preference": 0, "severity": {"a": 4}}, "severity.a"),
    ({"preference": 0, "axes": {"funny": {"a": 1}}}, "axes.funny"),
    ({"preference": 0, "axes": {"helpful": {"a": 3}}}, "axes.helpful.a"),
    ({"preference": 0, "seconds": -1}, "seconds"),
    ({"preference": 0, "mood": "ok"}, "mood"),
]


@pytest.mark.parametrize("data, field", BAD, ids=[b[1] for b in BAD])
def test_a_bad_judgment_names_the_field_and_saves_nothing(actors, campaign, data, field):
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    with pytest.raises(ValidationFailed) as info:
        services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data=data)
    assert field in [e["field"] for e in info.value.errors]
    assert Judgment.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.OPEN and assignment.task.n_judgments == 0


def test_a_second_submission_is_refused_and_leaves_one_row(actors, campaign):
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data={"preference": 1})
    with pytest.raises(Conflict, match="already judged"):
        services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data={"preference": -1})
    assert Judgment.objects.filter(assignment=assignment).count() == 1
    assert assignment.task.__class__.objects.get(pk=assignment.task_id).n_judgments == 1


def test_another_raters_assignment_is_not_found(actors, campaign):
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    with pytest.raises(NotFound):
        services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater2, data={"preference": 1})
    with pytest.raises(NotFound):
        services.assignment_skip(assignment_id=assignment.pk, rater=actors.rater2)


def test_a_skipped_assignment_cannot_be_judged_and_a_judged_one_cannot_be_skipped(actors, campaign):
    first = services.next_task_assign(campaign=campaign, rater=actors.rater)
    services.assignment_skip(assignment_id=first.pk, rater=actors.rater)
    services.assignment_skip(assignment_id=first.pk, rater=actors.rater)  # idempotent
    with pytest.raises(Conflict, match="skipped"):
        services.judgment_submit(assignment_id=first.pk, rater=actors.rater, data={"preference": 1})
    second = services.next_task_assign(campaign=campaign, rater=actors.rater)
    services.judgment_submit(assignment_id=second.pk, rater=actors.rater, data={"preference": 1})
    with pytest.raises(Conflict, match="already judged"):
        services.assignment_skip(assignment_id=second.pk, rater=actors.rater)
