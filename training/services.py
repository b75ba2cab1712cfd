"""Training jobs: create, hand to a worker, run (the torch boundary), cancel, and fail the lost ones.

A job moves queued → running → succeeded | failed | cancelled. Every move out of ``queued`` or
``running`` is one conditional UPDATE, so two deliveries of the same message run the job once, and a
job the heartbeat check has failed stays failed even if its worker wakes up again.
"""

import dataclasses
import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from labeling import selectors as labeling_selectors
from labeling.models import ExportSnapshot
from specloop.errors import Conflict, ServiceUnavailable, ValidationFailed
from specloop.inprocess import run_in_process

from .models import JobLog, JobMetric, TrainingJob

logger = logging.getLogger(__name__)

# The pair-model kinds and the ml package's name for each (rewardmodels.ml trains both).
ML_KINDS = {TrainingJob.REWARD_MODEL: "reward", TrainingJob.COST_MODEL: "cost"}
# Every kind a worker runs today (constrained_finetune comes with the next issue).
RUNNABLE_KINDS = (TrainingJob.REWARD_MODEL, TrainingJob.COST_MODEL, TrainingJob.SAFETY_CLASSIFIER,
                  TrainingJob.EVALUATION)
# An evaluation's config names registry models by id: the config key → the registry kind it must be.
REGISTRY_KEYS = {"safety_classifier": "safety", "reward_model": "reward", "cost_model": "cost"}
# Errors that say "try again later" (the database or the broker went away), not "this job is wrong".
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError)
MAX_ATTEMPTS = 3
# Progress and heartbeat writes, and the cancel check, happen at most this often (seconds) per job.
REPORT_EVERY_SECONDS = 1.0


def worker_host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- create ----------------------------------------------------------------------------------------


def job_config_validate(*, kind: Any, config: Any, user=None) -> dict[str, Any]:
    """The job's full config (defaults filled in), or ValidationFailed naming every bad key.

    Each kind has its own settings: reward and cost models ``rewardmodels.ml.TrainConfig``, the safety
    classifier ``training.ml.safety.SafetyClassifierConfig``, an evaluation ``training.ml.evaluation.EvaluationConfig``
    whose registry ids must name models of the right kind that ``user`` may use (None: any model).
    """
    known = dict(TrainingJob.KIND_CHOICES)
    if kind not in known:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(known)}")
    if kind not in RUNNABLE_KINDS:
        raise ValidationFailed.one(
            "kind", f"{kind} jobs are not available yet; available kinds: {', '.join(RUNNABLE_KINDS)}")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationFailed.one("config", "send a JSON object of settings, e.g. {\"epochs\": 1}")
    if "kind" in config:
        raise ValidationFailed.one("config.kind", "the job's kind sets this; leave it out of config")
    if kind == TrainingJob.SAFETY_CLASSIFIER:
        from .ml import safety as safety_ml

        cfg = _config_parse(safety_ml.safety_config_from_dict, config)
        cfg.backbone = _model_name(cfg.backbone, field="config.backbone")
        return dataclasses.asdict(cfg)
    if kind == TrainingJob.EVALUATION:
        return _evaluation_config_validate(config, user=user)
    from rewardmodels import ml

    cfg = _config_parse(ml.config_from_dict, {**config, "kind": ML_KINDS[kind]})
    cfg.backbone = _model_name(cfg.backbone, field="config.backbone")
    return dataclasses.asdict(cfg)


def _config_parse(parse, config: dict[str, Any]):
    """The ml package's config dataclass; its ConfigError as ValidationFailed with ``config.`` in front of each field."""
    from rewardmodels import ml

    try:
        return parse(config)
    except ml.ConfigError as exc:
        raise ValidationFailed([{"field": f"config.{e['field']}", "message": e["message"]} for e in exc.errors]) from None


