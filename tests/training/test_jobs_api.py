"""Training jobs over REST: launch, validation, the role matrix, a job run to the end, cancel, lost workers."""

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from django.utils import timezone

from labeling.models import ExportSnapshot
from rewardmodels.models import RewardModel
from training import services
from training.models import JobLog, JobMetric, TrainingJob

from .helpers import learnable_snapshot, tiny_config

pytestmark = pytest.mark.django_db


def _queued_job(actors, export, **fields) -> TrainingJob:
    job = TrainingJob.objects.create(kind="reward_model", config={"kind": "reward"}, created_by=actors.admin, **fields)
    job.exports.set([export])
    return job


@pytest.fixture
def no_dispatch(monkeypatch):
    """Launches save the job but nothing runs it (for tests about the request itself)."""
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)


@pytest.mark.django_db(transaction=True)  # the job is handed over after the commit
def test_an_admin_launches_a_reward_model_job_that_trains_registers_and_scores(actors, media, tiny_model_dir):
    export = learnable_snapshot(actors.admin)
    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "export": export.pk, "name": "tiny rm",
        "config": tiny_config(tiny_model_dir, epochs=6)}, format="json")
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]

    detail = actors.api("policy").get(f"/api/v1/training-jobs/{job_id}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert detail["progress"] == 1.0
    assert detail["device"] == "cpu" and detail["worker_host"]
    assert detail["versions"]["torch"]
    assert detail["exports"] == [export.pk]
    series = detail["metrics"]["series"]
    assert len(series["train"]["loss"]) == detail["steps"] > 0
    assert detail["metrics"]["final"]["accuracy"] >= 0.75  # the chosen replies carry learnable words
    names = {a["name"] for a in detail["artifacts"]}
    assert "model.safetensors" in names and "specloop.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)

    weights = actors.api("policy").get(f"/api/v1/training-jobs/{job_id}/artifacts/model.safetensors")
    assert weights.status_code == 200
    from safetensors.torch import load as load_safetensors

    assert load_safetensors(b"".join(weights.streaming_content))  # tensors, no pickle
    assert actors.api("policy").get(f"/api/v1/training-jobs/{job_id}/artifacts/..%2Fsecret").status_code == 404
    assert actors.api("rater").get(f"/api/v1/training-jobs/{job_id}/artifacts/model.safetensors").status_code == 403

    model = RewardModel.objects.get(pk=detail["reward_model"])
    assert model.kind == "reward" and model.job_id == job_id
    assert list(model.exports.values_list("sha256", flat=True)) == [export.sha256]
    listed = actors.api("policy").get("/api/v1/reward-models/").json()
    assert [m["id"] for m in listed] == [model.pk]

    scored = actors.api("admin").post(f"/api/v1/reward-models/{model.pk}/score/", {"items": [
        {"prompt": "question about maps", "response": "answer clear kind careful honest"},
        {"prompt": "question about maps", "response": "answer rude wrong cruel vague"},
    ]}, format="json")
    assert scored.status_code == 200, scored.json()
    good, bad = scored.json()["scores"]
    assert good > bad


@pytest.mark.django_db(transaction=True)  # the job is handed over after the commit
def test_a_cost_model_job_learns_that_harmful_replies_cost_more(actors, media, tiny_model_dir):
    export = learnable_snapshot(actors.admin, n=64)
    job = services.training_job_create(user=actors.admin, kind="cost_model", export_ids=[export.pk],
                                       config=tiny_config(tiny_model_dir, epochs=6))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.reward_model.kind == "cost"
    assert "sign_accuracy" in job.final_metrics


@pytest.mark.parametrize("config, field", [
    ({"learning_rate": -1}, "config.learning_rate"),
    ({"batch_size": "eight"}, "config.batch_size"),
    ({"epochs": 0}, "config.epochs"),
    ({"eval_fraction": 1.5}, "config.eval_fraction"),
    ({"warp_drive": True}, "config.warp_drive"),
    ({"kind": "cost"}, "config.kind"),
])
def test_a_bad_config_is_refused_naming_the_key_and_nothing_is_saved(actors, media, no_dispatch, config, field):
    export = learnable_snapshot(actors.admin, n=8)
    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "export": export.pk, "config": config}, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["detail"]["errors"]], response.json()
    assert not TrainingJob.objects.exists()


def test_every_bad_key_is_named_at_once(actors, media, no_dispatch):
    export = learnable_snapshot(actors.admin, n=8)
    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "export": export.pk, "config": {"epochs": -2, "colour": "red"}}, format="json")
    fields = {e["field"] for e in response.json()["detail"]["errors"]}
    assert {"config.epochs", "config.colour"} <= fields



