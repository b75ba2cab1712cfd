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


class Policy(models.Model):
    """A fine-tuned policy: a LoRA adapter over a base causal LM, made by a constrained fine-tune job.

    ``base`` names the base as the job did (a hub id, ``./<folder>`` in the models directory); when the job
    started from another registered policy, ``parent`` is that policy and ``base`` its base (the adapter was
    trained over the parent's merged weights). The budgets are the spec version's at launch; ``final_lambda``
    and ``final_cost`` are the run's last multiplier and windowed harmful-rate estimate per budgeted category.
    """

    name = models.CharField(max_length=200)
    job = models.OneToOneField("training.TrainingJob", on_delete=models.PROTECT, related_name="policy")
    path = models.CharField(max_length=500)  # adapter folder, relative to MEDIA_ROOT
    base = models.CharField(max_length=300)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    spec_version = models.ForeignKey("taxonomy.SpecVersion", on_delete=models.PROTECT, related_name="policies")
    reward_model = models.ForeignKey(RewardModel, on_delete=models.PROTECT, related_name="+")
    cost_model = models.ForeignKey(RewardModel, on_delete=models.PROTECT, related_name="+")
    prompt_sets = models.ManyToManyField("safety.PromptSet", related_name="policies", blank=True)
    budgets = models.JSONField(default=dict)        # {category key: budget on the harmful-reply rate}
    final_lambda = models.JSONField(default=dict)   # {category key: λ at the last step}
    final_cost = models.JSONField(default=dict)     # {category key: windowed Ĉ at the last step}
    config = models.JSONField(default=dict)         # the job's config
    metrics = models.JSONField(default=dict)        # the run's final training figures (reward, kl, steps, ...)
    # The automatic evaluations of this policy and of its base on the held-out prompts (null: turned off or not run).
    evaluation = models.ForeignKey("training.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    base_evaluation = models.ForeignKey("training.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    size_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"{self.name} (policy {self.pk})"
