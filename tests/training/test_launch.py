"""Launches that cannot orphan or duplicate a job: the broker down, retries with an idempotency key, the
periodic check for queued jobs nobody claimed, and the launch form's own key."""

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from training import services
from training.models import JobLog, TrainingJob

from .helpers import learnable_snapshot

CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused at once


@pytest.fixture
def broker_down(settings):
    """The real Celery path (not eager) against a broker that refuses connections."""
    from specloop.celery import app

    before = app.conf.broker_url, app._pool, app.amqp._producer_pool  # read first: conf loads lazily
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _use_broker(app, CLOSED_PORT)
    yield
    app.conf.broker_url, app._pool, app.amqp._producer_pool = before  # (kombu keeps pools per URL: none closed)


def _use_broker(app, url: str) -> None:
    app.conf.broker_url = url
    app._pool = app.amqp._producer_pool = None  # the producer pools are made from broker_url once


@pytest.fixture
def dispatched(monkeypatch):
    """Hand-overs are recorded, nothing runs."""
    sent = []

    def dispatch(*, job_id):
        sent.append(job_id)
        TrainingJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now())

    monkeypatch.setattr(services, "training_job_dispatch", dispatch)
    return sent


def _launch(actors, export, *, who="admin", headers=None, **body):
    return actors.api(who).post("/api/v1/training-jobs/", {"kind": "reward_model", "export": export.pk, **body},
                                format="json", headers=headers or {})


# --- the broker down ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the hand-over happens after the launch's own commit
def test_a_launch_while_the_broker_is_down_answers_503_json_and_leaves_no_job(actors, broker_down):
    export = learnable_snapshot(actors.admin, n=8)

    started = time.monotonic()
    response = _launch(actors, export, name="while redis is down")
    seconds = time.monotonic() - started

    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("the job queue is unavailable")
    assert "nothing was launched" in response.json()["error"]
    assert not TrainingJob.objects.exists() and not JobLog.objects.exists()
    assert seconds < 5, f"a refused broker must answer fast, took {seconds:.1f} s"


@pytest.mark.django_db(transaction=True)
def test_a_retry_with_the_same_key_after_the_broker_came_back_launches_the_job_once(actors, broker_down):
    from specloop.celery import app

    export = learnable_snapshot(actors.admin, n=8)
    key = {"Idempotency-Key": "launch-after-outage"}
    assert _launch(actors, export, headers=key).status_code == 503

    _use_broker(app, "memory://")  # the broker is back
    first, again = _launch(actors, export, headers=key), _launch(actors, export, headers=key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    job = TrainingJob.objects.get()
    assert job.status == "queued" and job.dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_launch_form_answers_503_with_the_form_kept_when_the_broker_is_down(client, actors, broker_down):
    export = learnable_snapshot(actors.admin, n=8)
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {"kind": "reward_model", "exports": [str(export.pk)],
                                                     "name": "kept", "idempotency_key": "form-key-1"})

    body = response.content.decode()
    assert response.status_code == 503 and not TrainingJob.objects.exists()
    assert "the job queue is unavailable" in body and "nothing was launched" in body
    assert 'value="kept"' in body and 'value="form-key-1"' in body  # submitting again reuses the key


# --- idempotency keys --------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_job_and_creates_nothing(actors, dispatched):
    export = learnable_snapshot(actors.admin, n=8)
    key = {"Idempotency-Key": "4f1c7a2e-retry"}

    first = _launch(actors, export, headers=key, config={"epochs": 2}, name="once")
    again = _launch(actors, export, headers=key, config={"epochs": 2}, name="once")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert TrainingJob.objects.count() == 1 and JobLog.objects.count() == 1


def test_the_key_may_come_in_the_body_too(actors, dispatched):
    export = learnable_snapshot(actors.admin, n=8)

    first = _launch(actors, export, idempotency_key="body-key")
    again = _launch(actors, export, headers={"Idempotency-Key": "body-key"})

    assert first.json()["id"] == again.json()["id"] and TrainingJob.objects.count() == 1


def test_the_same_key_with_a_different_request_is_a_409_naming_the_key(actors, dispatched):
    export = learnable_snapshot(actors.admin, n=8)
    key = {"Idempotency-Key": "reused-key"}
    first = _launch(actors, export, headers=key, config={"epochs": 2})

    response = _launch(actors, export, headers=key, config={"epochs": 3})

    assert response.status_code == 409
    assert "Idempotency-Key 'reused-key'" in response.json()["error"]
    assert response.json()["detail"] == {"field": "idempotency_key", "job": first.json()["id"]}
    assert TrainingJob.objects.count() == 1


