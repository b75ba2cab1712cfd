"""Celery tasks: a large import, run on the ``default`` queue, and the check for imports that stopped."""

from celery import shared_task

from . import import_jobs


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_job_run_task(job_id: int) -> str:
    # Redelivered after a lost worker, it runs the import again: the import is atomic, so nothing was kept.
    return import_jobs.import_job_run(job_id=job_id)


@shared_task
def import_jobs_reap_task() -> int:
    return import_jobs.import_jobs_reap()
