"""The launch form: kind, inputs (export snapshots, prompt sets), name, and one field per setting of the kind's
config dataclass in the ml packages.

The settings come from the dataclasses themselves (``rewardmodels.ml.TrainConfig`` for reward and cost models,
``training.ml.safety.SafetyClassifierConfig``, ``training.ml.evaluation.EvaluationConfig``: their fields,
types, defaults and the comment beside each default), so a new setting shows up here without a change. Each
field is marked with the kinds that read it (hidden for the others where JavaScript runs). An evaluation's
models are picked from the registry. A blank number or text keeps the default; the service
(``training_job_create`` → ``job_config_validate``) decides what is allowed, and its errors are put back
next to the fields they name.
"""

import dataclasses
import inspect
import re
from functools import lru_cache
from typing import Any

from django import forms

from specloop.errors import ValidationFailed

from .models import TrainingJob
from .services import ML_KINDS, REGISTRY_KEYS, RUNNABLE_KINDS

# Shown above the fold; every other setting goes under "Advanced".
COMMON = ("backbone", "epochs", "batch_size", "learning_rate", "max_length", "eval_fraction", "seed",
          "policy", "use_responses", "max_new_tokens", "do_sample", "temperature", "max_prompts")
# Settings that only one kind reads although its dataclass serves several (hidden for the others).
KIND_ONLY = {"sign_weight": TrainingJob.COST_MODEL}
# Which inputs each kind reads.
USES_EXPORTS = (TrainingJob.REWARD_MODEL, TrainingJob.COST_MODEL, TrainingJob.SAFETY_CLASSIFIER)
USES_PROMPT_SETS = (TrainingJob.SAFETY_CLASSIFIER, TrainingJob.EVALUATION)
CHOICES = {"device": [("auto", "auto (CUDA when present)"), ("cpu", "cpu"), ("cuda", "cuda")]}
LABELS = {"bf16": "bf16 autocast", "eval_fraction": "Held-out fraction", "max_pairs": "Max pairs",
          "grad_accum": "Gradient accumulation", "center_rewards": "Center rewards",
          "safety_classifier": "Safety classifier", "reward_model": "Reward model", "cost_model": "Cost model",
          "use_responses": "Score the sets' own responses", "max_new_tokens": "Max new tokens",
          "do_sample": "Sample (else greedy)", "top_p": "Top-p"}
HELP = {
    "backbone": "The default MiniLM (packaged: no model hub needed), a folder in the models directory, or a hub id.",
    "max_length": "Tokens per (prompt, reply); long prompts are cut from the left.",
    "batch_size": "Pairs (reward, cost) or rows (safety classifier) per micro-batch; prompts per batch (evaluation).",
    "epochs": "Passes over the training data.",
    "learning_rate": "AdamW peak learning rate.",
    "weight_decay": "AdamW decoupled weight decay (not on biases and LayerNorm).",
    "warmup_ratio": "Share of the optimizer steps spent warming the learning rate up.",
    "seed": "Seeds the split, the shuffling, the heads' init and dropout; an evaluation's sampling and prompt sample.",
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
    "policy": "The model that writes the replies: the default SmolLM2-135M-Instruct, a folder in the models "
              "directory, or a hub id. Ignored when the sets' own responses are scored.",
    "use_responses": "Score each prompt's own response column instead of generating (every set needs responses).",
    "safety_classifier": "Judges every reply: refusal class, harmful probability, categories.",
    "reward_model": "Optional: the mean reward of the replies.",
    "cost_model": "Optional: the mean cost of the replies.",
}
TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def config_classes() -> dict[str, type]:
    """{job kind: its config dataclass} for every kind whose ml package is installed here."""
    from rewardmodels import ml  # torch comes with it: imported when the form is used, not at start-up

    classes: dict[str, type] = {kind: ml.TrainConfig for kind in ML_KINDS}
    try:
        from .ml import safety as safety_ml

        classes[TrainingJob.SAFETY_CLASSIFIER] = safety_ml.SafetyClassifierConfig
    except (ImportError, AttributeError):  # a checkout without the package: the kind shows disabled
        pass
    try:
        from .ml import evaluation as evaluation_ml

        classes[TrainingJob.EVALUATION] = evaluation_ml.EvaluationConfig
    except (ImportError, AttributeError):
        pass
    return {kind: cls for kind, cls in classes.items() if kind in RUNNABLE_KINDS}