@pytest.mark.parametrize("config, field, range_text", [
    ({"epochs": 1e9}, "config.epochs", "whole number"),
    ({"epochs": 1_000_000_000}, "config.epochs", "1..100"),
    ({"batch_size": 100_000}, "config.batch_size", "1..1024"),
    ({"max_length": 10**6}, "config.max_length", "8..8192"),
    ({"learning_rate": 5.0}, "config.learning_rate", "(0, 1]"),
    ({"eval_fraction": 0.9}, "config.eval_fraction", "[0, 0.5]"),
    ({"grad_accum": 4096}, "config.grad_accum", "1..1024"),
    ({"seed": 2**40}, "config.seed", "0..4294967295"),
    ({"max_steps": 10**9}, "config.max_steps", "0..1000000"),
])
def test_an_out_of_range_setting_is_a_400_naming_the_field_and_its_range(actors, media, no_dispatch, config, field,
                                                                         range_text):
    export = learnable_snapshot(actors.admin, n=8)
    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "export": export.pk, "config": config}, format="json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ") and range_text in response.json()["error"]
    assert not TrainingJob.objects.exists()

@pytest.mark.parametrize("body, field", [
    ({"kind": "dance", "export": 1}, "kind"),
    ({"kind": "constrained_finetune", "export": 1}, "kind"),
    ({"kind": "reward_model"}, "exports"),
    ({"kind": "reward_model", "exports": [999999]}, "exports[0]"),
    ({"kind": "reward_model", "export": 1, "exports": [1]}, "exports"),
    ({"kind": "reward_model", "export": 1, "gpu": "yes"}, "gpu"),
])
def test_a_bad_launch_request_names_the_problem(actors, media, no_dispatch, body, field):
    response = actors.api("admin").post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["detail"]["errors"]], response.json()


@pytest.mark.django_db(transaction=True)  # the job is handed over after the commit
def test_a_job_trains_on_every_row_of_every_snapshot_it_names(actors, media, tiny_model_dir):
    first, second = learnable_snapshot(actors.admin, n=24), learnable_snapshot(actors.admin, n=24, seed=1)
    job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[first.pk, second.pk],
                                       config=tiny_config(tiny_model_dir, epochs=1))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert JobLog.objects.filter(job=job, message__startswith="read 48 rows from 2 file(s)").exists()
    assert set(job.reward_model.exports.all()) == {first, second}


def test_a_job_can_train_on_several_snapshots_together(actors, media, no_dispatch):
    first, second = learnable_snapshot(actors.admin, n=8), learnable_snapshot(actors.admin, n=8, seed=1)
    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "exports": [first.pk, second.pk]}, format="json")
    assert response.status_code == 201
    assert response.json()["exports"] == [first.pk, second.pk]
    assert response.json()["status"] == "queued"
    assert response.json()["config"]["backbone"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_the_role_matrix_on_every_training_endpoint(actors, media, no_dispatch):
    export = learnable_snapshot(actors.admin, n=8)
    job = _queued_job(actors, export)
    body = {"kind": "reward_model", "export": export.pk}
    for who, status in [(None, 401), ("outsider", 403), ("rater", 403), ("policy", 403)]:
        assert actors.api(who).post("/api/v1/training-jobs/", body, format="json").status_code == status, who
        assert actors.api(who).post(f"/api/v1/training-jobs/{job.pk}/cancel/").status_code == status, who
    for who, status in [(None, 401), ("outsider", 403), ("rater", 403), ("policy", 200), ("admin", 200)]:
        for path in ("/api/v1/training-jobs/", f"/api/v1/training-jobs/{job.pk}/",
                     f"/api/v1/training-jobs/{job.pk}/logs/", "/api/v1/reward-models/"):
            assert actors.api(who).get(path).status_code == status, (who, path)
    assert actors.api("admin").post(f"/api/v1/training-jobs/{job.pk}/cancel/").status_code == 200


def test_a_policy_user_does_not_see_a_job_on_a_campaign_export_they_cannot_see(actors, media, no_dispatch):
    hidden = ExportSnapshot.objects.create(
        source="campaign", campaign=None, name="someone else's", n_pairs=1, sha256="0" * 64, path="x.jsonl",
        size_bytes=1, created_by=actors.admin)
    job = _queued_job(actors, hidden)
    assert actors.api("policy").get(f"/api/v1/training-jobs/{job.pk}/").status_code == 404
    assert actors.api("policy").get("/api/v1/training-jobs/").json() == []
    assert actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/").status_code == 200


def test_cancelling_a_queued_job_ends_it_and_a_finished_job_cannot_be_cancelled(actors, media):
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))
    response = actors.api("admin").post(f"/api/v1/training-jobs/{job.pk}/cancel/")
    assert response.json()["status"] == "cancelled"
    assert services.training_job_run(job_id=job.pk) == "cancelled"  # a late delivery runs nothing
    again = actors.api("admin").post(f"/api/v1/training-jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]


def test_cancel_stops_a_running_job_between_steps(actors, media, tiny_model_dir, monkeypatch):
    export = learnable_snapshot(actors.admin, n=48)
    job = _queued_job(actors, export)
    job.config = services.job_config_validate(kind="reward_model", config=tiny_config(tiny_model_dir, epochs=50))
    job.save()
    from rewardmodels import ml

    real_train = ml.train

    def train_and_cancel_at_step_3(cfg, *, hooks, **kwargs):
        on_metrics = hooks.on_metrics

        def metrics(step, split, values):
            on_metrics(step, split, values)
            if step == 3:
                actors.api("admin").post(f"/api/v1/training-jobs/{job.pk}/cancel/")

        hooks.on_metrics = metrics
        return real_train(cfg, hooks=hooks, **kwargs)

    monkeypatch.setattr(ml, "train", train_and_cancel_at_step_3)
    monkeypatch.setattr(services, "REPORT_EVERY_SECONDS", 0.0)  # check for a cancel at every step
    assert services.training_job_run(job_id=job.pk) == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.cancel_requested
    assert 3 <= job.steps < 10
    assert not RewardModel.objects.filter(job=job).exists()
    assert JobLog.objects.filter(job=job, message__startswith="cancelled after").exists()


def test_the_same_job_delivered_twice_runs_once(actors, media, monkeypatch):
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))
    runs = []
    monkeypatch.setattr(services, "_train", lambda job, host: runs.append(job.pk) or "succeeded")
    services.training_job_run(job_id=job.pk)
    services.training_job_run(job_id=job.pk)
    assert runs == [job.pk]


