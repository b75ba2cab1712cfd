"""Large imports: spooled to disk, run by a job off the request thread, polled for status and progress."""

import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from labeling import import_jobs, imports, tasks
from labeling.models import ExportSnapshot, ImportJob, Item
from specloop.services import user_upsert
from tests.labeling.helpers import jsonl, make_campaign
from tests.training.test_worker import real_broker  # noqa: F401  (a fixture: a real broker, tasks not eager)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_ASYNC_BYTES = 200  # every body below over this runs as a job


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=0)


def leftovers() -> list[str]:
    folder = settings.MEDIA_ROOT / "imports"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def post_items(actors, campaign, body: str, query: str = "", who: str = "admin"):
    return actors.api(who).post(f"/api/v1/campaigns/{campaign.pk}/items/{query}", body.encode(),
                                content_type="application/x-ndjson")


def test_a_large_item_file_answers_202_and_its_job_reports_the_result_a_small_file_would_answer(
        actors, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_items(actors, campaign, jsonl(50))
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["status"] == "queued" and response["Location"] == job["url"] == f"/api/v1/imports/{job['id']}/"
    done = actors.api("admin").get(job["url"]).json()
    assert (done["status"], done["progress"], done["lines"]) == ("succeeded", 1.0, 50)
    assert done["result"] == {"created_items": 50, "created_tasks": 50, "duplicates": 0}
    assert "error" not in done and Item.objects.filter(campaign=campaign).count() == 50
    assert leftovers() == []  # the upload and its progress file are gone


def test_a_small_file_is_still_imported_in_the_request(actors, campaign, settings):
    settings.IMPORT_ASYNC_BYTES = 10**6
    response = post_items(actors, campaign, jsonl(3))
    assert response.status_code == 201 and response.json() == {"created_items": 3, "created_tasks": 3, "duplicates": 0}
    assert not ImportJob.objects.exists() and leftovers() == []


def test_a_bad_line_fails_the_job_naming_the_line_and_keeps_nothing(actors, campaign,
                                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = post_items(actors, campaign, jsonl(40) + '\n{"prompt": "p", "response_a": "a", "response_b": ""}').json()
    failed = actors.api("admin").get(job["url"]).json()
    assert failed["status"] == "failed" and "result" not in failed
    assert failed["error"]["line"] == 41
    assert failed["error"]["error"] == "line 41: response_b is empty; pass keep_empty=1 to keep empty replies"
    assert not Item.objects.filter(campaign=campaign).exists() and leftovers() == []
    with django_capture_on_commit_callbacks(execute=True):
        kept = post_items(actors, campaign, jsonl(40) + '\n{"prompt": "p", "response_a": "a", "response_b": ""}',
                          "?keep_empty=1").json()
    assert actors.api("admin").get(kept["url"]).json()["result"]["created_items"] == 41


def test_a_large_pairs_file_becomes_a_snapshot_through_a_job(actors, django_capture_on_commit_callbacks):
    body = "\n".join(json.dumps({"prompt": f"p{i}", "chosen": "good", "rejected": "bad"}) for i in range(30))
    with django_capture_on_commit_callbacks(execute=True):
        response = actors.api("admin").post("/api/v1/exports/import/?format=trl&name=big", body.encode(),
                                            content_type="application/x-ndjson")
    assert response.status_code == 202
    done = actors.api("admin").get(response.json()["url"]).json()
    snapshot = ExportSnapshot.objects.get()
    assert done["status"] == "succeeded" and done["snapshot"] == snapshot.pk
    assert done["result"]["id"] == snapshot.pk and done["result"]["n_pairs"] == 30 and snapshot.name == "big"
    assert leftovers() == []


def test_an_import_job_is_seen_by_its_owner_only(actors, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        url = post_items(actors, campaign, jsonl(20)).json()["url"]
    other_admin, token, _ = user_upsert(username="adam_admin", role_names=["admin"], password="pw-adam-123")
    other = actors.api(None)
    other.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert other.get(url).status_code == 404
    assert other.get("/api/v1/imports/999999/").status_code == 404
    assert actors.api("rater").get(url).status_code == 403
    assert actors.api(None).get(url).status_code == 401


def test_while_a_job_runs_its_status_reads_the_progress_the_import_reports(actors, campaign):
    path, size = import_jobs.upload_spool([b"x" * 300], field="body")
    job = ImportJob.objects.create(kind=ImportJob.ITEMS, owner=actors.admin, campaign=campaign, upload=path,
                                   size_bytes=size, options={"format": "jsonl"}, status=ImportJob.RUNNING)
    assert import_jobs.import_job_out(job)["progress"] == 0.0
    import_jobs._Progress(job)(0.25, 1200)
    out = actors.api("admin").get(f"/api/v1/imports/{job.pk}/").json()
    assert (out["status"], out["progress"], out["lines"]) == ("running", 0.25, 1200)


def test_an_upload_over_the_limit_is_refused_while_it_streams_and_leaves_no_file(actors, campaign, monkeypatch):
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 1000)
    response = post_items(actors, campaign, jsonl(100))
    assert response.status_code == 413 and "the limit for one import" in response.json()["error"]
    assert response.json()["detail"]["errors"][0]["field"] == "body"
    assert leftovers() == [] and not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_job_runs_in_a_background_thread(actors, settings):
    settings.TRAINING_INPROCESS = "thread"
    campaign = make_campaign(actors, n_items=0)
    job = post_items(actors, campaign, jsonl(60)).json()
    worker = next((t for t in threading.enumerate() if t.name == f"import-job-{job['id']}"), None)
    if worker is not None:
        worker.join(timeout=60)
    done = actors.api("admin").get(job["url"]).json()
    assert done["status"] == "succeeded" and done["result"]["created_items"] == 60


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_default_queue_runs_a_large_import(actors, real_broker):
    from tests.training.test_worker import _start_worker, _stop, _wait_for

    campaign = make_campaign(actors, n_items=0)
    worker_log = real_broker / "worker.log"
    worker = _start_worker(settings.MEDIA_ROOT, worker_log)  # the worker reads the upload from the same folder
    try:
        job = post_items(actors, campaign, jsonl(80)).json()
        assert job["status"] == "queued"
        done = _wait_for(lambda: (out := actors.api("admin").get(job["url"]).json())["status"] in ("succeeded", "failed")
                         and out, seconds=120, what="the import job to finish", log_path=worker_log)
        assert done["status"] == "succeeded", done
        assert done["result"]["created_items"] == 80 and leftovers() == []
    finally:
        _stop(worker)


def test_when_the_queue_cannot_take_the_job_it_fails_at_once_with_the_reason(actors, campaign, monkeypatch,
                                                                            django_capture_on_commit_callbacks):
    def broker_down(*, job_id):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(import_jobs, "import_job_dispatch", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        job = post_items(actors, campaign, jsonl(20)).json()
    failed = actors.api("admin").get(job["url"]).json()
    assert failed["status"] == "failed" and "queue is unavailable" in failed["error"]["error"]
    assert leftovers() == [] and not Item.objects.exists()


def running_job(actors, campaign, *, silent_seconds: float) -> ImportJob:
    """A job marked running whose last progress was written ``silent_seconds`` ago."""
    path, size = import_jobs.upload_spool([b"x" * 300], field="body")
    job = ImportJob.objects.create(kind=ImportJob.ITEMS, owner=actors.admin, campaign=campaign, upload=path,
                                   size_bytes=size, options={"format": "jsonl"}, status=ImportJob.RUNNING)
    import_jobs._Progress(job)(0.5, 40)
    then = time.time() - silent_seconds
    os.utime(import_jobs.upload_path(path).with_suffix(".progress"), (then, then))
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=silent_seconds + 5))
    return ImportJob.objects.get(pk=job.pk)


def test_an_import_whose_runner_stopped_reads_failed_and_the_periodic_check_records_it(actors, campaign, settings):
    """A job run in a thread of a web process that restarted writes no more progress: it must not poll forever."""
    settings.IMPORT_STALL_SECONDS = 600
    stopped = running_job(actors, campaign, silent_seconds=900)
    alive = running_job(actors, campaign, silent_seconds=30)

    out = actors.api("admin").get(f"/api/v1/imports/{stopped.pk}/").json()
    assert out["status"] == "failed" and "stopped without finishing" in out["error"]["error"]
    assert actors.api("admin").get(f"/api/v1/imports/{alive.pk}/").json()["status"] == "running"
    assert [e["job"].pk for e in import_jobs.import_jobs_running(user=actors.admin, campaign=campaign)] == [alive.pk]

    assert tasks.import_jobs_reap_task() == 1
    stopped.refresh_from_db()
    assert (stopped.status, stopped.upload, stopped.lines) == (ImportJob.FAILED, "", 40)
    assert stopped.finished_at is not None and ImportJob.objects.get(pk=alive.pk).status == ImportJob.RUNNING
    assert import_jobs.import_job_run(job_id=stopped.pk) == ImportJob.FAILED  # a late redelivery does nothing
    alive_files = [Path(alive.upload).name, Path(alive.upload).with_suffix(".progress").name]
    assert leftovers() == sorted(alive_files)  # the stopped job's upload and progress file are gone


def test_the_periodic_check_runs_the_import_reap_with_the_training_reap():
    assert settings.CELERY_BEAT_SCHEDULE["import-jobs-reap"]["task"] == "labeling.tasks.import_jobs_reap_task"