def _model_name(name: str, *, field: str, kind_of=None) -> str:
    """A backbone or policy as the job records it: a default or hub id as named, a folder as ``./<folder>``.

    Never any other server path: a folder must be inside the models directory. ``kind_of`` tells the
    sources apart (``rewardmodels.ml.backbone_kind`` for backbones, ``policy_kind`` for policies).
    """
    from rewardmodels import ml

    models_dir = Path(settings.MODELS_DIR)
    try:
        source, target = (kind_of or ml.backbone_kind)(name, models_dir)
    except ml.BackboneError as exc:
        raise ValidationFailed.one(field, str(exc)) from None
    if source == "folder":
        # Kept as "./<folder>", relative to the models directory: the same on a worker whose models directory
        # is elsewhere, shown without a server path, and never mistaken for a hub id if the folder goes.
        return f"./{Path(target).relative_to(models_dir.resolve()).as_posix()}"
    return name


def _registry_problem(*, model_id: int, kind: str, user) -> str | None:
    """Why a registry id cannot serve as a model of ``kind`` here, or None when it can."""
    from rewardmodels import selectors as registry_selectors
    from rewardmodels.models import RewardModel

    models = registry_selectors.reward_model_list(user=user) if user is not None else RewardModel.objects.all()
    model = models.filter(pk=model_id).first()
    wanted = dict(RewardModel.KIND_CHOICES)[kind].split(" (")[0]
    if model is None:
        return f"no model {model_id} in the registry that you can use (a {wanted})"
    if model.kind != kind:
        return f"model {model_id} is a {model.get_kind_display().split(' (')[0]}, not a {wanted}"
    if not (Path(settings.MEDIA_ROOT) / model.path).is_dir():
        return f"the checkpoint of model {model_id} is missing from storage; train it again or pick another"
    return None


def _evaluation_config_validate(config: dict[str, Any], *, user) -> dict[str, Any]:
    from .ml import evaluation as evaluation_ml

    cfg = _config_parse(evaluation_ml.evaluation_config_from_dict, config)
    errors = []
    for key, kind in REGISTRY_KEYS.items():
        model_id = getattr(cfg, key)
        if model_id is None:
            if key == "safety_classifier":
                errors.append({"field": "config.safety_classifier", "message": (
                    "name the safety classifier that judges the replies (a registry id of kind safety)")})
            continue
        if problem := _registry_problem(model_id=model_id, kind=kind, user=user):
            errors.append({"field": f"config.{key}", "message": problem})
    if not cfg.use_responses:
        try:
            cfg.policy = _model_name(cfg.policy, field="config.policy", kind_of=evaluation_ml.policy_kind)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return dataclasses.asdict(cfg)


def _ids(value: Any) -> Any:
    """One id as a list of one; anything else as it came (checked by the caller)."""
    return [value] if isinstance(value, (int, str)) and not isinstance(value, bool) else value


def _exports_resolve(*, user, export_ids: Any, required: bool = True) -> list[ExportSnapshot]:
    export_ids = _ids(export_ids)
    if not required and export_ids in (None, []):
        return []
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


def _prompt_sets_resolve(*, user, prompt_set_ids: Any) -> list:
    """The prompt sets named, in the order named; ValidationFailed naming each one ``user`` cannot use."""
    from . import selectors

    prompt_set_ids = _ids(prompt_set_ids)
    if prompt_set_ids in (None, []):
        return []
    if not isinstance(prompt_set_ids, list):
        raise ValidationFailed.one("prompt_sets", "send a list of prompt set ids, e.g. \"prompt_sets\": [3, 4]")
    visible = {p.pk: p for p in selectors.prompt_sets_usable(user=user).filter(
        pk__in=[i for i in prompt_set_ids if isinstance(i, int) and not isinstance(i, bool)])}
    errors = [{"field": f"prompt_sets[{n}]", "message": f"no prompt set {ps_id!r} that you can use"}
              for n, ps_id in enumerate(prompt_set_ids) if ps_id not in visible]
    if len(set(map(str, prompt_set_ids))) != len(prompt_set_ids) and not errors:
        errors.append({"field": "prompt_sets", "message": "a prompt set is listed twice"})
    if errors:
        raise ValidationFailed(errors)
    return [visible[i] for i in prompt_set_ids]


