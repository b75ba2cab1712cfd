"""The rater loop's SQL reads on PostgreSQL answer what the ORM reads answer, field for field.

The SQL exists for speed only; these tests run both on the same rows. Instances built from a row
defer what the row does not hold (read from the database if touched), never default it.
"""

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, Campaign, Item, Task
from tests.labeling.helpers import make_campaign

POSTGRESQL_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the SQL reads run on PostgreSQL only; SQLite runs the ORM reads these compare against",
)
HTMX = {"HTTP_HX_REQUEST": "true"}


def fields(instance) -> dict:
    """Every concrete field as the instance answers it (deferred fields load on access)."""
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def same_task(a: Task, b: Task) -> None:
    assert fields(a) == fields(b)
    assert fields(a.item) == fields(b.item)


@POSTGRESQL_ONLY
@pytest.mark.parametrize("gold", [False, True])
def test_the_candidate_sql_and_the_orm_pick_the_same_task_with_the_same_fields(actors, gold):
    campaign = make_campaign(actors, n_items=6, overlap=2, gold_share=0.2)
    ids = list(Task.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    Task.objects.filter(pk=ids[2]).update(is_gold=True, gold_preference=1)
    Task.objects.filter(pk=ids[-1]).update(weight=3.0)  # weight orders the queue after the judged count
    Item.objects.filter(campaign=campaign).update(meta={"category": "violence", "source": "hh"}, category="violence")
    with transaction.atomic():
        fast = services._candidate_sql(campaign, actors.rater, gold=gold)
        plain = services._candidate_orm(campaign, actors.rater, gold=gold)
    assert fast is not None and plain is not None
    same_task(fast, plain)


@POSTGRESQL_ONLY
def test_the_open_assignment_sql_and_the_orm_read_the_same_assignment(actors):
    campaign = make_campaign(actors, n_items=3, overlap=2)
    services.next_task_assign(campaign=campaign, rater=actors.rater, rng=random.Random(1))
    now = timezone.now()
    fast = services._current_open_sql(campaign, actors.rater, now)
    plain = services._current_open_orm(campaign, actors.rater, now)
    assert fields(fast) == fields(plain)
    same_task(fast.task, plain.task)


@POSTGRESQL_ONLY
def test_the_own_assignment_sql_and_the_orm_read_the_same_assignment_and_campaign(actors):
    campaign = make_campaign(actors, n_items=3, overlap=2, gold_share=0.3, assignment_timeout_seconds=600)
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    with transaction.atomic():
        fast = services._own_assignment_sql(assignment.pk, actors.rater)
        plain = services._own_assignment_orm(assignment.pk, actors.rater)
    assert fields(fast) == fields(plain)
    assert fields(fast.campaign) == fields(plain.campaign)  # name, guidelines... load when touched
    assert services._own_assignment_sql(assignment.pk, actors.rater2) is None
    assert services._own_assignment_orm(assignment.pk, actors.rater2) is None


def test_after_a_skip_on_the_rater_page_the_next_assignment_keeps_the_campaigns_timeout(client, actors):
    """The skip answers with the next task; that assignment is made with the campaign's own settings."""
    campaign = make_campaign(actors, n_items=3, overlap=2, assignment_timeout_seconds=600)
    client.force_login(actors.rater)
    client.get(f"/campaigns/{campaign.pk}/rate/")
    first = Assignment.objects.get(campaign=campaign, rater=actors.rater, status=Assignment.OPEN)
    response = client.post(f"/assignments/{first.pk}/skip/", {"reason": "unsure"}, **HTMX)
    assert response.status_code == 200
    following = Assignment.objects.get(campaign=campaign, rater=actors.rater, status=Assignment.OPEN)
    assert following.expires_at - following.created_at == timedelta(seconds=600)


def test_after_a_skip_on_the_rater_page_the_next_assignment_keeps_the_campaigns_gold_share(client, actors, monkeypatch):
    campaign = make_campaign(actors, n_items=4, overlap=2, gold_share=0.5)
    client.force_login(actors.rater)
    client.get(f"/campaigns/{campaign.pk}/rate/")  # no gold task yet: an ordinary one
    first = Assignment.objects.get(campaign=campaign, rater=actors.rater, status=Assignment.OPEN)
    gold = Task.objects.filter(campaign=campaign).exclude(pk=first.task_id).order_by("-id").first()
    Task.objects.filter(pk=gold.pk).update(is_gold=True, gold_preference=1)
    monkeypatch.setattr(services.random, "random", lambda: 0.1)  # under the share of 0.5: the next draw is gold
    client.post(f"/assignments/{first.pk}/skip/", {"reason": "unsure"}, **HTMX)
    following = Assignment.objects.get(campaign=campaign, rater=actors.rater, status=Assignment.OPEN)
    assert following.task_id == gold.pk


def test_the_campaign_read_with_an_assignment_loads_deferred_fields_rather_than_defaults(actors):
    campaign = make_campaign(actors, n_items=2, overlap=2, gold_share=0.25, assignment_timeout_seconds=900)
    Campaign.objects.filter(pk=campaign.pk).update(guidelines="Read the whole conversation.")
    assignment = services.next_task_assign(campaign=campaign, rater=actors.rater)
    with transaction.atomic():
        own = services._own_assignment(assignment.pk, actors.rater)
    assert (own.campaign.gold_share, own.campaign.assignment_timeout_seconds) == (0.25, 900)
    assert own.campaign.guidelines == "Read the whole conversation." and own.campaign.name == "Pairs"
