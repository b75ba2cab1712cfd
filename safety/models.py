"""Safety instruments: prompt sets (the probes), guards (the spec served at run time) and their decision log."""

from django.conf import settings
from django.db import models


class PromptSet(models.Model):
    """An immutable, named set of prompts tied to a spec version, like an export snapshot."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    LABEL_CHOICES = [(SAFE, "safe"), (UNSAFE, "unsafe"), ("", "unknown")]

    name = models.CharField(max_length=200)
    spec_version = models.ForeignKey("taxonomy.SpecVersion", on_delete=models.PROTECT, related_name="prompt_sets")
    source = models.CharField(max_length=32, default="jsonl")  # jsonl | csv | spec_examples
    sha256 = models.CharField(max_length=64)  # of the canonical prompts.jsonl
    n_prompts = models.PositiveIntegerField(default=0)
    by_category = models.JSONField(default=dict)  # {category key: count}
    by_label = models.JSONField(default=dict)  # {"safe": n, "unsafe": n, "unknown": n}
    unmapped = models.JSONField(default=dict)  # {"<taxonomy>:<code>": count} of public codes that mapped to nothing
    options = models.JSONField(default=dict)  # how it was imported (format, column mapping, taxonomy)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.n_prompts} prompts)"


class Prompt(models.Model):
    REFUSAL_CHOICES = [("compliance", "compliance"), ("partial_refusal", "partial refusal"),
                       ("full_refusal", "full refusal"), ("", "unknown")]

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    index = models.PositiveIntegerField()  # 0-based position in the set
    text = models.TextField()
    label = models.CharField(max_length=8, choices=PromptSet.LABEL_CHOICES, blank=True)
    categories = models.JSONField(default=list)  # spec category keys
    codes = models.JSONField(default=dict)  # {"ailuminate": ["vcr"]}: the public codes as imported
    response = models.TextField(null=True, blank=True)  # a completion to score, when the set carries one
    response_harmful = models.BooleanField(null=True, blank=True)  # the source's label of that completion
    response_refusal = models.CharField(max_length=16, choices=REFUSAL_CHOICES, blank=True)
    meta = models.JSONField(default=dict)

    class Meta:
        ordering = ["prompt_set", "index"]
        constraints = [models.UniqueConstraint(fields=["prompt_set", "index"], name="safety_prompt_position")]


class Guard(models.Model):
    """A published spec version served with a safety classifier (and optionally a cost model)."""

    name = models.CharField(max_length=200)
    spec_version = models.ForeignKey("taxonomy.SpecVersion", on_delete=models.PROTECT, related_name="guards")
    safety_classifier = models.ForeignKey("rewardmodels.RewardModel", on_delete=models.PROTECT, related_name="guards")
    cost_model = models.ForeignKey("rewardmodels.RewardModel", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="cost_guards")
    log_decisions = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class GuardDecision(models.Model):
    """One scored (prompt, response) of a guard that logs its decisions: runtime failures feed the next loop."""

    guard = models.ForeignKey(Guard, on_delete=models.CASCADE, related_name="decisions")
    prompt = models.TextField()
    response = models.TextField(null=True, blank=True)
    decision = models.CharField(max_length=16, db_index=True)  # allow | allow_with_note | review | block
    result = models.JSONField(default=dict)  # the full answer the client got
    client = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_to_campaign = models.ForeignKey("labeling.Campaign", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["guard", "-created_at"], name="safety_decision_guard_time")]


class PromptSetImport(models.Model):
    """A prompt-set file imported off the request thread; the import form's progress bar polls it.

    Like labeling's ``ImportJob``: the upload waits under MEDIA_ROOT until the job ends, progress is written to a
    small file beside it while the import's single transaction runs, and the row holds the outcome.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUS_CHOICES = [(QUEUED, "queued"), (RUNNING, "running"), (SUCCEEDED, "succeeded"), (FAILED, "failed")]

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    spec_version = models.ForeignKey("taxonomy.SpecVersion", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    options = models.JSONField(default=dict)  # format, column mapping, taxonomy, default label, filename
    upload = models.CharField(max_length=500, blank=True)  # relative to MEDIA_ROOT; emptied when the job ends
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    progress = models.FloatField(default=0.0)
    lines = models.PositiveIntegerField(default=0)
    prompt_set = models.ForeignKey(PromptSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.JSONField(null=True, blank=True)  # {"error", "detail", "line"?}
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
