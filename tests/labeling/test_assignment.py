"""Next-task: least-judged first, never past overlap k (also under concurrency), expiry, skips."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, Judgment, Task
from specloop.services import user_upsert
from tests.labeling.helpers import judge, make_campaign


def test_a_rater_gets_the_least_judged_task_and_keeps_it_until_done(actors):
    campaign = make_campaign(actors, n_items=3, overlap=2)
    first = services.next_task_assign(campaign=campaign, rater=actors.rater)
    again = services.next_task_assign(campaign=campaign, rater=actors.rater)
    assert again.pk == first.pk  # asking again before judging gives the same assignment
    services.judgment_submit(assignment_id=first.pk, rater=actors.rater, data={"preference": 1})
    other = services.next_task_assign(campaign=campaign, rater=actors.rater2)
    assert other.task_id != first.task_id  # untouched tasks come before the judged one


def test_higher_sampling_weight_goes_first_among_equals(actors):
    campaign = make_campaign(actors, n_items=3, overlap=1)
    heavy = Task.objects.filter(campaign=campaign).order_by("id").last()
    Task.objects.filter(pk=heavy.pk).update(weight=5)
    assert services.next_task_assign(campaign=campaign, rater=actors.rater).task_id == heavy.pk


def test_a_task_never_goes_past_overlap_and_a_rater_never_sees_it_twice(actors):
    campaign = make_campaign(actors, n_items=2, overlap=1)
    for _ in range(2):
        judge(campaign, actors.rater, prefer_x=-1)
    assert services.next_task_assign(campaign=campaign, rater=actors.rater) is None
    assert services.next_task_assign(campaign=campaign, rater=actors.rater2) is None  # both tasks are full
    assert set(Task.objects.filter(campaign=campaign).values_list("n_judgments", flat=True)) == {1}


def test_skipped_tasks_are_not_offered_again_to_that_rater_but_are_to_others(actors):
    campaign = make_campaign(actors, n_items=1, overlap=1)
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    services.assignment_skip(assignment_id=assignment.pk, rater=actors.rater, reason="not my language")
    assert Assignment.objects.get(pk=assignment.pk).skip_reason == "not my language"
    assert services.next_task_assign(campaign=campaign, rater=actors.rater) is None
    assert services.next_task_assign(campaign=campaign, rater=actors.rater2).task_id == assignment.task_id


def test_an_abandoned_assignment_returns_to_the_pool_after_the_timeout(actors):
    campaign = make_campaign(actors, n_items=1, overlap=1, assignment_timeout_seconds=60)
    held = services.next_task_assign(campaign=campaign, rater=actors.rater)
    assert services.next_task_assign(campaign=campaign, rater=actors.rater2) is None  # the only slot is held
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = services.next_task_assign(campaign=campaign, rater=actors.rater2)
    assert taken.task_id == held.task_id
    held.refresh_from_db()
    assert held.status == Assignment.EXPIRED
    assert Task.objects.get(pk=held.task_id).n_open == 1
    # The late rater's work is refused: the task is full again.
    with pytest.raises(Exception, match="expired"):
        services.judgment_submit(assignment_id=held.pk, rater=actors.rater, data={"preference": 1})
    assert Judgment.objects.count() == 0


def test_a_late_judgment_is_kept_when_the_task_still_has_room(actors):
    campaign = make_campaign(actors, n_items=1, overlap=2, assignment_timeout_seconds=60)
    held = services.next_task_assign(campaign=campaign, rater=actors.rater)
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.next_task_assign(campaign=campaign, rater=actors.rater2)  # sweeps the expired one
    services.judgment_submit(assignment_id=held.pk, rater=actors.rater, data={"preference": 1})
    task = Task.objects.get(pk=held.task_id)
    assert (task.n_judgments, task.n_open) == (1, 1)


def test_side_order_is_randomized_and_stored_per_assignment(actors):
    campaign = make_campaign(actors, n_items=30, overlap=1, raters=("rater",))
    swaps = []
    for _ in range(30):
        assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
        swaps.append(assignment.swapped)
        services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data={"preference": 0})
    assert 3 <= sum(swaps) <= 27
    assert list(Assignment.objects.order_by("id").values_list("swapped", flat=True)) == swaps


@pytest.mark.django_db(transaction=True)
def test_racing_raters_never_push_a_task_past_k_and_lose_no_judgment():
    """Twelve threads, each a rater, race through a 15-task campaign with overlap 3 on PostgreSQL."""
    from tests.conftest import Actors

    actors = Actors()
    campaign = make_campaign(actors, n_items=15, overlap=3, raters=())
    raters = [user_upsert(username=f"racer{i}", role_names=["rater"])[0] for i in range(12)]
    services.campaign_raters_add(campaign=campaign, usernames=[r.username for r in raters])
    start = threading.Barrier(len(raters))
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(rater, seed, race=True):
        rng = random.Random(seed)
        try:
            if race:
                start.wait()
            while True:
                assignment = services.next_task_assign(campaign=campaign, rater=rater, rng=rng)
                if assignment is None:
                    return
                if race and rng.random() < 0.1:  # the drain below never skips
                    services.assignment_skip(assignment_id=assignment.pk, rater=rater)
                    continue
                judgment = services.judgment_submit(
                    assignment_id=assignment.pk, rater=rater, data={"preference": rng.choice([-2, -1, 0, 1, 2])}
                )
                with lock:
                    acknowledged.append(judgment.pk)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            if race:
                connection.close()

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # A rater stops when nothing is left *for them*; a task another rater skipped late may still need
    # judgments. Draining one rater at a time finishes the campaign.
    for i, rater in enumerate(raters):
        work(rater, 100 + i, race=False)
    assert not errors, errors
    tasks = Task.objects.filter(campaign=campaign)
    counts = dict(Judgment.objects.values("task").annotate(n=Count("id")).values_list("task", "n"))
    assert all(t.n_judgments <= 3 and t.n_judgments == counts.get(t.pk, 0) and t.n_open == 0 for t in tasks)
    assert sorted(acknowledged) == sorted(Judgment.objects.values_list("id", flat=True))
    assert sum(counts.values()) == 45  # every task reached k: skipped slots went back to the pool
    pairs = list(Judgment.objects.values_list("task", "rater"))
    assert len(pairs) == len(set(pairs))
    if connection.vendor == "postgresql":
        assert Assignment.objects.filter(status=Assignment.OPEN).count() == 0


def test_the_assigned_task_carries_its_whole_item(actors):
    """Callers read the item's meta and category (the demo's simulated raters, the dashboards' tests)."""
    campaign = make_campaign(actors, n_items=0, overlap=1)
    text = '{"prompt": "p", "responses": ["a", "b"], "meta": {"category": "violence", "source": "hh"}}'
    services.items_import(campaign=campaign, text=text, fmt="jsonl")
    for _ in range(2):  # a new assignment, then the same one read back as the rater's open assignment
        item = services.next_task_assign(campaign=campaign, rater=actors.rater).task.item
        assert (item.prompt, item.category, item.meta["source"]) == ("p", "violence", "hh")
        assert [r["text"] for r in item.responses] == ["a", "b"]
