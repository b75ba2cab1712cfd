"""Campaigns, items, pairwise tasks, assignments, judgments, adjudications and export snapshots.

Orientation: a task's canonical pair is (x, y) in the order the import listed the replies. A rater sees
A and B; ``Assignment.swapped`` says whether A is y. Judgments are stored as shown *and* canonically
(negative preference = x better), so agreement and exports never depend on display order.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Campaign(models.Model):
    ALL_PAIRS = "all_pairs"
    ADJACENT = "adjacent"
    PAIRING_CHOICES = [(ALL_PAIRS, "all pairs"), (ADJACENT, "adjacent pairs")]

    name = models.CharField(max_length=200)
    spec_version = models.ForeignKey("taxonomy.SpecVersion", on_delete=models.PROTECT, related_name="campaigns")
    guidelines = models.TextField(blank=True)
    overlap = models.PositiveSmallIntegerField(default=3)
    pairing = models.CharField(max_length=16, choices=PAIRING_CHOICES, default=ALL_PAIRS)
    # category key -> weight; a task whose item carries that category is offered earlier among equals.
    category_weights = models.JSONField(default=dict, blank=True)
    gold_share = models.FloatField(default=0.0)
    # An open assignment older than this returns to the pool.
    assignment_timeout_seconds = models.PositiveIntegerField(default=30 * 60)
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="rated_campaigns", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """One imported prompt with its replies (two or more)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    prompt = models.TextField()
    responses = models.JSONField()  # [{"text": str, "model": str | None}, ...]
    meta = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=64, blank=True)  # meta["category"], for sampling weights
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "content_hash"], name="item_content_unique")]


class Task(models.Model):
    """One pair of replies to one prompt: x = responses[x_index], y = responses[y_index]."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="tasks")
    x_index = models.PositiveSmallIntegerField()
    y_index = models.PositiveSmallIntegerField()
    weight = models.FloatField(default=1.0)
    # Kept in step by the services under a row lock: judged + open never exceeds the overlap.
    n_judgments = models.PositiveIntegerField(default=0)
    n_open = models.PositiveIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_preference = models.SmallIntegerField(null=True, blank=True)  # canonical -2..2

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "x_index", "y_index"], name="task_pair_unique")]
        indexes = [
            models.Index(fields=["campaign", "n_judgments", "-weight", "id"], name="task_queue_idx"),
            # A campaign's task-id range (exports read a campaign range by range) in two index probes.
            models.Index(fields=["campaign", "id"], name="task_campaign_id_idx"),
        ]


class Assignment(models.Model):
    OPEN = "open"
    JUDGED = "judged"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    STATUS_CHOICES = [(OPEN, "open"), (JUDGED, "judged"), (SKIPPED, "skipped"), (EXPIRED, "expired")]

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    swapped = models.BooleanField()  # True: the rater sees y as A
    status = models.CharField(max_length=8, choices=STATUS_CHOICES, default=OPEN)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            # A rater never holds, re-judges or re-sees a task they judged or skipped.
            models.UniqueConstraint(
                fields=["task", "rater"], condition=~Q(status="expired"), name="assignment_task_rater_unique"
            ),
            models.UniqueConstraint(
                fields=["campaign", "rater"], condition=Q(status="open"), name="assignment_one_open_per_rater"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status", "expires_at"], name="assignment_expiry_idx")]


class Judgment(models.Model):
    """A rater's label for one assignment, as shown (a/b) and canonical (x/y)."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="judgment")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="judgments")
    # Indexed by (campaign, id) below instead of campaign alone: the same lookups, plus the campaign's last id.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judgments", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments")
    preference = models.SmallIntegerField()  # as shown: negative = A better
    preference_xy = models.SmallIntegerField()  # canonical: negative = x better
    categories = models.JSONField()  # {"a": [...], "b": [...]}
    severity = models.JSONField()  # {"a": int, "b": int}
    axes = models.JSONField()  # {"helpful": {"a": int, "b": int}, ...}
    categories_x = models.JSONField()
    categories_y = models.JSONField()
    severity_x = models.SmallIntegerField(null=True, blank=True)  # optional in a judgment
    severity_y = models.SmallIntegerField(null=True, blank=True)
    axes_xy = models.JSONField()  # {"helpful": {"x": int, "y": int}, ...}
    rationale = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "created_at"], name="judgment_campaign_time_idx"),
            models.Index(fields=["campaign", "id"], name="judgment_campaign_id_idx"),
        ]


class Adjudication(models.Model):
    """A policy/admin decision on a disputed task; it overrides the consensus in exports."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="adjudication")
    preference_xy = models.SmallIntegerField()
    categories_x = models.JSONField(default=list)
    categories_y = models.JSONField(default=list)
    severity_x = models.SmallIntegerField()
    severity_y = models.SmallIntegerField()
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)


class ExportSnapshot(models.Model):
    """An immutable file of preference pairs: a campaign's consensus, or an imported dataset."""

    CAMPAIGN = "campaign"
    IMPORTED = "imported"
    SOURCE_CHOICES = [(CAMPAIGN, "campaign consensus"), (IMPORTED, "imported dataset")]

    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="exports")
    spec_version = models.ForeignKey("taxonomy.SpecVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    n_pairs = models.PositiveIntegerField()
    n_ties = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=500)  # relative to MEDIA_ROOT
    size_bytes = models.BigIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class ImportJob(models.Model):
    """A large import run off the request thread: items into a campaign, or pairs into a new snapshot.

    The upload waits under MEDIA_ROOT (``upload``) until the job ends. While the job runs, its progress is in
    a small file beside the upload (the import writes its rows in one transaction, which no other connection
    sees until it commits); when it ends, ``progress``, ``lines``, ``result`` or ``error`` hold the outcome.
    """

    ITEMS = "items"
    PAIRS = "pairs"
    KIND_CHOICES = [(ITEMS, "campaign items"), (PAIRS, "pairs snapshot")]
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUS_CHOICES = [(QUEUED, "queued"), (RUNNING, "running"), (SUCCEEDED, "succeeded"), (FAILED, "failed")]

    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="import_jobs")
    snapshot = models.ForeignKey(ExportSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    options = models.JSONField(default=dict, blank=True)  # {"format", "keep_empty", "name", "filename"}
    upload = models.CharField(max_length=500, blank=True)  # relative to MEDIA_ROOT; emptied when the job ends
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    progress = models.FloatField(default=0.0)  # share of the file read, 0..1
    lines = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)  # the synchronous import's answer
    error = models.JSONField(null=True, blank=True)  # {"error", "detail", "line"?}
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="items") & Q(campaign__isnull=False)) | (Q(kind="pairs") & Q(campaign__isnull=True)),
                name="importjob_target_matches_kind"),
        ]