def available_kinds() -> list[str]:
    return list(config_classes())


def _plain_type(field: dataclasses.Field) -> Any:
    """int, float, bool or str, whether the annotation is the type or its name (``from __future__ import annotations``)."""
    return TYPES.get(field.type) if isinstance(field.type, str) else field.type


@lru_cache(maxsize=None)
def _comments(cls: type) -> dict[str, str]:
    """{field: the comment beside its default} read from the dataclass's source (the help text of a setting)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out = {}
    for match in re.finditer(r"^\s+(\w+)\s*:[^=#\n]+=[^#\n]*#\s*(.+)$", source, re.M):
        text = match.group(2).strip()
        out[match.group(1)] = text[0].upper() + text[1:] if text else text
    return out


def config_fields() -> list[tuple[dataclasses.Field, list[str]]]:
    """Every setting a person sets, once, with the kinds that read it (a kind's ``kind`` field and the registry
    ids, which get pickers, left out), in the order the dataclasses list them."""
    seen: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for kind, cls in config_classes().items():
        for field in dataclasses.fields(cls):
            if field.name == "kind" or field.name in REGISTRY_KEYS:
                continue
            if _plain_type(field) not in (int, float, bool, str):
                continue
            if field.name not in seen:
                seen[field.name] = (field, [])
            seen[field.name][1].append(kind)
    return [(field, [KIND_ONLY[field.name]] if field.name in KIND_ONLY else kinds)
            for field, kinds in seen.values()]


def _help(name: str, kinds: list[str]) -> str:
    if name in HELP:
        return HELP[name]
    for cls in (config_classes()[k] for k in kinds):
        if text := _comments(cls).get(name):
            return text
    return ""


def kind_defaults() -> dict[str, dict[str, Any]]:
    """{job kind: {setting: default}} for every kind a worker runs (registry picks default to none: "")."""
    out = {}
    for kind, cls in config_classes().items():
        config = cls(kind=ML_KINDS[kind]) if kind in ML_KINDS else cls()
        values = {k: ("" if v is None else v) for k, v in dataclasses.asdict(config).items() if k != "kind"}
        out[kind] = {k: v for k, v in values.items() if isinstance(v, (int, float, bool, str))}
    return out


class KindSelect(forms.RadioSelect):
    """Kinds no worker runs yet are shown, disabled."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runnable: list[str] = []

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value not in self.runnable:
            option["attrs"]["disabled"] = True
        return option


def _field_for(field: dataclasses.Field, default: Any, help_text: str) -> forms.Field:
    kind = _plain_type(field)
    label = LABELS.get(field.name, field.name.replace("_", " ").capitalize())
    common = {"label": label, "help_text": help_text, "required": False, "initial": default}
    if field.name in CHOICES:
        return forms.ChoiceField(choices=CHOICES[field.name], **common)
    if kind is bool:
        return forms.BooleanField(**common)
    if kind is int:
        return forms.IntegerField(**common, widget=forms.NumberInput(attrs={"step": 1, "placeholder": default}))
    if kind is float:
        return forms.FloatField(**common, widget=forms.NumberInput(attrs={"step": "any", "placeholder": default}))
    return forms.CharField(**common, max_length=500, widget=forms.TextInput(attrs={"placeholder": default}))


def _model_label(model) -> str:
    return f"#{model.pk} {model.name}"


