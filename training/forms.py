"""The launch form: kind, input snapshots, name, and one field per setting of the ml package's TrainConfig.

The settings come from ``rewardmodels.ml.TrainConfig`` itself (its fields, types and defaults), so a new
setting shows up here without a change. A blank number or text keeps the default; the service
(``training_job_create`` → ``job_config_validate``) decides what is allowed, and its errors are put back
next to the fields they name.
"""

import dataclasses
from typing import Any

from django import forms

from specloop.errors import ValidationFailed

from .models import TrainingJob
from .services import ML_KINDS

# Shown above the fold; every other setting goes under "Advanced".
COMMON = ("backbone", "epochs", "batch_size", "learning_rate", "max_length", "eval_fraction", "seed")
# Settings that only one kind reads (hidden for the others where JavaScript runs).
KIND_ONLY = {"sign_weight": TrainingJob.COST_MODEL}
CHOICES = {"device": [("auto", "auto (CUDA when present)"), ("cpu", "cpu"), ("cuda", "cuda")]}
LABELS = {"bf16": "bf16 autocast", "eval_fraction": "Held-out fraction", "max_pairs": "Max pairs",
          "grad_accum": "Gradient accumulation", "center_rewards": "Center rewards"}
HELP = {
    "backbone": "The default MiniLM (packaged: no model hub needed), a folder in the models directory, or a hub id.",
    "max_length": "Tokens per (prompt, reply); long prompts are cut from the left.",
    "batch_size": "Pairs per micro-batch.",
    "epochs": "Passes over the training pairs.",
    "learning_rate": "AdamW peak learning rate.",
    "weight_decay": "AdamW decoupled weight decay (not on biases and LayerNorm).",
    "warmup_ratio": "Share of the optimizer steps spent warming the learning rate up.",
    "seed": "Seeds the split, the shuffling, the head's init and dropout.",
    "eval_fraction": "Seeded held-out share of the pairs, for the accuracy on unseen pairs.",
    "use_margin": "Bradley–Terry loss with the export's margin.",
    "center_rewards": "Coefficient of the reward-centering term.",
    "sign_weight": "Cost model only: weight of the per-reply harmful/safe sign terms.",
    "grad_accum": "Micro-batches per optimizer step.",
    "max_steps": "Optimizer steps cap; 0 = no cap.",
    "eval_every": "Optimizer steps between evaluations; 0 = at the end of each epoch.",
    "device": "Where the worker trains.",
    "bf16": "Autocast to bf16 where the device supports it (CUDA).",
    "max_pairs": "Use at most this many pairs (a seeded sample); 0 = all.",
    "max_grad_norm": "Gradient clipping by global norm.",
}
TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _config_class():
    from rewardmodels import ml  # torch comes with it: imported when the form is used, not at start-up

    return ml.TrainConfig


def _plain_type(field: dataclasses.Field) -> Any:
    """int, float, bool or str, whether the annotation is the type or its name (``from __future__ import annotations``)."""
    return TYPES.get(field.type) if isinstance(field.type, str) else field.type


def config_fields() -> list[dataclasses.Field]:
    """TrainConfig's settings a person sets (its ``kind`` follows the job's kind), with a plain type."""
    return [field for field in dataclasses.fields(_config_class())
            if field.name != "kind" and _plain_type(field) in (int, float, bool, str)]


def kind_defaults() -> dict[str, dict[str, Any]]:
    """{job kind: {setting: default}} from TrainConfig(kind=...) for every kind a worker runs."""
    config = _config_class()
    return {kind: {k: v for k, v in dataclasses.asdict(config(kind=ml_kind)).items() if k != "kind"}
            for kind, ml_kind in ML_KINDS.items()}


class KindSelect(forms.RadioSelect):
    """Kinds no worker runs yet are shown, disabled."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value not in ML_KINDS:
            option["attrs"]["disabled"] = True
        return option


def _field_for(field: dataclasses.Field, default: Any) -> forms.Field:
    kind = _plain_type(field)
    label = LABELS.get(field.name, field.name.replace("_", " ").capitalize())
    common = {"label": label, "help_text": HELP.get(field.name, ""), "required": False, "initial": default}
    if field.name in CHOICES:
        return forms.ChoiceField(choices=CHOICES[field.name], **common)
    if kind is bool:
        return forms.BooleanField(**common)
    if kind is int:
        return forms.IntegerField(**common, widget=forms.NumberInput(attrs={"step": 1, "placeholder": default}))
    if kind is float:
        return forms.FloatField(**common, widget=forms.NumberInput(attrs={"step": "any", "placeholder": default}))
    return forms.CharField(**common, max_length=500, widget=forms.TextInput(attrs={"placeholder": default}))


class JobLaunchForm(forms.Form):
    kind = forms.ChoiceField(choices=TrainingJob.KIND_CHOICES, widget=KindSelect, initial=TrainingJob.REWARD_MODEL)
    exports = forms.TypedMultipleChoiceField(
        coerce=int, widget=forms.CheckboxSelectMultiple, label="Export snapshots",
        error_messages={"required": "Pick at least one export snapshot to train on."})
    name = forms.CharField(max_length=200, required=False, help_text="Also the registered model's name.")
    # Made once per rendered form (the view's initial): a double submit or a resubmit sends the same key,
    # and the service answers with the job the first submit made instead of launching another.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)

    def __init__(self, *args, exports: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["exports"].choices = [(e.pk, e.name or f"export {e.pk}") for e in exports]
        kind = self["kind"].value() if self["kind"].value() in ML_KINDS else TrainingJob.REWARD_MODEL
        defaults = kind_defaults()[kind]
        self.config_names = []
        for field in config_fields():
            self.fields[field.name] = _field_for(field, defaults.get(field.name))
            self.config_names.append(field.name)

    def _bound(self, names) -> list[forms.BoundField]:
        out = []
        for name in names:
            bound = self[name]
            bound.only_kind = KIND_ONLY.get(name, "")
            out.append(bound)
        return out

    @property
    def common_fields(self) -> list[forms.BoundField]:
        return self._bound(n for n in self.config_names if n in COMMON)

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        return self._bound(n for n in self.config_names if n not in COMMON)

    @property
    def advanced_open(self) -> bool:
        return any(self[n].errors for n in self.config_names if n not in COMMON)

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        config = {}
        for name in self.config_names:
            value = data.get(name)
            if value is None or value == "":
                continue  # blank: the default
            config[name] = value.strip() if isinstance(value, str) else value
        return {"kind": data["kind"], "export_ids": data["exports"], "config": config, "name": data.get("name", ""),
                "idempotency_key": data.get("idempotency_key", "")}

    def add_service_errors(self, error: ValidationFailed) -> None:
        """``config.learning_rate`` → the learning_rate field, ``exports[0]`` → exports; the rest on top."""
        for item in error.errors:
            field, message = item["field"], item["message"]
            name = field.removeprefix("config.").split("[", 1)[0]
            if name in self.fields:
                self.add_error(name, message)
            else:
                self.add_error(None, f"{field}: {message}")
