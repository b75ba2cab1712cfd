"""Celery tasks: a large prompt-set import, run on the ``default`` queue, and the check for imports that stopped."""

from celery import shared_task

from . import import_jobs


@shared_task(acks_late=True, reject_on_worker_lost=True)
def prompt_set_import_run_task(job_id: int) -> str:
    # Redelivered after a lost worker, it runs the import again: the import is atomic, so nothing was kept.
    return import_jobs.prompt_set_import_job_run(job_id=job_id)


@shared_task
def prompt_set_imports_reap_task() -> int:
    return import_jobs.prompt_set_imports_reap()
