"""Training jobs: create, hand to a worker, run (the torch boundary), cancel, and fail the lost ones.

A job moves queued → running → succeeded | failed | cancelled. Every move out of ``queued`` or
``running`` is one conditional UPDATE, so two deliveries of the same message run the job once, and a
job the heartbeat check has failed stays failed even if its worker wakes up again.
"""

import dataclasses
import os
import socket
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from labeling import selectors as labeling_selectors
from labeling.models import ExportSnapshot
from specloop.errors import Conflict, ValidationFailed

from .models import JobLog, JobMetric, TrainingJob

# Job kinds the workers can run today, and the ml package's name for each.
ML_KINDS = {TrainingJob.REWARD_MODEL: "reward", TrainingJob.COST_MODEL: "cost"}
# Errors that say "try again later" (the database or the broker went away), not "this job is wrong".
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError)
MAX_ATTEMPTS = 3
# Progress and heartbeat writes, and the cancel check, happen at most this often (seconds) per job.
REPORT_EVERY_SECONDS = 1.0


def worker_host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- create ----------------------------------------------------------------------------------------


def job_config_validate(*, kind: Any, config: Any) -> dict[str, Any]:
    """The job's full config (defaults filled in), or ValidationFailed naming every bad key."""
    known = dict(TrainingJob.KIND_CHOICES)
    if kind not in known:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(known)}")
    if kind not in ML_KINDS:
        raise ValidationFailed.one(
            "kind", f"{kind} jobs are not available yet; available kinds: {', '.join(ML_KINDS)}")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationFailed.one("config", "send a JSON object of settings, e.g. {\"epochs\": 1}")
    if "kind" in config:
        raise ValidationFailed.one("config.kind", "the job's kind sets this; leave it out of config")
    from rewardmodels import ml

    try:
        cfg = ml.config_from_dict({**config, "kind": ML_KINDS[kind]})
    except ml.ConfigError as exc:
        raise ValidationFailed([{"field": f"config.{e['field']}", "message": e["message"]} for e in exc.errors]) from None
    return dataclasses.asdict(cfg)


def _exports_resolve(*, user, export_ids: Any) -> list[ExportSnapshot]:
    if isinstance(export_ids, (int, str)) and not isinstance(export_ids, bool):
        export_ids = [export_ids]
    if not isinstance(export_ids, list) or not export_ids:
        raise ValidationFailed.one("exports", "name at least one export snapshot: \"export\": id or \"exports\": [ids]")
    visible = {e.pk: e for e in labeling_selectors.export_list(user=user).filter(
        pk__in=[i for i in export_ids if isinstance(i, int) and not isinstance(i, bool)])}
    errors = []
    for n, export_id in enumerate(export_ids):
        if export_id not in visible:
            errors.append({"field": f"exports[{n}]", "message": f"no export snapshot {export_id!r} that you can use"})
    if len(set(export_ids)) != len(export_ids) and not errors:
        errors.append({"field": "exports", "message": "an export snapshot is listed twice"})
    if errors:
        raise ValidationFailed(errors)
    return [visible[i] for i in export_ids]


def training_job_create(*, user, kind: Any, export_ids: Any, config: Any, name: str = "",
                        dispatch: bool = True) -> TrainingJob:
    """Validate, save the job queued, and hand it to a worker once the rows are committed.

    ``dispatch=False`` leaves it queued for the caller to run (the demo runs its jobs in the foreground).
    """
    full_config = job_config_validate(kind=kind, config=config)
    exports = _exports_resolve(user=user, export_ids=export_ids)
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationFailed.one("name", "must be text of at most 200 characters")
    with transaction.atomic():
        job = TrainingJob.objects.create(kind=kind, name=name.strip(), config=full_config, created_by=user)
        job.exports.set(exports)
        JobLog.objects.create(job=job, message=(
            f"queued by {user.username}: {kind} on export(s) {', '.join(str(e.pk) for e in exports)}"))
        if dispatch:
            transaction.on_commit(lambda: training_job_dispatch(job_id=job.pk))
    return job


