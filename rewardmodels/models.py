"""The model registry: trained reward and cost models with their metrics and provenance."""

from django.conf import settings
from django.db import models


class RewardModel(models.Model):
    REWARD = "reward"
    COST = "cost"
    SAFETY = "safety"
    KIND_CHOICES = [(REWARD, "reward model (helpfulness)"), (COST, "cost model (harmlessness)"),
                    (SAFETY, "safety classifier (prompt harm, categories, refusal, reply harm)")]

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    job = models.OneToOneField("training.TrainingJob", on_delete=models.PROTECT, related_name="reward_model")
    path = models.CharField(max_length=500)  # checkpoint folder, relative to MEDIA_ROOT
    backbone = models.CharField(max_length=300)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)  # held-out metrics
    exports = models.ManyToManyField("labeling.ExportSnapshot", related_name="reward_models")
    spec_version = models.ForeignKey("taxonomy.SpecVersion", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    campaign = models.ForeignKey("labeling.Campaign", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    size_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"
