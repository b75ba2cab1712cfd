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


def reward_model_register(*, job, exports: list[ExportSnapshot], output_dir: Path, metrics: dict,
                          config: dict) -> RewardModel:
    """Record a finished job's checkpoint with its provenance (exports, spec version, campaign)."""
    versions = {e.spec_version_id for e in exports if e.spec_version_id}
    campaigns = {e.campaign_id for e in exports if e.campaign_id}
    kind = RewardModel.COST if job.kind == "cost_model" else RewardModel.REWARD
    size = sum(p.stat().st_size for p in output_dir.rglob("*") if p.is_file())
    model = RewardModel.objects.create(
        name=job.name or f"{kind} model · job {job.pk}", kind=kind, job=job,
        path=str(output_dir.relative_to(settings.MEDIA_ROOT)), backbone=config.get("backbone", ""),
        config=config, metrics=metrics, size_bytes=size, created_by=job.created_by,
        # One spec version / campaign when every campaign export shares it; imported data has neither.
        spec_version_id=versions.pop() if len(versions) == 1 else None,
        campaign_id=campaigns.pop() if len(campaigns) == 1 else None,
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
    prompts, responses = score_items_parse(data)
    scorer = scorer_get(model)
    with _scorers_lock:  # one forward pass at a time per process; torch already uses every core
        return [float(s) for s in scorer.score(prompts, responses)]
