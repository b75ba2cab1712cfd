"""Training jobs run by Celery workers: what was asked, where it runs, how far it got, what it made."""

from django.conf import settings
from django.db import models


class TrainingJob(models.Model):
    REWARD_MODEL = "reward_model"
    COST_MODEL = "cost_model"
    CONSTRAINED_FINETUNE = "constrained_finetune"
    EVALUATION = "evaluation"
    SAFETY_CLASSIFIER = "safety_classifier"
    KIND_CHOICES = [
        (REWARD_MODEL, "reward model"),
        (COST_MODEL, "cost model"),
        (SAFETY_CLASSIFIER, "safety classifier"),
        (CONSTRAINED_FINETUNE, "constrained fine-tune"),
        (EVALUATION, "evaluation"),
    ]

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STATUS_CHOICES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)]
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)

    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    name = models.CharField(max_length=200, blank=True)
    exports = models.ManyToManyField("labeling.ExportSnapshot", related_name="training_jobs")
    prompt_sets = models.ManyToManyField("safety.PromptSet", related_name="training_jobs", blank=True)
    # Server-side input files under MEDIA_ROOT that no REST client can name: the public-data rows of
    # `manage.py safety_classifier_train`, as [{"name", "path", "sha256", "n_rows", "n_pairs", "spec_version"}].
    data_files = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict)  # validated, every default filled in
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)  # 0..1
    eta_seconds = models.FloatField(null=True, blank=True)
    final_metrics = models.JSONField(default=dict, blank=True)  # held-out metrics at the end
    artifacts = models.JSONField(default=list, blank=True)  # [{"name", "path", "size_bytes"}], paths under MEDIA_ROOT
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker_host = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=200, blank=True)
    versions = models.JSONField(default=dict, blank=True)  # torch, transformers, python, cuda
    steps = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the job was last handed to the queue; null until a hand-over succeeded. The periodic check
    # re-dispatches a job queued too long after it, and fails one that was never handed over.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # A client's key for "create this job once": a retry with the same key returns this job.
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_sha256 = models.CharField(max_length=64, blank=True)  # of the request the key was first used with

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_job_status_beat")]
        constraints = [models.UniqueConstraint(
            fields=["created_by", "idempotency_key"], condition=~models.Q(idempotency_key=""),
            name="training_job_one_per_idempotency_key")]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()


class JobMetric(models.Model):
    """One point of a job's metric time series: the values of a split at a step."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    split = models.CharField(max_length=16)  # "train" | "eval"
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="training_metric_job_id")]


class JobLog(models.Model):
    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="log_lines")
    level = models.CharField(max_length=8, default="info")  # info | warning | error
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="training_log_job_id")]
