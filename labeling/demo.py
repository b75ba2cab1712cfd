"""The demo campaign: real HH-RLHF pairs shipped as a small sample, and clearly labelled simulated raters.

Simulated raters follow the dataset's own signals — the ``chosen`` reply is better; in ``harmless-base``
the rejected reply is the riskier one — each with its own noise, so the agreement dashboard, the
disagreement queue and the exports show real content at first start. They are not human judgments.
"""

import gzip
import json
import math
import random
import re
from pathlib import Path
from typing import Any

from django.db import transaction

from specloop.services import user_upsert

from . import services
from .imports import split_hh_dialogue
from .models import Campaign

SAMPLE = Path(__file__).with_name("demo_data") / "hh_rlhf_sample.jsonl.gz"
CAMPAIGN_NAME = "HH-RLHF safety pairs (demo)"
GUIDELINES = """Read the whole conversation, then both replies.
- Pick the reply that is more helpful *within the spec*: a safe, useful answer beats a refusal; a refusal beats real help with harm.
- Tag each reply with every policy category it touches, and rate its severity on the spec's scale.
- Rate helpful / harmless / honest for each reply. Skip a task only when you cannot judge it (say why)."""

# Words in a prompt that point at a category of the example spec (used for sampling weights and tags).
KEYWORDS = {
    "violent_crime": r"\b(kill|murder|hurt|attack|beat|stab|shoot|punch|torture)\w*",
    "weapons": r"\b(gun|weapon|rifle|knife|ammo)\w*",
    "explosives": r"\b(bomb|explosive|dynamite|grenade)\w*",
    "illegal_drugs": r"\b(drug|cocaine|meth|heroin|weed|marijuana|lsd|pills?)\b",
    "fraud_scams": r"\b(scam|fraud|counterfeit|forg)\w*",
    "nonviolent_crime": r"\b(steal|rob|shoplift|burglar|break into|launder)\w*",
    "cyber_attacks": r"\b(hack|malware|ddos|phish|password)\w*",
    "hate_speech": r"\b(racist|slur|hate|jews?|muslims?|black people|gays?|immigrants?)\b",
    "self_harm": r"\b(suicide|kill myself|self[- ]harm|cut myself)\b",
    "personal_data": r"\b(address|phone number|social security|ssn|where does .+ live)\b",
    "sexual_content": r"\b(sex|porn|naked|nude)\w*",
}
SIMULATED = [("sim-rater-1", 0.04), ("sim-rater-2", 0.07), ("sim-rater-3", 0.10), ("sim-rater-4", 0.15), ("sim-rater-5", 0.30)]


def sample_items(category_keys: set[str], rng: random.Random) -> list[dict[str, Any]]:
    """The shipped sample as SPEC-format items, the chosen reply listed first or second at random.

    ``meta.source_preference`` says which (x or y). Every tenth item is a gold item whose known answer is
    the dataset's preference.
    """
    items = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            row = json.loads(line)
            prompt, chosen, rejected = split_hh_dialogue(row["chosen"], row["rejected"], n)
            category = next((k for k, pattern in KEYWORDS.items()
                             if k in category_keys and re.search(pattern, prompt, re.IGNORECASE)), "")
            chosen_first = rng.random() < 0.5
            meta = {"source": "hh-rlhf", "split": row["split"], "source_preference": "x" if chosen_first else "y",
                    "simulated_strength": 2 if rng.random() < 0.4 else 1}
            if category:
                meta["category"] = category
            if n % 10 == 0:
                meta["gold_preference"] = -2 if chosen_first else 2
            replies = [{"text": chosen, "model": "hh-chosen"}, {"text": rejected, "model": "hh-rejected"}]
            items.append({"prompt": prompt, "responses": replies if chosen_first else replies[::-1], "meta": meta})
    return items


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, int(round(value))))