def test_a_transient_database_error_is_retried_by_the_task(actors, media, monkeypatch):
    from training.tasks import training_job_run_task

    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))
    calls = []

    def flaky(job, host):
        calls.append(host)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        services._finish(job.pk, TrainingJob.SUCCEEDED, progress=1.0)
        return "succeeded"

    monkeypatch.setattr(services, "_train", flaky)
    with pytest.raises(Retry) as retry:  # the task schedules its retry with a back-off ...
        training_job_run_task.apply(args=[job.pk])
    assert list(retry.value.sig.args) == [job.pk]  # (the back-off is jittered: anywhere from 0 s up)
    assert TrainingJob.objects.get(pk=job.pk).status == "queued"  # ... and the job waits for it
    retry.value.sig.apply()
    job.refresh_from_db()
    assert len(calls) == 2
    assert job.status == "succeeded" and job.attempts == 2


def test_a_job_that_raises_fails_with_the_reason_in_error_and_logs(actors, media, monkeypatch):
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))

    def broken(job, host):
        raise RuntimeError("CUDA out of memory while allocating 2 GiB")

    monkeypatch.setattr(services, "_train", broken)
    assert services.training_job_run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "CUDA out of memory" in job.error
    assert JobLog.objects.filter(job=job, level="error", message__contains="Traceback").exists()


def test_a_running_job_without_heartbeats_is_failed_with_a_reason_and_stays_failed(actors, media, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS = 60
    export = learnable_snapshot(actors.admin, n=8)
    stale = _queued_job(actors, export, status="running", worker_host="gpu-7:4242",
                        heartbeat_at=timezone.now() - timedelta(seconds=61))
    alive = _queued_job(actors, export, status="running", heartbeat_at=timezone.now() - timedelta(seconds=5))
    assert services.training_jobs_reap() == 1
    stale.refresh_from_db()
    alive.refresh_from_db()
    assert stale.status == "failed" and "gpu-7:4242 stopped sending heartbeats" in stale.error
    assert alive.status == "running"
    # The worker waking up cannot overwrite the verdict.
    assert not services._finish(stale.pk, TrainingJob.SUCCEEDED)
    assert actors.api("admin").get(f"/api/v1/training-jobs/{stale.pk}/").json()["status"] == "failed"


def test_reading_a_job_applies_the_heartbeat_check(actors, media, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS = 60
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8), status="running",
                      heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert actors.api("policy").get(f"/api/v1/training-jobs/{job.pk}/").json()["status"] == "failed"


def test_logs_come_as_a_tail_or_after_an_id(actors, media):
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))
    lines = [JobLog.objects.create(job=job, message=f"line {i}") for i in range(5)]
    tail = actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/logs/").json()
    assert [line["message"] for line in tail] == [f"line {i}" for i in range(5)]
    after = actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/logs/?after={lines[2].pk}").json()
    assert [line["message"] for line in after] == ["line 3", "line 4"]
    assert actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/logs/?after=x").status_code == 400


def test_metric_series_are_grouped_by_split_and_name(actors, media):
    job = _queued_job(actors, learnable_snapshot(actors.admin, n=8))
    JobMetric.objects.create(job=job, step=1, split="train", values={"loss": 0.7, "accuracy": 0.5})
    JobMetric.objects.create(job=job, step=2, split="train", values={"loss": 0.6, "accuracy": 0.75})
    JobMetric.objects.create(job=job, step=2, split="eval", values={"accuracy": 0.8, "note": "text is left out"})
    series = actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/").json()["metrics"]["series"]
    assert series == {"train": {"loss": [[1, 0.7], [2, 0.6]], "accuracy": [[1, 0.5], [2, 0.75]]},
                      "eval": {"accuracy": [[2, 0.8]]}}
