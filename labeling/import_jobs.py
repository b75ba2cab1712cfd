"""Uploads spooled to disk, and large imports run as jobs off the request thread.

An upload (a form's file or a raw API body) is copied in chunks to MEDIA_ROOT/imports/, so no request
holds a file in memory. A file up to IMPORT_ASYNC_BYTES is imported inside the request, as before; a larger
one becomes an ``ImportJob`` run by a worker (the ``default`` queue; without a broker, a background thread
of this process, or inline with TRAINING_INPROCESS=sync), whose status and progress the API and the import
forms poll.
"""

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from specloop.errors import ApplicationError, NotFound
from specloop.inprocess import run_in_process

from .imports import check_size
from .models import Campaign, ImportJob

log = logging.getLogger(__name__)
UPLOAD_DIR = "imports"
CHUNK_BYTES = 1 << 20
PROGRESS_EVERY_SECONDS = 0.5


# --- uploads -------------------------------------------------------------------------------------


def upload_spool(chunks: Iterable[bytes], *, field: str) -> tuple[str, int]:
    """Write the chunks to a new file under MEDIA_ROOT/imports/; (its path relative to MEDIA_ROOT, bytes).

    A file over the import limit is refused as soon as it passes it, and nothing is left behind.
    """
    directory = Path(settings.MEDIA_ROOT) / UPLOAD_DIR
    directory.mkdir(parents=True, exist_ok=True)
    relative = f"{UPLOAD_DIR}/{uuid.uuid4().hex}.upload"
    path = Path(settings.MEDIA_ROOT) / relative
    size = 0
    try:
        with open(path, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                check_size(size, field=field)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return relative, size


def stream_chunks(stream) -> Iterable[bytes]:
    """A readable stream (a request body) in chunks."""
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def upload_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def upload_discard(relative: str) -> None:
    if relative:
        path = upload_path(relative)
        path.unlink(missing_ok=True)
        path.with_suffix(".progress").unlink(missing_ok=True)


def runs_as_job(size: int) -> bool:
    """Whether an upload of this size is imported by a job rather than inside the request."""
    return size > settings.IMPORT_ASYNC_BYTES


# --- running an import ---------------------------------------------------------------------------


def import_run(*, kind: str, user, upload: str, options: dict[str, Any], campaign: Campaign | None = None,
               on_progress=None):
    """The import itself, for a request or a job: an ``ImportResult`` (items) or the new ``ExportSnapshot`` (pairs)."""
    from . import services
    from .pair_imports import export_snapshot_import

    with open(upload_path(upload), "rb") as source:
        if kind == ImportJob.ITEMS:
            return services.items_import(campaign=campaign, source=source, fmt=options["format"],
                                         keep_empty=options.get("keep_empty", False), on_progress=on_progress)
        return export_snapshot_import(user=user, source=source, fmt=options["format"], name=options.get("name", ""),
                                      keep_empty=options.get("keep_empty", False), on_progress=on_progress,
                                      field=options.get("field", "body"))


def snapshot_summary(snapshot) -> dict[str, Any]:
    return {"id": snapshot.pk, "name": snapshot.name, "n_pairs": snapshot.n_pairs, "sha256": snapshot.sha256,
            "duplicates": snapshot.filters.get("duplicates", 0), "download": f"/api/v1/exports/{snapshot.pk}/pairs.jsonl"}


def import_job_create(*, user, kind: str, upload: str, size: int, options: dict[str, Any],
                      campaign: Campaign | None = None) -> ImportJob:
    """Save the job queued and hand it to a worker once the row is committed."""
    with transaction.atomic():
        job = ImportJob.objects.create(kind=kind, owner=user, campaign=campaign, upload=upload, size_bytes=size,
                                       options=options)
        transaction.on_commit(lambda: _dispatch_or_fail(job_id=job.pk))
    return job


def _dispatch_or_fail(*, job_id: int) -> None:
    """Hand the job over; when the queue cannot take it (the broker is down), the job fails at once with a
    reason, so no row waits ``queued`` for a message that was never sent."""
    try:
        import_job_dispatch(job_id=job_id)
    except Exception:
        log.exception("import job %s could not be queued", job_id)
        upload_discard(ImportJob.objects.filter(pk=job_id).values_list("upload", flat=True).first() or "")
        ImportJob.objects.filter(pk=job_id, status=ImportJob.QUEUED).update(
            status=ImportJob.FAILED, upload="", finished_at=timezone.now(),
            error={"error": "the job queue is unavailable, so the import never started; send the file again shortly",
                   "detail": {"service": "broker"}})


def import_job_dispatch(*, job_id: int) -> None:
    """To the default queue; without a broker, in-process like training jobs (a thread, or inline with "sync")."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from .tasks import import_job_run_task

        import_job_run_task.apply_async(args=[job_id], task_id=f"import-job-{job_id}")
        return
    run_in_process(lambda: import_job_run(job_id=job_id), name=f"import-job-{job_id}")


class _Progress:
    """Throttled progress, written to a file beside the upload (the import's rows are not committed yet)."""

    def __init__(self, job: ImportJob):
        self.path = upload_path(job.upload).with_suffix(".progress")
        self._at = 0.0

    def __call__(self, fraction: float, lines: int) -> None:
        now = time.monotonic()
        if now - self._at < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        self._at = now
        tmp = self.path.with_suffix(".progress-tmp")
        tmp.write_text(json.dumps({"progress": round(float(fraction), 4), "lines": int(lines)}))
        os.replace(tmp, self.path)


def import_job_run(*, job_id: int) -> str:
    """Run a queued job (again after a lost worker: the import is atomic) and record how it ended."""
    job = ImportJob.objects.select_related("campaign", "owner").filter(pk=job_id).first()
    if job is None or job.status not in (ImportJob.QUEUED, ImportJob.RUNNING):
        return job.status if job else "missing"
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.RUNNING)
    progress = _Progress(job)
    fields: dict[str, Any]
    try:
        outcome = import_run(kind=job.kind, user=job.owner, upload=job.upload, options=job.options,
                             campaign=job.campaign, on_progress=progress)
    except ApplicationError as error:
        body = {"error": error.message, "detail": error.detail}
        if "line" in error.detail:
            body["line"] = error.detail["line"]
        fields = {"status": ImportJob.FAILED, "error": body}
    except Exception:
        log.exception("import job %s failed", job.pk)
        fields = {"status": ImportJob.FAILED,
                  "error": {"error": "the import stopped on an unexpected error; the server log has the details",
                            "detail": {}}}
    else:
        if job.kind == ImportJob.ITEMS:
            fields = {"result": outcome.as_dict()}
        else:
            fields = {"result": snapshot_summary(outcome), "snapshot": outcome}
        fields.update(status=ImportJob.SUCCEEDED, progress=1.0)
    fields["lines"] = import_job_progress(job)["lines"]
    upload_discard(job.upload)
    ImportJob.objects.filter(pk=job.pk).update(upload="", finished_at=timezone.now(), **fields)
    return fields["status"]


# --- reading -------------------------------------------------------------------------------------


# --- a job whose runner is gone ------------------------------------------------------------------

STALLED = {"error": "the import stopped without finishing (its worker or the server restarted); nothing was "
                    "imported: send the file again", "detail": {}}


def import_job_stalled(job: ImportJob, now=None) -> bool:
    """Running, and silent for IMPORT_STALL_SECONDS: no progress written (the runner writes it every batch).

    A job run in a thread of the web process dies with that process; one on a lost worker waits for its
    redelivery. Readers see such a job as failed at once; ``import_jobs_reap`` (celery beat) records it.
    """
    if job.status != ImportJob.RUNNING:
        return False
    now = now or timezone.now()
    try:
        seen = datetime.fromtimestamp(upload_path(job.upload).with_suffix(".progress").stat().st_mtime, tz=UTC)
    except (OSError, ValueError):
        seen = job.created_at
    return (now - max(seen, job.created_at)).total_seconds() > settings.IMPORT_STALL_SECONDS


def import_jobs_reap(*, now=None, model=ImportJob) -> int:
    """Fail the running imports that stopped (see ``import_job_stalled``); returns how many. ``model`` is any
    import-job table with this one's status, upload, progress, lines, error and finished_at (safety's prompt-set
    imports use it too)."""
    now = now or timezone.now()
    failed = 0
    for job in model.objects.filter(status=ImportJob.RUNNING):
        if import_job_stalled(job, now) and model.objects.filter(pk=job.pk, status=ImportJob.RUNNING).update(
                status=ImportJob.FAILED, error=STALLED, upload="", finished_at=now, **import_job_progress(job)):
            upload_discard(job.upload)
            failed += 1
    return failed


def _as_read(job: ImportJob) -> ImportJob:
    """A stalled job reads as the failure the next reap will record (a read writes nothing)."""
    if import_job_stalled(job):
        job.status, job.error = ImportJob.FAILED, STALLED
    return job


def import_job_get(*, user, job_id: Any) -> ImportJob:
    """The user's own import job; anyone else's is not found."""
    try:
        return _as_read(ImportJob.objects.get(pk=int(job_id), owner=user))
    except (ImportJob.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such import.") from None


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    """{"progress", "lines"}: the row's once the job ended, the progress file's while it runs."""
    if job.status in (ImportJob.SUCCEEDED, ImportJob.FAILED) and job.finished_at or not job.upload:
        return {"progress": job.progress, "lines": job.lines}
    try:
        data = json.loads(upload_path(job.upload).with_suffix(".progress").read_text())
        return {"progress": float(data["progress"]), "lines": int(data["lines"])}
    except (OSError, ValueError, KeyError):
        return {"progress": 0.0, "lines": 0}


def import_job_out(job: ImportJob) -> dict[str, Any]:
    out = {"id": job.pk, "kind": job.kind, "status": job.status, **import_job_progress(job),
           "campaign": job.campaign_id, "snapshot": job.snapshot_id, "format": job.options.get("format"),
           "size_bytes": job.size_bytes, "created_at": job.created_at, "finished_at": job.finished_at,
           "url": f"/api/v1/imports/{job.pk}/"}
    if job.status == ImportJob.SUCCEEDED:
        out["result"] = job.result
    elif job.status == ImportJob.FAILED:
        out["error"] = job.error
    return out


def import_job_entry(job: ImportJob) -> dict[str, Any]:
    """What the import forms show of a job: the job, whether it still runs, its progress and lines."""
    return {"job": job, "running": job.status in (ImportJob.QUEUED, ImportJob.RUNNING), **import_job_progress(job)}


def import_jobs_running(*, user, campaign: Campaign | None = None) -> list[dict[str, Any]]:
    """The user's unfinished imports into this campaign (or, without one, into new snapshots), oldest first."""
    jobs = ImportJob.objects.filter(owner=user, status__in=[ImportJob.QUEUED, ImportJob.RUNNING])
    jobs = jobs.filter(campaign=campaign) if campaign is not None else jobs.filter(kind=ImportJob.PAIRS)
    return [import_job_entry(job) for job in jobs.order_by("id") if not import_job_stalled(job)]