def simulated_judgment(item_meta: dict[str, Any], swapped: bool, noise: float, rng: random.Random,
                       axes: dict[str, int], n_severity: int) -> dict[str, Any]:
    """What a rater with this much noise would say, in displayed (a/b) terms."""
    harmless_split = item_meta.get("split") == "harmless-base"
    x_better = (item_meta.get("source_preference", "x") == "x") == (rng.random() >= noise)
    # How clear-cut the pair is belongs to the item; a rater mostly agrees on it.
    strength = item_meta.get("simulated_strength", 1)
    if rng.random() < noise:
        strength = 3 - strength
    pref_xy = 0 if rng.random() < 0.04 else (-1 if x_better else 1) * strength
    # The dataset's rejected reply carries the harm signal; the rater sees it on whichever side it is.
    sev_chosen = _clamp(rng.gauss(0.4, 0.5 + noise), 0, n_severity - 1)
    sev_rejected = _clamp(rng.gauss(2.1 if harmless_split else 0.5, 0.6 + noise), 0, n_severity - 1)
    chosen_is_x = item_meta.get("source_preference", "x") == "x"
    sev_x, sev_y = (sev_chosen, sev_rejected) if chosen_is_x else (sev_rejected, sev_chosen)
    category = item_meta.get("category")
    tags_x = [category] if category and sev_x >= 2 and rng.random() < 0.85 else []
    tags_y = [category] if category and sev_y >= 2 and rng.random() < 0.85 else []
    top = {k: size - 1 for k, size in axes.items()}
    values_x, values_y = {}, {}
    for key in axes:
        if key == "harmless":
            values_x[key] = _clamp(top[key] - sev_x * top[key] / max(1, n_severity - 1) + rng.gauss(0, noise), 0, top[key])
            values_y[key] = _clamp(top[key] - sev_y * top[key] / max(1, n_severity - 1) + rng.gauss(0, noise), 0, top[key])
        else:
            better, worse = (values_x, values_y) if pref_xy <= 0 else (values_y, values_x)
            better[key] = _clamp(top[key] * 0.75 + rng.gauss(0, 0.6 + noise), 0, top[key])
            worse[key] = _clamp(top[key] * 0.4 + rng.gauss(0, 0.6 + noise), 0, top[key])
    a, b = ("y", "x") if swapped else ("x", "y")
    side = {"x": (tags_x, sev_x, values_x), "y": (tags_y, sev_y, values_y)}
    return {
        "preference": -pref_xy if swapped else pref_xy,
        "categories": {"a": side[a][0], "b": side[b][0]},
        "severity": {"a": side[a][1], "b": side[b][1]},
        "axes": {k: {"a": side[a][2][k], "b": side[b][2][k]} for k in axes},
        "rationale": "",
        "seconds": round(math.exp(rng.gauss(3.6, 0.5)), 1),
    }


@transaction.atomic
def demo_campaign_load(*, admin, version, human_raters: list[str], share: float = 0.7, seed: int = 7) -> Campaign:
    """Create the demo campaign (idempotent by name), fill about ``share`` of it with simulated judgments."""
    existing = Campaign.objects.filter(name=CAMPAIGN_NAME).first()
    if existing is not None:
        return existing
    doc = version.document
    keys = {c["key"] for c in doc["categories"]}
    weights = {k: 2.0 for k in ("self_harm", "violent_crime", "weapons", "explosives") if k in keys}
    campaign = services.campaign_create(
        user=admin, name=CAMPAIGN_NAME, spec_version=version, guidelines=GUIDELINES, overlap=3,
        category_weights=weights, gold_share=0.1,
    )
    rng = random.Random(seed)
    text = "\n".join(json.dumps(item, ensure_ascii=False) for item in sample_items(keys, rng))
    # Two of the sample's replies are empty: kept, so raters see how the rater page marks an empty reply.
    services.items_import(campaign=campaign, text=text, fmt="jsonl", keep_empty=True)
    simulated = []
    for username, noise in SIMULATED:
        user, _, _ = user_upsert(username=username, role_names=["rater"])
        if user.first_name != "Simulated":
            user.first_name, user.last_name = "Simulated", "rater"
            user.save(update_fields=["first_name", "last_name"])
        simulated.append((user, noise))
    services.campaign_raters_add(campaign=campaign, usernames=[u.username for u, _ in simulated] + human_raters)
    axes = {a["key"]: len(a["scale"]) for a in doc["rubric"]["axes"]}
    n_severity = len(doc["rubric"]["severity_scale"])
    target = int(campaign.tasks.count() * campaign.overlap * share)
    done = 0
    while done < target:
        progressed = False
        for user, noise in simulated:
            assignment = services.next_task_assign(campaign=campaign, rater=user, rng=rng)
            if assignment is None:
                continue
            progressed = True
            data = simulated_judgment(assignment.task.item.meta, assignment.swapped, noise, rng, axes, n_severity)
            services.judgment_submit(assignment_id=assignment.pk, rater=user, data=data)
            done += 1
            if done >= target:
                break
        if not progressed:
            break
    services.export_snapshot_create(campaign=campaign, user=admin, filters={"aggregation": "majority"})
    return campaign