def training_job_dispatch(*, job_id: int) -> None:
    """To the gpu queue; without a broker, in-process (a thread, or inline when TRAINING_INPROCESS=sync)."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from .tasks import training_job_run_task

        training_job_run_task.apply_async(args=[job_id], task_id=f"training-job-{job_id}")
        return
    if settings.TRAINING_INPROCESS == "sync":
        training_job_run(job_id=job_id)
        return

    def run() -> None:
        try:
            training_job_run(job_id=job_id)
        finally:
            connection.close()

    threading.Thread(target=run, name=f"training-job-{job_id}", daemon=True).start()


# --- run -------------------------------------------------------------------------------------------


def _log(job_id: int, message: str, level: str = "info") -> None:
    JobLog.objects.create(job_id=job_id, message=message[:20000], level=level)


def _finish(job_id: int, status: str, **fields: Any) -> bool:
    """Move a running job to its end state; False when something else (cancel, the reaper) ended it first."""
    now = timezone.now()
    return bool(TrainingJob.objects.filter(pk=job_id, status=TrainingJob.RUNNING).update(
        status=status, finished_at=now, heartbeat_at=now, eta_seconds=None, **fields))


class _Reporter:
    """The ml hooks: metric rows, log lines, throttled progress and heartbeat, the cancel check."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.every = REPORT_EVERY_SECONDS
        self._progress_at = 0.0
        self._stop_at = 0.0
        self._stop = False
        self.steps = 0

    def on_metrics(self, step: int, split: str, values: dict[str, float]) -> None:
        JobMetric.objects.create(job_id=self.job_id, step=step, split=split, values=values)
        if split == "train":
            self.steps = max(self.steps, step)

    def on_log(self, message: str) -> None:
        _log(self.job_id, message)

    def on_progress(self, fraction: float, eta: float | None) -> None:
        now = time.monotonic()
        if now - self._progress_at < self.every and fraction < 1.0:
            return
        self._progress_at = now
        TrainingJob.objects.filter(pk=self.job_id, status=TrainingJob.RUNNING).update(
            progress=min(1.0, max(0.0, float(fraction))), eta_seconds=eta, steps=self.steps,
            heartbeat_at=timezone.now())

    def should_stop(self) -> bool:
        now = time.monotonic()
        if self._stop or now - self._stop_at < self.every:
            return self._stop
        self._stop_at = now
        row = TrainingJob.objects.filter(pk=self.job_id).values("status", "cancel_requested").first()
        # Stop on a cancel request, and also when the job is no longer ours (the heartbeat check failed it).
        self._stop = row is None or row["cancel_requested"] or row["status"] != TrainingJob.RUNNING
        return self._stop


