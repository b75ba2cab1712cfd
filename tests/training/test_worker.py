"""A real Celery worker on Redis runs jobs from the gpu queue; cancel reaches it; SIGKILL leaves the job failed."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from training import services
from training.models import TrainingJob

from .helpers import learnable_snapshot, tiny_config
from .safety_data import learnable_rows, prompt_set, published_version, safety_config

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _start_worker(media_root: Path, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{connection.settings_dict['USER'] or 'postgres'}@"
                        f"{connection.settings_dict['HOST'] or '127.0.0.1'}:{connection.settings_dict['PORT'] or 5432}/"
                        f"{connection.settings_dict['NAME']}",
        "MEDIA_ROOT": str(media_root),
        "SPECLOOP_MODELS_DIR": str(django_settings.MODELS_DIR),  # where the tests' tiny backbone is
        "TRAINING_HEARTBEAT_SECONDS": "0.5",
        "DJANGO_SETTINGS_MODULE": "specloop.settings",
    }
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "specloop", "worker", "-Q", "gpu,default", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_for(predicate, *, seconds: float, what: str, log_path: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log_path.read_text()[-4000:]}")


@pytest.fixture
def real_broker(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a worker is another process on the deployment's database (PostgreSQL); the embedded "
                    "SQLite mode runs jobs in-process, which the other job tests cover")
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (make test starts Redis)")
    from specloop.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.MEDIA_ROOT = tmp_path / "media"
    app.conf.task_always_eager = False
    app.control.purge()
    yield tmp_path
    app.control.purge()


def _long_job_stepping(actors, tiny_model_dir: str, worker_log: Path) -> TrainingJob:
    """A job of many epochs, launched and seen taking its first step on the worker."""
    export = learnable_snapshot(actors.admin, n=240)  # 100 epochs (the most allowed) of ~23 steps
    job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                       config=tiny_config(tiny_model_dir, epochs=100))
    _wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, steps__gte=1).exists(),
              seconds=180, what="the job to start stepping", log_path=worker_log)
    return job


def _status(job_id: int) -> str:
    return TrainingJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


def test_a_real_worker_runs_a_job_end_to_end_and_the_job_page_shows_it(actors, real_broker, tiny_model_dir, client):
    worker_log = real_broker / "worker.log"
    worker = _start_worker(real_broker / "media", worker_log)
    try:
        export = learnable_snapshot(actors.admin)
        job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                           config=tiny_config(tiny_model_dir, epochs=4), name="worker e2e")
        status = _wait_for(lambda: _status(job.pk) in TrainingJob.FINISHED and _status(job.pk),
                           seconds=180, what="the job to finish", log_path=worker_log)
        job.refresh_from_db()
        assert status == "succeeded", job.error
        assert job.worker_host.split(":")[0] and job.worker_host != services.worker_host()  # another process ran it
        assert job.device == "cpu" and job.steps > 0 and job.reward_model
        client.force_login(actors.admin)
        page = client.get(f"/training/{job.pk}/")
        assert page.status_code == 200
        assert b"worker e2e" in page.content and b"succeeded" in page.content
    finally:
        _stop(worker)


def test_a_real_worker_trains_a_safety_classifier_on_a_prompt_set(actors, real_broker, tiny_model_dir):
    worker_log = real_broker / "worker.log"
    worker = _start_worker(real_broker / "media", worker_log)
    try:
        version = published_version(actors.policy)
        probes = prompt_set(actors.admin, version, learnable_rows(32))
        job = services.training_job_create(user=actors.admin, kind="safety_classifier", prompt_set_ids=[probes.pk],
                                           config=safety_config(tiny_model_dir, epochs=1))
        status = _wait_for(lambda: _status(job.pk) in TrainingJob.FINISHED and _status(job.pk),
                           seconds=180, what="the job to finish", log_path=worker_log)
        job.refresh_from_db()
        assert status == "succeeded", job.error
        assert job.worker_host != services.worker_host() and job.steps > 0
        assert job.reward_model.kind == "safety" and job.reward_model.spec_version == version
        assert (real_broker / "media" / job.reward_model.path / "specloop.json").is_file()
    finally:
        _stop(worker)


def test_cancel_reaches_a_job_running_on_a_real_worker(actors, real_broker, tiny_model_dir):
    worker_log = real_broker / "worker.log"
    worker = _start_worker(real_broker / "media", worker_log)
    try:
        job = _long_job_stepping(actors, tiny_model_dir, worker_log)
        assert actors.api("admin").post(f"/api/v1/training-jobs/{job.pk}/cancel/").status_code == 200
        _wait_for(lambda: _status(job.pk) == "cancelled", seconds=60, what="the job to stop", log_path=worker_log)
        job.refresh_from_db()
        assert job.finished_at and job.progress < 1
        assert not hasattr(job, "reward_model") or job.reward_model is None
    finally:
        _stop(worker)


def test_a_worker_killed_mid_job_leaves_the_job_failed_with_a_reason(actors, real_broker, tiny_model_dir, settings):
    worker_log = real_broker / "worker.log"
    worker = _start_worker(real_broker / "media", worker_log)
    try:
        job = _long_job_stepping(actors, tiny_model_dir, worker_log)
        settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS = 3
        assert services.training_jobs_reap() == 0  # beating every 0.5 s: alive
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool child, as a lost machine would
        worker.wait(timeout=30)
        assert _status(job.pk) == "running"
        _wait_for(lambda: services.training_jobs_reap() or _status(job.pk) == "failed",
                  seconds=30, what="the heartbeat check to fail the job", log_path=worker_log)
        job.refresh_from_db()
        assert job.status == "failed"
        assert "stopped sending heartbeats" in job.error and job.worker_host.split(":")[0] in job.error
    finally:
        _stop(worker)