def _inputs_resolve(*, user, kind: str, config: dict[str, Any], export_ids: Any, prompt_set_ids: Any,
                    data_files: list[dict[str, Any]]) -> tuple[list[ExportSnapshot], list]:
    """What each kind reads: reward and cost models exports; an evaluation prompt sets; the safety
    classifier prompt sets and/or exports (and the command's data files), with a spec version for its categories."""
    if kind in ML_KINDS:
        if _ids(prompt_set_ids) not in (None, []):
            raise ValidationFailed.one("prompt_sets", (
                "reward and cost models train on preference pairs (exports); prompt sets feed "
                "safety_classifier and evaluation jobs"))
        return _exports_resolve(user=user, export_ids=export_ids), []
    if kind == TrainingJob.EVALUATION:
        if _ids(export_ids) not in (None, []):
            raise ValidationFailed.one("exports", "an evaluation reads prompt sets, not export snapshots; leave exports out")
        prompt_sets = _prompt_sets_resolve(user=user, prompt_set_ids=prompt_set_ids)
        if not prompt_sets:
            raise ValidationFailed.one("prompt_sets", "name at least one prompt set to evaluate on: \"prompt_sets\": [ids]")
        if config.get("use_responses"):
            from safety.models import Prompt

            with_responses = set(Prompt.objects.filter(prompt_set__in=prompt_sets, response__isnull=False)
                                 .values_list("prompt_set", flat=True).distinct())
            missing = [p.pk for p in prompt_sets if p.pk not in with_responses]
            if missing:
                raise ValidationFailed.one("config.use_responses", (
                    f"prompt set(s) {', '.join(map(str, missing))} carry no responses to score; "
                    "generate replies with a policy instead (use_responses false)"))
        return [], prompt_sets
    prompt_sets = _prompt_sets_resolve(user=user, prompt_set_ids=prompt_set_ids)
    exports = _exports_resolve(user=user, export_ids=export_ids, required=False)
    if not (prompt_sets or exports or data_files):
        raise ValidationFailed.one("prompt_sets", (
            "name prompt sets and/or export snapshots to train on: \"prompt_sets\": [ids], \"exports\": [ids]"))
    if not (prompt_sets or data_files or any(e.spec_version_id for e in exports)):
        raise ValidationFailed.one("prompt_sets", (
            "the classifier learns a spec version's categories: add a prompt set or a campaign export "
            "(imported exports carry no spec version)"))
    return exports, prompt_sets


def _request_sha256(*, kind: str, exports: list[ExportSnapshot], prompt_sets: list, config: dict[str, Any],
                    name: str, data_files: list[dict[str, Any]]) -> str:
    """What a launch asked for, as a digest: a retry with the same idempotency key must ask for the same."""
    asked: dict[str, Any] = {"kind": kind, "exports": [e.pk for e in exports], "config": config, "name": name}
    if prompt_sets:  # only when named: the digests of keys used before prompt sets existed stay the same
        asked["prompt_sets"] = [p.pk for p in prompt_sets]
    if data_files:
        asked["data_files"] = [f.get("sha256") for f in data_files]
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotency_key_check(key: Any) -> str:
    if not isinstance(key, str) or len(key) > 200 or not key.isprintable():
        raise ValidationFailed.one("idempotency_key", "must be printable text of at most 200 characters, "
                                                      "e.g. a UUID made once per launch and sent again on retries")
    return key.strip()


def _replayed(*, user, key: str, digest: str) -> TrainingJob | None:
    """The job a key already made (its retry), or None; Conflict when the key was used for another request."""
    job = TrainingJob.objects.filter(created_by=user, idempotency_key=key).first()
    if job is not None and job.request_sha256 != digest:
        raise Conflict(f"The Idempotency-Key {key!r} was already used for a different job request (job {job.pk}); "
                       "send a new key for a new job.", detail={"field": "idempotency_key", "job": job.pk})
    return job