def _drop_broken_connection() -> None:
    """After a database error: reconnect on the next query if the connection is gone, keep it otherwise."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()


class _Heartbeat(threading.Thread):
    """Beats while the job runs, also through long steps and model loading that report no progress."""

    def __init__(self, job_id: int, seconds: float):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id = job_id
        self.seconds = seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.seconds):
                try:
                    TrainingJob.objects.filter(pk=self.job_id, status=TrainingJob.RUNNING).update(
                        heartbeat_at=timezone.now())
                except TRANSIENT_ERRORS:
                    _drop_broken_connection()
        finally:
            connection.close()


def training_job_run(*, job_id: int, host: str | None = None) -> str:
    """Run a queued job to its end; returns the job's final status (or its current one when it was not queued)."""
    host = host or worker_host()
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.QUEUED).update(
        status=TrainingJob.RUNNING, started_at=now, heartbeat_at=now, worker_host=host, attempts=F("attempts") + 1,
        progress=0.0, error="")
    if not claimed:
        # A second delivery of the same job, or a job cancelled while queued: nothing to run. A redelivery
        # after a worker died finds the job running with a stale heartbeat; the check fails it.
        training_jobs_reap()
        return TrainingJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
    job = TrainingJob.objects.get(pk=job_id)
    heartbeat = _Heartbeat(job_id, settings.TRAINING_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        return _train(job, host)
    except TRANSIENT_ERRORS:
        # The database or broker went away mid-job: back to queued for the task's retry, unless tried enough.
        _drop_broken_connection()
        if job.attempts >= MAX_ATTEMPTS:
            _finish(job_id, TrainingJob.FAILED, error="gave up after repeated database or broker errors")
            return TrainingJob.FAILED
        TrainingJob.objects.filter(pk=job_id, status=TrainingJob.RUNNING).update(status=TrainingJob.QUEUED)
        raise
    except Exception as exc:  # the job is wrong (bad data, out of memory, ...): fail it with the reason
        _log(job_id, traceback.format_exc(), level="error")
        _finish(job_id, TrainingJob.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return TrainingJob.FAILED
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)


def _train(job: TrainingJob, host: str) -> str:
    from rewardmodels import ml
    from rewardmodels import services as registry

    cfg = ml.config_from_dict(job.config)
    cfg.backbone = ml.resolve_backbone(cfg.backbone, Path(settings.MODELS_DIR))
    exports = list(job.exports.select_related("spec_version__spec", "campaign").order_by("pk"))
    data_files = []
    for export in exports:
        path = Path(settings.MEDIA_ROOT) / export.path
        if not path.is_file():
            raise FileNotFoundError(f"the file of export {export.pk} is missing from storage ({export.path})")
        data_files.append(path)
    from rewardmodels.ml.device import choose_device

    _, device = choose_device(cfg.device)  # the trainer's own choice and label, shown while the job runs
    TrainingJob.objects.filter(pk=job.pk).update(device=device)
    _log(job.pk, f"running on {host}, device {device}; backbone {cfg.backbone}; "
                 f"{sum(e.n_pairs for e in exports)} pairs from {len(exports)} export(s)")
    output_dir = Path(settings.MEDIA_ROOT) / "models" / f"job-{job.pk}"
    provenance = {
        "job": job.pk,
        "kind": job.kind,
        "exports": [{"id": e.pk, "sha256": e.sha256, "name": e.name, "source": e.source,
                     "campaign": e.campaign_id, "n_pairs": e.n_pairs,
                     "spec_version": str(e.spec_version) if e.spec_version_id else None} for e in exports],
    }
    reporter = _Reporter(job.pk)
    hooks = ml.TrainHooks(on_metrics=reporter.on_metrics, on_log=reporter.on_log,
                          on_progress=reporter.on_progress, should_stop=reporter.should_stop)
    result = ml.train(cfg, data_files=data_files, output_dir=output_dir, provenance=provenance, hooks=hooks)
    common = {"device": result.device, "versions": result.versions, "steps": result.steps}
    if result.status == "cancelled":
        _log(job.pk, f"cancelled after {result.steps} steps")
        _finish(job.pk, TrainingJob.CANCELLED, **common)
        return TrainingJob.CANCELLED
    artifacts = [{"name": p.name, "path": str(p.relative_to(settings.MEDIA_ROOT)), "size_bytes": p.stat().st_size}
                 for p in sorted(result.output_dir.iterdir()) if p.is_file()]
    with transaction.atomic():
        if not _finish(job.pk, TrainingJob.SUCCEEDED, progress=1.0, final_metrics=result.metrics,
                       artifacts=artifacts, **common):
            return TrainingJob.objects.get(pk=job.pk).status
        registry.reward_model_register(job=job, exports=exports, output_dir=result.output_dir,
                                       metrics=result.metrics, config=dataclasses.asdict(cfg))
        _log(job.pk, f"succeeded in {result.seconds:.1f} s: {result.n_train} training pairs, "
                     f"{result.n_eval} held out")
    return TrainingJob.SUCCEEDED


# --- cancel and the lost-worker check ---------------------------------------------------------------


def training_job_cancel(*, job: TrainingJob, user) -> TrainingJob:
    """A queued job is cancelled at once; a running one stops at its next step."""
    if TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.QUEUED).update(
            status=TrainingJob.CANCELLED, cancel_requested=True, finished_at=timezone.now()):
        _log(job.pk, f"cancelled by {user.username} before it started")
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            from specloop.celery import app

            app.control.revoke(f"training-job-{job.pk}")
    elif TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.RUNNING).update(cancel_requested=True):
        _log(job.pk, f"cancel requested by {user.username}; the job stops after its current step")
    else:
        job.refresh_from_db(fields=["status"])
        raise Conflict(f"Job {job.pk} has already {job.status}; only a queued or running job can be cancelled.")
    job.refresh_from_db()
    return job


def training_jobs_reap(*, now=None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, machine lost); returns how many."""
    now = now or timezone.now()
    timeout = settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS
    stale = list(TrainingJob.objects.filter(
        status=TrainingJob.RUNNING, heartbeat_at__lt=now - timedelta(seconds=timeout)
    ).values_list("pk", "worker_host", "heartbeat_at"))
    failed = 0
    for pk, host, beat in stale:
        reason = (f"The worker {host or '(unknown)'} stopped sending heartbeats at {beat:%Y-%m-%d %H:%M:%S} UTC "
                  f"(none for over {timeout:.0f} s): it was killed or lost its machine. Launch the job again.")
        if TrainingJob.objects.filter(pk=pk, status=TrainingJob.RUNNING, heartbeat_at=beat).update(
                status=TrainingJob.FAILED, error=reason, finished_at=now, eta_seconds=None):
            _log(pk, reason, level="error")
            failed += 1
    return failed
