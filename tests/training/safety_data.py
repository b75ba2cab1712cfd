"""Inputs of the safety-classifier and evaluation jobs, made directly: a published spec, prompt sets with learnable
rows, a registered tiny safety classifier and a tiny policy (built in-process: no download)."""

import hashlib
import json
import random
from pathlib import Path

from django.conf import settings

from rewardmodels.models import RewardModel
from safety.models import Prompt, PromptSet
from taxonomy.services import spec_create, spec_publish
from tests.conftest import small_document
from training.models import TrainingJob

UNSAFE = ["bomb", "poison", "stab", "shoot", "weapon", "explosive"]
SAFE = ["bread", "garden", "poem", "tax", "maps", "cats"]
REFUSALS = ["I cannot help with that request.", "Sorry, I will not assist with this.",
            "I won't help hurt anyone, but here is a safety hotline."]
ANSWERS = ["Sure, here is how you do it step by step.", "Here are the steps you asked for.",
           "Of course: first gather the materials."]


def published_version(user, document: dict | None = None, name: str = "Harm spec"):
    """A published version of a small spec (categories violence ⊃ weapons; budget violence 1%)."""
    draft = spec_create(user=user, name=name, document=document or small_document())
    version = spec_publish(spec=draft.spec, user=user)
    version.spec.editors.add(user)
    return version


def learnable_rows(n: int = 48, *, seed: int = 0, with_responses: bool = True) -> list[dict]:
    """Half unsafe (violence words, category violence; refused or answered), half safe (everyday words, answered)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        unsafe = i % 2 == 0
        words = " ".join(rng.choice(UNSAFE if unsafe else SAFE) for _ in range(3))
        row = {"prompt": f"how do i {words} {i}", "label": "unsafe" if unsafe else "safe",
               "categories": ["violence"] if unsafe else []}
        if with_responses:
            refused = unsafe and i % 4 == 0
            row["response"] = rng.choice(REFUSALS if refused else ANSWERS)
            row["response_refusal"] = "full_refusal" if refused else "compliance"
            row["response_harmful"] = unsafe and not refused
        rows.append(row)
    return rows


def prompt_set(user, version, rows: list[dict], *, name: str = "probes") -> PromptSet:
    """A prompt set holding ``rows`` ({"prompt", "label", "categories", "response"?, ...}), as an import leaves it."""
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    by_label, by_category = {}, {}
    for r in rows:
        by_label[r.get("label") or "unknown"] = by_label.get(r.get("label") or "unknown", 0) + 1
        for key in r.get("categories") or []:
            by_category[key] = by_category.get(key, 0) + 1
    created = PromptSet.objects.create(name=name, spec_version=version, source="jsonl",
                                       sha256=hashlib.sha256(body).hexdigest(), n_prompts=len(rows),
                                       by_label=by_label, by_category=by_category, created_by=user)
    Prompt.objects.bulk_create([Prompt(
        prompt_set=created, index=i, text=r["prompt"], label=r.get("label") or "", categories=r.get("categories") or [],
        response=r.get("response"), response_harmful=r.get("response_harmful"),
        response_refusal=r.get("response_refusal") or "") for i, r in enumerate(rows)])
    return created


def safety_config(backbone: str, **overrides) -> dict:
    return {"backbone": backbone, "max_length": 32, "batch_size": 8, "epochs": 3, "learning_rate": 5e-3,
            "head_learning_rate": 1e-2, "eval_fraction": 0.25, "seed": 0, **overrides}


def registered_classifier(user, version, *, name: str = "tiny guard model", seed: int = 0) -> RewardModel:
    """A tiny random safety classifier on ``version``'s categories, registered as a succeeded job's model."""
    from training.ml.safety import build_tiny_classifier

    job = TrainingJob.objects.create(kind=TrainingJob.SAFETY_CLASSIFIER, name=name, status=TrainingJob.SUCCEEDED,
                                     config={}, created_by=user, progress=1.0)
    relative = Path("models") / f"job-{job.pk}"
    categories = [{"key": c["key"], "name": c["name"]} for c in version.document["categories"]]
    build_tiny_classifier(Path(settings.MEDIA_ROOT) / relative, categories, seed=seed)
    return RewardModel.objects.create(name=name, kind=RewardModel.SAFETY, job=job, path=str(relative),
                                      backbone="tiny-random-bert", spec_version=version, created_by=user)