def training_job_create(*, user, kind: Any, export_ids: Any = None, config: Any, prompt_set_ids: Any = None,
                        name: str = "", idempotency_key: Any = "", dispatch: bool = True,
                        data_files: list[dict[str, Any]] | None = None) -> TrainingJob:
    """Validate, save the job queued, and hand it to a worker once the rows are committed.

    With an ``idempotency_key``, a second call by the same user with the same key and request returns the
    job the first one made (``job.replayed`` is True) and creates nothing. ``dispatch=False`` leaves the
    job queued for the caller to run (the demo runs its jobs in the foreground). ``data_files`` are
    server-side inputs under MEDIA_ROOT (``safety_classifier_train``'s public rows; see job_inputs.py).
    """
    full_config = job_config_validate(kind=kind, config=config, user=user)
    data_files = list(data_files or [])
    exports, prompt_sets = _inputs_resolve(user=user, kind=kind, config=full_config, export_ids=export_ids,
                                           prompt_set_ids=prompt_set_ids, data_files=data_files)
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationFailed.one("name", "must be text of at most 200 characters")
    name = name.strip()
    key = _idempotency_key_check(idempotency_key)
    digest = _request_sha256(kind=kind, exports=exports, prompt_sets=prompt_sets, config=full_config, name=name,
                             data_files=data_files) if key else ""
    if key and (job := _replayed(user=user, key=key, digest=digest)):
        job.replayed = True
        return job
    inputs = [f"export(s) {', '.join(str(e.pk) for e in exports)}" if exports else "",
              f"prompt set(s) {', '.join(str(p.pk) for p in prompt_sets)}" if prompt_sets else "",
              f"data file(s) {', '.join(f.get('name', '') for f in data_files)}" if data_files else ""]
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(kind=kind, name=name, config=full_config, created_by=user,
                                             idempotency_key=key, request_sha256=digest, data_files=data_files)
            job.exports.set(exports)
            job.prompt_sets.set(prompt_sets)
            JobLog.objects.create(job=job, message=(
                f"queued by {user.username}: {kind} on {' and '.join(i for i in inputs if i)}"))
    except IntegrityError:
        # The same key raced in from a second request that committed first: answer with its job.
        if key and (job := _replayed(user=user, key=key, digest=digest)):
            job.replayed = True
            return job
        raise
    job.replayed = False
    if not dispatch:
        return job
    if connection.in_atomic_block:
        # Inside the caller's transaction the rows exist for a worker only once it commits; if that
        # hand-over fails, the periodic check finds the job never dispatched and fails it.
        transaction.on_commit(lambda: _dispatch_or_log(job_id=job.pk))
        return job
    _dispatch_or_withdraw(job)
    return job


def _dispatch_or_withdraw(job: TrainingJob) -> None:
    """Hand a committed job to the queue; when the queue is down, delete the job again and answer 503.

    Dispatch happens after the commit, not before: a worker that took the message before the commit would
    find no row and drop the job. It is not left to ``on_commit`` either: an error there comes after the
    commit and leaves a queued row that nothing will run. Deleting (not failing) the job keeps "nothing
    was launched" true, so a retry with the same idempotency key launches it then.
    """
    try:
        training_job_dispatch(job_id=job.pk)
    except ServiceUnavailable:
        try:
            TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.QUEUED).delete()
        except TRANSIENT_ERRORS:  # the database went too: the periodic check fails the never-dispatched job
            logger.exception("training job %s could not be withdrawn", job.pk)
        raise


def _dispatch_or_log(*, job_id: int) -> None:
    try:
        training_job_dispatch(job_id=job_id)
    except ServiceUnavailable:
        logger.warning("training job %s stays queued undispatched; the periodic check will handle it", job_id)


# How long one hand-over to the broker may take: a down broker answers 503 in about a second, not minutes.
DISPATCH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 0.5}
QUEUE_DOWN = ("the job queue is unavailable (the broker did not answer); nothing was launched. "
              "Try again in a minute; if it persists, an operator should check the Redis service.")