class JobLaunchForm(forms.Form):
    kind = forms.ChoiceField(choices=TrainingJob.KIND_CHOICES, widget=KindSelect, initial=TrainingJob.REWARD_MODEL)
    exports = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple, label="Export snapshots",
                                             required=False)
    prompt_sets = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple, label="Prompt sets",
                                                 required=False)
    name = forms.CharField(max_length=200, required=False, help_text="Also the registered model's name.")
    # Made once per rendered form (the view's initial): a double submit or a resubmit sends the same key,
    # and the service answers with the job the first submit made instead of launching another.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)

    def __init__(self, *args, exports: list, prompt_sets: list = (), registry: list = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.runnable = available_kinds()
        self.fields["kind"].widget.runnable = self.runnable
        self.fields["exports"].choices = [(e.pk, e.name or f"export {e.pk}") for e in exports]
        self.fields["prompt_sets"].choices = [(p.pk, p.name or f"prompt set {p.pk}") for p in prompt_sets]
        kind = self["kind"].value() if self["kind"].value() in self.runnable else TrainingJob.REWARD_MODEL
        defaults = kind_defaults()[kind]
        self.config_names = []
        self.field_kinds: dict[str, list[str]] = {}
        for field, kinds in config_fields():
            self.fields[field.name] = _field_for(field, defaults.get(field.name), _help(field.name, kinds))
            self.config_names.append(field.name)
            self.field_kinds[field.name] = kinds
        self.registry_names = []
        if TrainingJob.EVALUATION in self.runnable:  # the evaluation's models, picked from the registry
            for key, model_kind in REGISTRY_KEYS.items():
                choices = [(m.pk, _model_label(m)) for m in registry if m.kind == model_kind]
                empty = "— pick one —" if key == "safety_classifier" else "— none —"
                self.fields[key] = forms.TypedChoiceField(
                    coerce=int, empty_value=None, required=False, choices=[("", empty), *choices],
                    label=LABELS[key], help_text=HELP[key])
                self.registry_names.append(key)
                self.field_kinds[key] = [TrainingJob.EVALUATION]

    def _bound(self, names) -> list[forms.BoundField]:
        out = []
        for name in names:
            bound = self[name]
            bound.only_kind = KIND_ONLY.get(name, "")
            bound.kinds = " ".join(self.field_kinds.get(name, []))
            out.append(bound)
        return out

    @property
    def registry_fields(self) -> list[forms.BoundField]:
        return self._bound(self.registry_names)

    @property
    def common_fields(self) -> list[forms.BoundField]:
        return self._bound(n for n in self.config_names if n in COMMON)

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        return self._bound(n for n in self.config_names if n not in COMMON)

    @property
    def advanced_open(self) -> bool:
        return any(self[n].errors for n in self.config_names if n not in COMMON)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in ML_KINDS and not data.get("exports"):
            self.add_error("exports", "Pick at least one export snapshot to train on.")
        elif kind == TrainingJob.EVALUATION and not data.get("prompt_sets"):
            self.add_error("prompt_sets", "Pick at least one prompt set to evaluate on.")
        elif kind == TrainingJob.SAFETY_CLASSIFIER and not (data.get("prompt_sets") or data.get("exports")):
            self.add_error("prompt_sets", "Pick prompt sets and/or export snapshots to train on.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind = data["kind"]
        config = {}
        for name in self.config_names:
            if kind not in self.field_kinds[name]:
                continue  # another kind's setting, hidden on the page
            value = data.get(name)
            if value is None or value == "":
                continue  # blank: the default
            config[name] = value.strip() if isinstance(value, str) else value
        for name in self.registry_names:
            if kind == TrainingJob.EVALUATION and data.get(name) is not None:
                config[name] = data[name]
        if kind == TrainingJob.EVALUATION and config.get("use_responses"):
            config.pop("policy", None)  # prefilled with the default; nothing generates, as its help says

        return {"kind": kind, "config": config, "name": data.get("name", ""),
                "export_ids": data.get("exports") or [] if kind in USES_EXPORTS else [],
                "prompt_set_ids": data.get("prompt_sets") or [] if kind in USES_PROMPT_SETS else [],
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
