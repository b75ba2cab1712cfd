"""Safety specs and their versions. A version's content is one validated document (see document.py)."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Spec(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Policy users who may read and edit this spec; admins see every spec.
    editors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="editable_specs", blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class SpecVersion(models.Model):
    DRAFT = "draft"
    PUBLISHED = "published"
    STATUS_CHOICES = [(DRAFT, "Draft"), (PUBLISHED, "Published")]

    spec = models.ForeignKey(Spec, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=DRAFT)
    document = models.JSONField()
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["spec_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["spec", "number"], name="spec_version_number_unique"),
            # A spec has at most one draft at a time; new drafts start from the latest version.
            models.UniqueConstraint(fields=["spec"], condition=Q(status="draft"), name="spec_single_draft"),
        ]

    def __str__(self) -> str:
        return f"{self.spec.name} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.DRAFT

    @property
    def category_count(self) -> int:
        return len(self.document.get("categories", []))


class SpecChange(models.Model):
    """One recorded change to a version: who, when, what (for the history page and audits)."""

    version = models.ForeignKey(SpecVersion, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=40)
    summary = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.user} {self.summary}"