def training_job_dispatch(*, job_id: int) -> None:
    """To the gpu queue; without a broker, in-process (a thread, or inline when TRAINING_INPROCESS=sync).

    ServiceUnavailable when the broker does not take the message; ``dispatched_at`` is set when it did.
    """
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from .tasks import training_job_run_task

        try:
            training_job_run_task.apply_async(args=[job_id], task_id=f"training-job-{job_id}",
                                              retry=True, retry_policy=DISPATCH_RETRY_POLICY)
        except Exception as exc:  # kombu's OperationalError, a socket error, a timeout: the broker is not there
            logger.warning("training job %s: the broker did not take the job: %r", job_id, exc)
            raise ServiceUnavailable(QUEUE_DOWN, detail={"service": "job queue"}) from exc
        TrainingJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now())  # a worker may have it already
        return
    TrainingJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now())
    run_in_process(lambda: training_job_run(job_id=job_id), name=f"training-job-{job_id}")


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
        _log(self.job_id, public_text(message))  # the trainer names the folder it loaded

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
        # The job's page and log are read by the policy team: the full traceback goes to the server log,
        # the job gets it with server paths replaced by what they are.
        logger.exception("training job %s failed", job_id)
        _log(job_id, public_text(traceback.format_exc()), level="error")
        _finish(job_id, TrainingJob.FAILED, error=public_error(exc)[:2000])
        return TrainingJob.FAILED
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)


