"""Prompt-set files imported off the request thread, with the progress the import form's bar polls.

The same machinery as labeling's import jobs (an upload spooled under MEDIA_ROOT/imports/, the ``default``
queue or, without a broker, a thread of this process, progress written beside the upload) for a
``PromptSetImport`` row. The API imports a file up to IMPORT_ASYNC_BYTES inside the request; the form always
hands the file to a job so its bar shows how far the import got.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.import_jobs import (STALLED, _Progress, import_job_progress, import_job_stalled, import_jobs_reap,
                                  upload_discard, upload_path)
from specloop.errors import ApplicationError
from specloop.inprocess import run_in_process

from . import services
from .models import PromptSetImport

log = logging.getLogger(__name__)


def prompt_set_import_run_upload(*, user, name: str, spec_version, upload: str, options: dict[str, Any],
                                 on_progress=None, field: str = "body"):
    with open(upload_path(upload), "rb") as source:
        return services.prompt_set_import(user=user, name=name, spec_version=spec_version, source=source,
                                          options=options, on_progress=on_progress, field=field)


def prompt_set_import_job_create(*, user, name: str, spec_version, upload: str, size: int,
                                 options: dict[str, Any]) -> PromptSetImport:
    """Save the job queued and hand it over once the row is committed."""
    with transaction.atomic():
        job = PromptSetImport.objects.create(owner=user, spec_version=spec_version, name=name, upload=upload,
                                             size_bytes=size, options=options)
        transaction.on_commit(lambda: _dispatch_or_fail(job_id=job.pk))
    return job


def _dispatch_or_fail(*, job_id: int) -> None:
    try:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            from .tasks import prompt_set_import_run_task

            prompt_set_import_run_task.apply_async(args=[job_id], task_id=f"prompt-set-import-{job_id}")
            return
        run_in_process(lambda: prompt_set_import_job_run(job_id=job_id), name=f"prompt-set-import-{job_id}")
    except Exception:
        log.exception("prompt-set import %s could not be queued", job_id)
        upload_discard(PromptSetImport.objects.filter(pk=job_id).values_list("upload", flat=True).first() or "")
        PromptSetImport.objects.filter(pk=job_id, status=PromptSetImport.QUEUED).update(
            status=PromptSetImport.FAILED, upload="", finished_at=timezone.now(),
            error={"error": "the job queue is unavailable, so the import never started; send the file again shortly",
                   "detail": {"service": "broker"}})


def prompt_set_import_job_run(*, job_id: int) -> str:
    """Run a queued job (again after a lost worker: the import is atomic) and record how it ended."""
    job = PromptSetImport.objects.select_related("owner", "spec_version").filter(pk=job_id).first()
    if job is None or job.status not in (PromptSetImport.QUEUED, PromptSetImport.RUNNING):
        return job.status if job else "missing"
    PromptSetImport.objects.filter(pk=job.pk).update(status=PromptSetImport.RUNNING)
    progress = _Progress(job)
    fields: dict[str, Any]
    try:
        prompt_set = prompt_set_import_run_upload(user=job.owner, name=job.name, spec_version=job.spec_version,
                                                  upload=job.upload, options=job.options, on_progress=progress,
                                                  field="file")
    except ApplicationError as error:
        body = {"error": error.message, "detail": error.detail}
        if "line" in error.detail:
            body["line"] = error.detail["line"]
        fields = {"status": PromptSetImport.FAILED, "error": body}
    except Exception:
        log.exception("prompt-set import %s failed", job.pk)
        fields = {"status": PromptSetImport.FAILED,
                  "error": {"error": "the import stopped on an unexpected error; the server log has the details",
                            "detail": {}}}
    else:
        fields = {"status": PromptSetImport.SUCCEEDED, "progress": 1.0, "prompt_set": prompt_set}
    fields["lines"] = import_job_progress(job)["lines"]
    upload_discard(job.upload)
    PromptSetImport.objects.filter(pk=job.pk).update(upload="", finished_at=timezone.now(), **fields)
    return fields["status"]


def prompt_set_import_as_read(job: PromptSetImport) -> PromptSetImport:
    """A running job silent for IMPORT_STALL_SECONDS (its runner died with its process) reads as failed: nothing
    was imported (labeling's rule, on the same progress file). A late redelivery finds it failed and does nothing
    only once it is recorded, which a read does not do."""
    if import_job_stalled(job):
        job.status, job.error = PromptSetImport.FAILED, STALLED
    return job


def prompt_set_imports_reap(*, now=None) -> int:
    """Record as failed the running imports that stopped: labeling's check, on this table (celery beat runs it)."""
    return import_jobs_reap(now=now, model=PromptSetImport)


def prompt_set_import_entry(job: PromptSetImport) -> dict[str, Any]:
    job = prompt_set_import_as_read(job)
    return {"job": job, "running": job.status in (PromptSetImport.QUEUED, PromptSetImport.RUNNING),
            **import_job_progress(job)}


def prompt_set_import_out(job: PromptSetImport) -> dict[str, Any]:
    job = prompt_set_import_as_read(job)
    out = {"id": job.pk, "status": job.status, **import_job_progress(job), "name": job.name,
           "spec": job.spec_version.spec_id, "version": job.spec_version.number, "format": job.options.get("format"),
           "size_bytes": job.size_bytes, "created_at": job.created_at, "finished_at": job.finished_at,
           "prompt_set": job.prompt_set_id, "url": f"/api/v1/prompt-sets/imports/{job.pk}/"}
    if job.status == PromptSetImport.FAILED:
        out["error"] = job.error
    return out