def test_keys_are_per_user(actors, dispatched, settings):
    from specloop.services import user_upsert

    other, token, _ = user_upsert(username="ann_admin", role_names=["admin"], password="pw-admin2-123")
    export = learnable_snapshot(actors.admin, n=8)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    mine = _launch(actors, export, headers={"Idempotency-Key": "k"})
    theirs = client.post("/api/v1/training-jobs/", {"kind": "reward_model", "export": export.pk}, format="json",
                         headers={"Idempotency-Key": "k"})

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_header_and_a_body_key_that_differ_are_refused(actors, dispatched):
    export = learnable_snapshot(actors.admin, n=8)

    response = _launch(actors, export, headers={"Idempotency-Key": "a"}, idempotency_key="b")

    assert response.status_code == 400 and response.json()["detail"]["errors"][0]["field"] == "idempotency_key"
    assert not TrainingJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_racing_launches_with_one_key_make_one_job(actors, dispatched):
    import threading

    from django.db import connection

    export = learnable_snapshot(actors.admin, n=8)
    ids, barrier = [], threading.Barrier(4)

    def launch():
        try:
            barrier.wait()
            job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                               config={}, idempotency_key="raced")
            ids.append(job.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(ids) == 4 and len(set(ids)) == 1 and TrainingJob.objects.count() == 1


# --- the periodic check ------------------------------------------------------------------------------


def _queued(actors, export, *, age_s: float, dispatched_s: float | None) -> TrainingJob:
    now = timezone.now()
    job = TrainingJob.objects.create(kind="reward_model", config={"kind": "reward"}, created_by=actors.admin)
    job.exports.set([export])
    TrainingJob.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=age_s),
        dispatched_at=None if dispatched_s is None else now - timedelta(seconds=dispatched_s))
    return job


def test_the_periodic_check_fails_a_job_never_handed_to_the_queue(actors, settings, dispatched):
    settings.TRAINING_QUEUED_TIMEOUT_SECONDS = 600
    export = learnable_snapshot(actors.admin, n=8)
    orphan = _queued(actors, export, age_s=700, dispatched_s=None)
    young = _queued(actors, export, age_s=60, dispatched_s=None)

    assert services.training_jobs_check() == 1

    orphan.refresh_from_db(), young.refresh_from_db()
    assert orphan.status == "failed" and "never handed to the job queue" in orphan.error
    assert orphan.finished_at is not None
    assert young.status == "queued" and dispatched == []


def test_the_periodic_check_hands_a_long_unclaimed_job_to_the_queue_again(actors, settings, dispatched):
    settings.TRAINING_QUEUED_TIMEOUT_SECONDS = 600
    export = learnable_snapshot(actors.admin, n=8)
    lost = _queued(actors, export, age_s=3600, dispatched_s=900)
    waiting = _queued(actors, export, age_s=3600, dispatched_s=120)  # handed over recently: in the queue

    assert services.training_jobs_check() == 1

    lost.refresh_from_db()
    assert dispatched == [lost.pk] and lost.status == "queued"
    assert JobLog.objects.filter(job=lost, message__contains="handed to the queue again").exists()
    assert services.training_jobs_check() == 0  # handed over just now: not again at once
    waiting.refresh_from_db()
    assert waiting.status == "queued"


def test_the_celery_beat_task_runs_the_whole_check(actors, settings, dispatched):
    from training.tasks import training_jobs_reap_task

    settings.TRAINING_QUEUED_TIMEOUT_SECONDS = 600
    export = learnable_snapshot(actors.admin, n=8)
    orphan = _queued(actors, export, age_s=700, dispatched_s=None)

    assert training_jobs_reap_task.apply().get() == 1
    orphan.refresh_from_db()
    assert orphan.status == "failed"


# --- the launch form's key ---------------------------------------------------------------------------


def test_the_launch_form_carries_a_fresh_key_per_render(client, actors):
    client.force_login(actors.admin)

    keys = [re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', client.get(reverse("training:new"))
                      .content.decode()).group(1) for _ in range(2)]

    assert keys[0] != keys[1]


@pytest.mark.django_db(transaction=True)
def test_a_double_submit_of_the_launch_form_makes_one_job(client, actors, dispatched):
    export = learnable_snapshot(actors.admin, n=8)
    client.force_login(actors.admin)
    form = {"kind": "reward_model", "exports": [str(export.pk)], "name": "twice", "idempotency_key": "form-render-1"}

    first, second = client.post(reverse("training:new"), form), client.post(reverse("training:new"), form)

    job = TrainingJob.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("training:detail", args=[job.pk])
    assert dispatched == [job.pk]
    page = client.get(second["Location"]).content.decode()
    assert f"This form already launched job {job.pk}" in page
