"""The registry's writes and the scoring of (prompt, response) pairs by a registered model."""

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from django.conf import settings

from labeling.models import ExportSnapshot
from specloop.errors import ValidationFailed

from .models import RewardModel

MAX_SCORE_ITEMS = 1000  # per request; clients batch larger sets
MAX_TEXT_CHARS = 100_000

MAX_LOADED_SCORERS = 4  # per process; the least recently used model is dropped beyond this
_scorers: OrderedDict[tuple[int, str], Any] = OrderedDict()
_scorers_lock = threading.Lock()


# The registry kind of the model each job kind makes.
KIND_OF_JOB = {"reward_model": RewardModel.REWARD, "cost_model": RewardModel.COST,
               "safety_classifier": RewardModel.SAFETY}
DEFAULT_NAMES = {RewardModel.REWARD: "reward model", RewardModel.COST: "cost model",
                 RewardModel.SAFETY: "safety classifier"}


def reward_model_register(*, job, exports: list[ExportSnapshot], output_dir: Path, metrics: dict,
                          config: dict, spec_version=None) -> RewardModel:
    """Record a finished job's checkpoint with its provenance (exports, spec version, campaign).

    The spec version is the one given (a safety classifier's categories), else the one every campaign
    export shares; imported data has none.
    """
    versions = {e.spec_version_id for e in exports if e.spec_version_id}
    campaigns = {e.campaign_id for e in exports if e.campaign_id}
    kind = KIND_OF_JOB[job.kind]
    size = sum(p.stat().st_size for p in output_dir.rglob("*") if p.is_file())
    if spec_version is not None:
        spec_version_id = spec_version.pk
    else:
        spec_version_id = versions.pop() if len(versions) == 1 else None
    model = RewardModel.objects.create(
        name=job.name or f"{DEFAULT_NAMES[kind]} · job {job.pk}", kind=kind, job=job,
        path=str(output_dir.relative_to(settings.MEDIA_ROOT)), backbone=config.get("backbone", ""),
        config=config, metrics=metrics, size_bytes=size, created_by=job.created_by,
        spec_version_id=spec_version_id, campaign_id=campaigns.pop() if len(campaigns) == 1 else None,
    )
    model.exports.set(exports)
    return model


def scorer_get(model: RewardModel):
    """The model's scorer, loaded once per process and kept while it is among the most recently used."""
    folder = Path(settings.MEDIA_ROOT) / model.path
    key = (model.pk, str(folder))  # the folder in full: ids and relative paths repeat across media roots
    with _scorers_lock:
        scorer = _scorers.get(key)
        if scorer is None:
            from . import ml

            scorer = ml.load_scorer(folder, device=settings.SCORING_DEVICE)
            _scorers[key] = scorer
            while len(_scorers) > MAX_LOADED_SCORERS:
                _scorers.popitem(last=False)
        _scorers.move_to_end(key)
        return scorer


def classifier_get(model: RewardModel):
    """A safety classifier's loaded model (training.ml.safety), kept like the scorers (same LRU, same lock)."""
    folder = Path(settings.MEDIA_ROOT) / model.path
    key = (model.pk, f"safety:{folder}")
    with _scorers_lock:
        classifier = _scorers.get(key)
        if classifier is None:
            from training.ml import safety as safety_ml

            classifier = safety_ml.load_classifier(folder, device=settings.SCORING_DEVICE)
            _scorers[key] = classifier
            while len(_scorers) > MAX_LOADED_SCORERS:
                _scorers.popitem(last=False)
        _scorers.move_to_end(key)
        return classifier


def safety_model_classify(*, model: RewardModel, prompt: str, response: str | None) -> dict[str, Any]:
    """One (prompt, response?) through a safety classifier: each head's probabilities, with the model's
    stored thresholds applied (the model page's "try it"; the runtime guard adds the spec's decisions)."""
    if not isinstance(prompt, str) or len(prompt) > MAX_TEXT_CHARS:
        raise ValidationFailed.one("prompt", f"must be text of at most {MAX_TEXT_CHARS} characters")
    if response is not None and (not isinstance(response, str) or len(response) > MAX_TEXT_CHARS):
        raise ValidationFailed.one("response", f"must be text of at most {MAX_TEXT_CHARS} characters")
    classifier = classifier_get(model)
    with _scorers_lock:
        out = classifier.classify([prompt], [response])[0]
    thresholds = getattr(classifier, "thresholds", {}) or {}
    category_thresholds = thresholds.get("categories") if isinstance(thresholds.get("categories"), dict) else {}
    names = {c.get("key"): c.get("name") for c in getattr(classifier, "categories", []) or []}
    categories = sorted(
        ({"key": key, "name": names.get(key) or key, "probability": p,
          "threshold": category_thresholds.get(key, 0.5), "flagged": p >= category_thresholds.get(key, 0.5)}
         for key, p in (out.get("categories") or {}).items()), key=lambda c: -c["probability"])
    refusal = out.get("response_refusal") or {}

    def head(name: str) -> dict[str, Any] | None:
        p = out.get(name)
        if p is None:
            return None
        threshold = thresholds.get(name, 0.5) if isinstance(thresholds.get(name, 0.5), (int, float)) else 0.5
        return {"probability": p, "threshold": threshold, "harmful": p >= threshold}

    return {"prompt_harmful": head("prompt_harmful"), "response_harmful": head("response_harmful"),
            "response_refusal": ({"label": max(refusal, key=refusal.get), "probabilities": refusal}
                                 if refusal and response is not None else None),
            "categories": categories}


def score_items_parse(data: Any) -> tuple[list[str], list[str]]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ValidationFailed.one("items", "send {\"items\": [{\"prompt\": \"...\", \"response\": \"...\"}, ...]}")
    items = data["items"]
    if not items:
        raise ValidationFailed.one("items", "must hold at least one {prompt, response}")
    if len(items) > MAX_SCORE_ITEMS:
        raise ValidationFailed.one("items", f"at most {MAX_SCORE_ITEMS} per request; send the rest in more requests")
    errors: list[dict[str, str]] = []
    prompts, responses = [], []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"field": f"items[{n}]", "message": "must be an object with prompt and response"})
            continue
        for key, out in (("prompt", prompts), ("response", responses)):
            value = item.get(key)
            if not isinstance(value, str):
                errors.append({"field": f"items[{n}].{key}", "message": "must be a string"})
            elif len(value) > MAX_TEXT_CHARS:
                errors.append({"field": f"items[{n}].{key}", "message": f"longer than {MAX_TEXT_CHARS} characters"})
            else:
                out.append(value)
        extra = set(item) - {"prompt", "response"}
        if extra:
            errors.append({"field": f"items[{n}]", "message": f"unknown key(s): {', '.join(sorted(extra))}"})
    if errors:
        raise ValidationFailed(errors)
    return prompts, responses


def reward_model_score(*, model: RewardModel, data: Any) -> list[float]:
    if model.kind == RewardModel.SAFETY:
        raise ValidationFailed.one("model", (
            f"model {model.pk} is a safety classifier, which gives probabilities per head rather than one score: "
            "serve it with a guard (POST /api/v1/guard/score/) or try it on its model page"))
    prompts, responses = score_items_parse(data)
    scorer = scorer_get(model)
    with _scorers_lock:  # one forward pass at a time per process; torch already uses every core
        return [float(s) for s in scorer.score(prompts, responses)]
