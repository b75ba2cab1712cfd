"""Rows for the page tests, made directly (no ml package, no worker): snapshots, jobs with metric series and
logs, and a registered model with the held-out metrics the ml package writes."""

from datetime import timedelta

from django.utils import timezone

from labeling.models import Campaign, ExportSnapshot
from rewardmodels.models import RewardModel
from taxonomy.services import spec_create, spec_publish
from tests.conftest import small_document
from training.models import JobLog, JobMetric, TrainingJob

CONFIG = {"backbone": "sentence-transformers/all-MiniLM-L6-v2", "max_length": 256, "batch_size": 16, "epochs": 1,
          "learning_rate": 2e-05, "seed": 0, "eval_fraction": 0.1, "device": "auto", "bf16": True}


def metrics(accuracy: float = 0.875, *, kind: str = "reward") -> dict:
    """The shape of rewardmodels.ml.metrics.pair_metrics."""
    out = {
        "kind": kind, "n_pairs": 40, "accuracy": accuracy, "loss": 0.41, "score_mean": 0.1, "score_std": 1.2,
        "calibration": {"ece": 0.052, "bins": [
            {"low": 0.5, "high": 0.75, "mean_predicted": 0.62, "accuracy": 0.58, "count": 14},
            {"low": 0.75, "high": 1.0, "mean_predicted": 0.88, "accuracy": 0.91, "count": 26},
            {"low": 0.9, "high": 1.0, "mean_predicted": None, "accuracy": None, "count": 0},
        ]},
        "distributions": {"edges": [-2.0, -1.0, 0.0, 1.0, 2.0],
                          "harmful": {"n": 20, "mean": 0.9, "std": 0.5, "histogram": [0, 2, 8, 10]},
                          "safe": {"n": 20, "mean": -0.8, "std": 0.6, "histogram": [9, 8, 3, 0]}},
        "per_category": {"violence": {"n": 12, "accuracy": 0.75}, "weapons": {"n": 5, "accuracy": 1.0}},
    }
    if kind == "cost":
        out["sign_accuracy"] = 0.8
        out["per_category"]["violence"]["sign_accuracy"] = 0.7
    return out


def imported_export(user, name: str = "hh harmless sample", n_pairs: int = 120) -> ExportSnapshot:
    """An imported dataset: every policy user and admin may use it."""
    return ExportSnapshot.objects.create(
        source=ExportSnapshot.IMPORTED, name=name, filters={"format": "trl", "with_harmful_flags": n_pairs},
        n_pairs=n_pairs, sha256="a1" * 32, path="exports/imported/x.jsonl", size_bytes=4096, created_by=user)


def campaign_export(actors, name: str = "round 1 consensus") -> ExportSnapshot:
    """A campaign export on a spec ``actors.policy`` edits: ``actors.policy2`` cannot see it."""
    draft = spec_create(user=actors.policy, name="Harm spec", document=small_document())
    version = spec_publish(spec=draft.spec, user=actors.policy)
    campaign = Campaign.objects.create(name="Harm pairs", spec_version=version, created_by=actors.admin)
    return ExportSnapshot.objects.create(
        source=ExportSnapshot.CAMPAIGN, campaign=campaign, spec_version=version, name=name,
        filters={"aggregation": "majority"}, n_pairs=80, n_ties=3, sha256="b2" * 32,
        path="exports/campaign.jsonl", size_bytes=2048, created_by=actors.admin)


def job(user, exports: list, *, status: str = TrainingJob.SUCCEEDED, name: str = "rm baseline",
        kind: str = TrainingJob.REWARD_MODEL, config: dict | None = None, **fields) -> TrainingJob:
    now = timezone.now()
    defaults = {"progress": 0.0}
    if status != TrainingJob.QUEUED:
        defaults.update(started_at=now - timedelta(minutes=5), heartbeat_at=now, worker_host="gpu-1:4242",
                        device="cuda:0 (NVIDIA H100)", attempts=1)
    if status == TrainingJob.SUCCEEDED:
        defaults.update(progress=1.0, steps=10, finished_at=now, final_metrics=metrics(),
                        versions={"torch": "2.5.1", "transformers": "4.46.0", "python": "3.12.3"},
                        artifacts=[{"name": "model.safetensors", "path": "models/job-1/model.safetensors",
                                    "size_bytes": 90_000_000}])
    defaults.update(fields)
    created = TrainingJob.objects.create(kind=kind, name=name, status=status, config=config or dict(CONFIG),
                                         created_by=user, **defaults)
    created.exports.set(exports)
    if status != TrainingJob.QUEUED:  # queued a minute before it started (created_at is auto_now_add)
        TrainingJob.objects.filter(pk=created.pk).update(created_at=now - timedelta(minutes=6))
        created.refresh_from_db()
    return created


def series(target: TrainingJob, steps: int = 10, *, start: int = 1, loss0: float = 0.7) -> None:
    """Train loss/accuracy every step, eval accuracy every fifth."""
    for step in range(start, start + steps):
        JobMetric.objects.create(job=target, step=step, split="train",
                                 values={"loss": round(loss0 - 0.02 * step, 4), "accuracy": round(min(0.5 + 0.03 * step, 0.99), 4),
                                         "lr": 2e-5})
        if step % 5 == 0:
            JobMetric.objects.create(job=target, step=step, split="eval", values={"accuracy": round(min(0.6 + 0.02 * step, 0.95), 4),
                                                                                  "loss": 0.6, "kind": "reward"})


def logs(target: TrainingJob, *messages: str) -> list[JobLog]:
    return [JobLog.objects.create(job=target, message=m) for m in messages]


def registered(target: TrainingJob, exports: list, *, name: str = "rm baseline", kind: str = RewardModel.REWARD,
               model_metrics: dict | None = None) -> RewardModel:
    campaign = next((e.campaign for e in exports if e.campaign_id), None)
    model = RewardModel.objects.create(
        name=name, kind=kind, job=target, path=f"models/job-{target.pk}", backbone=CONFIG["backbone"], config=CONFIG,
        metrics=metrics(kind=kind) if model_metrics is None else model_metrics, size_bytes=90_000_000,
        created_by=target.created_by, campaign=campaign,
        spec_version=next((e.spec_version for e in exports if e.spec_version_id), None))
    model.exports.set(exports)
    return model
