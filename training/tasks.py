"""Celery tasks: ids in, one service call. Training goes to the ``gpu`` queue, the lost-worker check to ``default``."""

from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=services.TRANSIENT_ERRORS,
             retry_backoff=5, retry_backoff_max=120, max_retries=services.MAX_ATTEMPTS)
def training_job_run_task(self, job_id: int) -> str:
    return services.training_job_run(job_id=job_id)


@shared_task(acks_late=True)
def training_jobs_reap_task() -> int:
    return services.training_jobs_check()