def _server_paths() -> list[tuple[str, str]]:
    """Server directories and the words a job's page shows instead, longest first."""
    places = [(settings.MODELS_DIR, "<models dir>"), (settings.MEDIA_ROOT, "<media>"), (settings.BASE_DIR, "<app>"),
              (sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (tempfile.gettempdir(), "<tmp>"),
              (Path.home(), "<home>")]
    out = []
    for path, word in places:
        for spelling in {str(path), str(Path(path).resolve())}:
            if len(spelling) > 1:
                out.append((spelling, word))
    return sorted(out, key=lambda pair: -len(pair[0]))


def public_text(text: str) -> str:
    """``text`` with server paths replaced (a job's error and log are shown to non-admins)."""
    for path, word in _server_paths():
        text = text.replace(path, word)
    return text


def public_error(exc: Exception) -> str:
    from rewardmodels import ml

    if isinstance(exc, ml.BackboneError):  # written for the job page already
        return f"backbone: {exc}"
    return public_text(f"{type(exc).__name__}: {exc}")


def metadata_backbone_name(output_dir: Path, named: str) -> None:
    """The checkpoint's own description names the backbone as the job did, not the worker's folder for it."""
    from rewardmodels.ml.scoring import METADATA_FILE

    path = Path(output_dir) / METADATA_FILE
    if path.is_file():
        metadata = json.loads(path.read_text())
        if isinstance(metadata.get("config"), dict):
            metadata["config"]["backbone"] = named
            path.write_text(json.dumps(metadata, indent=2, sort_keys=False) + "\n")


def _train(job: TrainingJob, host: str) -> str:
    """Run a claimed job of any kind; returns its final status."""
    if job.kind == TrainingJob.SAFETY_CLASSIFIER:
        from .runners import safety_classifier_run

        return safety_classifier_run(job, host)
    if job.kind == TrainingJob.EVALUATION:
        from .runners import evaluation_run

        return evaluation_run(job, host)
    return _train_pair_model(job, host)


def train_hooks(job_id: int):
    """The ml packages' hooks for a job, and the reporter behind them (its ``steps``)."""
    from rewardmodels import ml

    reporter = _Reporter(job_id)
    return ml.TrainHooks(on_metrics=reporter.on_metrics, on_log=reporter.on_log, on_progress=reporter.on_progress,
                         should_stop=reporter.should_stop), reporter


def artifacts_of(folder: Path) -> list[dict[str, Any]]:
    """[{"name", "path" (under MEDIA_ROOT), "size_bytes"}] of the files in a job's output folder."""
    return [{"name": p.name, "path": str(p.relative_to(settings.MEDIA_ROOT)), "size_bytes": p.stat().st_size}
            for p in sorted(Path(folder).iterdir()) if p.is_file()]


def _train_pair_model(job: TrainingJob, host: str) -> str:
    from rewardmodels import ml
    from rewardmodels import services as registry

    cfg = ml.config_from_dict(job.config)
    named = cfg.backbone
    cfg.backbone = ml.resolve_backbone(named, Path(settings.MODELS_DIR))  # fetches a missing default once
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
    _log(job.pk, f"running on {host}, device {device}; backbone {named}; "
                 f"{sum(e.n_pairs for e in exports)} pairs from {len(exports)} export(s)")
    output_dir = Path(settings.MEDIA_ROOT) / "models" / f"job-{job.pk}"
    provenance = {
        "job": job.pk,
        "kind": job.kind,
        "exports": [{"id": e.pk, "sha256": e.sha256, "name": e.name, "source": e.source,
                     "campaign": e.campaign_id, "n_pairs": e.n_pairs,
                     "spec_version": str(e.spec_version) if e.spec_version_id else None} for e in exports],
    }
    hooks, _ = train_hooks(job.pk)
    result = ml.train(cfg, data_files=data_files, output_dir=output_dir, provenance=provenance, hooks=hooks)
    metadata_backbone_name(result.output_dir, named)
    common = {"device": result.device, "versions": result.versions, "steps": result.steps}
    if result.status == "cancelled":
        _log(job.pk, f"cancelled after {result.steps} steps")
        _finish(job.pk, TrainingJob.CANCELLED, **common)
        return TrainingJob.CANCELLED
    artifacts = artifacts_of(result.output_dir)
    with transaction.atomic():
        if not _finish(job.pk, TrainingJob.SUCCEEDED, progress=1.0, final_metrics=result.metrics,
                       artifacts=artifacts, **common):
            return TrainingJob.objects.get(pk=job.pk).status
        registry.reward_model_register(job=job, exports=exports, output_dir=result.output_dir,
                                       metrics=result.metrics, config={**dataclasses.asdict(cfg), "backbone": named})
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


def training_jobs_redispatch(*, now=None) -> int:
    """Queued jobs no worker claimed for TRAINING_QUEUED_TIMEOUT_SECONDS; returns how many were handled.

    One handed to the queue that long ago is handed over again (its message may have been lost with a
    broker restart; a second delivery of a job that did start is a no-op). One never handed over (its
    launch answered 503 and the job could not be withdrawn, or the caller's commit hook failed) is failed:
    its launcher was told nothing was launched.
    """
    now = now or timezone.now()
    timeout = timedelta(seconds=settings.TRAINING_QUEUED_TIMEOUT_SECONDS)
    queued = TrainingJob.objects.filter(status=TrainingJob.QUEUED, created_at__lt=now - timeout)
    handled = 0
    never = (f"The job was never handed to the job queue (the broker was unavailable when it was launched) "
             f"and no worker took it in {settings.TRAINING_QUEUED_TIMEOUT_SECONDS:.0f} s. Launch it again.")
    for pk in queued.filter(dispatched_at__isnull=True).values_list("pk", flat=True):
        if TrainingJob.objects.filter(pk=pk, status=TrainingJob.QUEUED, dispatched_at__isnull=True).update(
                status=TrainingJob.FAILED, error=never, finished_at=now):
            _log(pk, never, level="error")
            handled += 1
    for pk in queued.filter(dispatched_at__lt=now - timeout).values_list("pk", flat=True):
        try:
            training_job_dispatch(job_id=pk)
        except ServiceUnavailable:
            break  # the broker is still down: the next check tries again
        _log(pk, f"no worker took the job in {settings.TRAINING_QUEUED_TIMEOUT_SECONDS:.0f} s; handed to the queue again",
             level="warning")
        handled += 1
    return handled


def training_jobs_check() -> int:
    """The periodic check: fail jobs whose worker was lost, and re-dispatch or fail jobs nobody claimed."""
    return training_jobs_reap() + training_jobs_redispatch()
