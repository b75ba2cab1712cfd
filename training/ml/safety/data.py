"""Rows for the safety classifier: what each head learns from, the public-data mix, the prompt-set rows, the split,
and the tokenization of (prompt, reply).

A row carries only the labels its source knows (``None`` = no label for that head): the losses are masked, so
prompt sets, Do-Not-Answer's labelled replies, HH-RLHF harmless pairs and exports train one model together.
Plain Python here (csv, gzip, json): no torch (the tokenization is in encoding.py).
"""

import csv
import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rewardmodels.ml.hh import ASSISTANT_TURN, split_hh_dialogue

from .benign import benign_prompts
from .config import REFUSAL_CLASSES

csv.field_size_limit(10_000_000)  # Do-Not-Answer and HarmBench context cells are long


@dataclass
class SafetyRow:
    prompt: str
    response: str | None = None        # None: the prompt alone is classified
    prompt_harmful: bool | None = None
    categories: list[str] | None = None  # None = no category label; [] = labelled none
    response_refusal: str | None = None  # one of REFUSAL_CLASSES, or None
    response_harmful: bool | None = None
    source: str = ""


@dataclass
class HarmPair:
    """Two replies to one prompt, ``more_harmful`` worse than ``safer``: a pairwise term on response_harmful."""

    prompt: str
    safer: str
    more_harmful: str
    source: str = ""


# Do-Not-Answer's per-reply action (Wang et al. 2023, "Do-Not-Answer", table 3) → refusal class.
#   0 refuses to help                                  → full_refusal
#   1 refutes the premise / the opinion in the request → partial_refusal (pushes back, answers around it)
#   2 balanced answer with both perspectives           → compliance
#   3 answers with a disclaimer (medicine, law, ...)   → compliance (complying with care is complying)
#   4 says it cannot (no access, no ability, unsure)   → partial_refusal (declines the ask, usually offers general
#                                                        information or a pointer instead)
#   5 follows the instruction directly                 → compliance
DNA_ACTIONS = {"0": "full_refusal", "1": "partial_refusal", "2": "compliance", "3": "compliance",
               "4": "partial_refusal", "5": "compliance"}
DNA_MODELS = ("GPT4", "ChatGPT", "Claude", "ChatGLM2", "llama2-7b-chat", "vicuna-7b")
# Do-Not-Answer's risk areas whose questions are requests to refuse; the other two (misinformation questions such as
# "is it true that ...", and chatbot-as-a-human / mental-health questions) are not harmful to ask.
DNA_HARMFUL_AREAS = ("Malicious Uses", "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
                     "Information Hazards")

FILES = {
    "do_not_answer": "do-not-answer/do_not_answer_data.csv",
    "ailuminate": "ailuminate/airr_official_1.0_demo_en_us_prompt_set_release.csv",
    "harmbench": "harmbench/harmbench_behaviors_text_all.csv",
    "advbench": "advbench/harmful_behaviors.csv",
    "hh_harmless": "hh-rlhf/harmless-base.dev.jsonl.gz",
    "hh_helpful": "hh-rlhf/helpful-base.dev.jsonl.gz",
}
# The default mix (what `manage.py safety_classifier_train` trains on): every public file, with the Do-Not-Answer
# replies and the HH-RLHF pairs capped so that one epoch of MiniLM fits ~15 min on 2 CPU cores.
# Values are caps on source items (prompts; pairs for hh_harmless); 0 = all.
DEFAULT_LIMITS = {"do_not_answer": 0, "do_not_answer_replies": 3, "ailuminate": 0, "harmbench": 0, "advbench": 0,
                  "hh_harmless": 400, "hh_helpful": 0, "benign_probes": 0}


def _index(crosswalk: dict) -> dict[str, dict[str, list[str]]]:
    """The caller's crosswalk with codes stripped and lower-cased (public codes are compared that way)."""
    return {taxonomy: {str(code).strip().lower(): list(keys) for code, keys in (codes or {}).items()}
            for taxonomy, codes in (crosswalk or {}).items()}


def _sample(items: list, limit: int, rng: random.Random) -> list:
    if not limit or len(items) <= limit:
        return items
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]


def _first_human_turn(dialogue: str) -> str:
    """The opening request of an HH dialogue ("\\n\\nHuman: ... \\n\\nAssistant: ..." → "...")."""
    text = dialogue.split("\n\nHuman:", 2)[1] if "\n\nHuman:" in dialogue else dialogue
    return text.split(ASSISTANT_TURN, 1)[0].strip()


def public_rows(data_dir: Path, *, crosswalk: dict[str, dict[str, list[str]]], seed: int = 0,
                **limits) -> tuple[list[SafetyRow], list[HarmPair], dict]:
    """Rows and harm pairs from the public files in the ../shared/data layout, plus a report.

    ``crosswalk`` = {taxonomy: {code: [category keys]}} built by the caller from the spec; the taxonomies read here
    are "do_not_answer" (types_of_harm), "ailuminate" (hazard) and "harmbench" (SemanticCategory). A code that maps
    to nothing leaves the row without a category label (None, not []) and is counted in report["unmapped"].
    ``limits`` override DEFAULT_LIMITS (seeded samples; 0 = all). A missing file is skipped and named in the report.

    The mix and the label mapping:

    - Do-Not-Answer (939 risky questions, six models' replies each): one prompt-only row per question and one
      (question, reply) row for every reply labelled harmful and ``do_not_answer_replies`` of the others (seeded
      pick; harmful replies are 3% of the six thousand, and the reply-harm head's only real positives). prompt_harmful
      True for the risk areas Malicious Uses, Discrimination/Toxicity and Information Hazards, unlabelled for the
      other two (misinformation questions, treating the chatbot as a human / mental health: not harmful to ask);
      categories from types_of_harm; response_harmful from ``<model>_harmful``; response_refusal from
      ``<model>_action`` by DNA_ACTIONS (0 → full_refusal; 1 refutes the premise, 4 says it cannot → partial_refusal;
      2 balanced, 3 with a disclaimer, 5 follows → compliance).
    - AILuminate (1,200 hazard prompts): prompt-only rows; prompt_harmful True except the specialised-advice hazards
      spc_* (unlabelled: many are legitimate questions); categories from the hazard code.
    - HarmBench (400 behaviours; a contextual behaviour's context is prepended): prompt_harmful True; categories
      from SemanticCategory.
    - AdvBench (520 goals): a prompt-only row (prompt_harmful True, no category label) and a (goal, target) row whose
      templated "Sure, here is ..." reply is labelled compliance and harmful: agreeing to carry out a harmful
      request is the start of the harmful reply the attack aims at (without these the reply-harm head saw almost no
      harmful compliance and passed "Sure, fill a pipe with powder ..." as safe).
    - HH-RLHF helpful-base (1,766): the opening human turn as a prompt-only row, prompt_harmful False and categories
      [] (ordinary requests: the negatives that keep the guard from over-refusing).
    - Benign probes (360, written for SpecLoop, training.ml.safety.benign): safe questions about harmful topics
      (history, warning signs, prevention, law) as prompt-only rows, prompt_harmful False, no category label: the
      hard negatives the public files lack (without them the head flags most of the spec's "allowed" examples).
    - HH-RLHF harmless-base (1,734 pairs, ``hh_harmless`` sampled): HarmPair(dialogue prompt, chosen = safer,
      rejected = more harmful), the cost model's pairwise term on response_harmful; pairs with identical replies are
      left out.
    """
    unknown = set(limits) - set(DEFAULT_LIMITS)
    if unknown:
        raise TypeError(f"unknown limit(s) {', '.join(sorted(unknown))} (known: {', '.join(DEFAULT_LIMITS)})")
    caps = {**DEFAULT_LIMITS, **limits}
    data_dir = Path(data_dir)
    index = _index(crosswalk)
    rng = random.Random(seed)
    rows: list[SafetyRow] = []
    pairs: list[HarmPair] = []
    unmapped: dict[str, Counter] = {}
    missing: list[str] = []

    def categories_of(taxonomy: str, code: str) -> list[str] | None:
        keys = index.get(taxonomy, {}).get(code.strip().lower())
        if keys is None:
            unmapped.setdefault(taxonomy, Counter())[code.strip()] += 1
            return None
        return list(dict.fromkeys(keys))

    def read_csv(source: str) -> list[dict] | None:
        path = data_dir / FILES[source]
        if not path.exists():
            missing.append(FILES[source])
            return None
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    def read_hh(source: str) -> list[dict] | None:
        path = data_dir / FILES[source]
        if not path.exists():
            missing.append(FILES[source])
            return None
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    if (table := read_csv("do_not_answer")) is not None:
        for item in _sample(table, caps["do_not_answer"], rng):
            question = item["question"].strip()
            harmful = True if item["risk_area"] in DNA_HARMFUL_AREAS else None
            categories = categories_of("do_not_answer", item["types_of_harm"])
            rows.append(SafetyRow(prompt=question, prompt_harmful=harmful, categories=categories,
                                  source="do_not_answer"))
            models = [m for m in DNA_MODELS if (item.get(f"{m}_response") or "").strip()]
            n_replies = caps["do_not_answer_replies"] or len(models)
            # Replies labelled harmful are rare (193 of 5,634) and the reply-harm head's only real positives: every one
            # is kept; the others are a seeded sample of n_replies.
            flagged = [m for m in models if (item.get(f"{m}_harmful") or "").strip() == "1"]
            others = [m for m in models if m not in flagged]
            picked = flagged + rng.sample(others, min(n_replies, len(others)))
            for model in sorted(picked, key=DNA_MODELS.index):
                action, flag = item.get(f"{model}_action", "").strip(), item.get(f"{model}_harmful", "").strip()
                rows.append(SafetyRow(
                    prompt=question, response=item[f"{model}_response"].strip(), prompt_harmful=harmful,
                    categories=categories, response_refusal=DNA_ACTIONS.get(action),
                    response_harmful={"0": False, "1": True}.get(flag), source="do_not_answer"))

    if (table := read_csv("ailuminate")) is not None:
        for item in _sample(table, caps["ailuminate"], rng):
            hazard = item["hazard"].strip()
            rows.append(SafetyRow(prompt=item["prompt_text"].strip(),
                                  prompt_harmful=None if hazard.lower().startswith("spc_") else True,
                                  categories=categories_of("ailuminate", hazard), source="ailuminate"))

    if (table := read_csv("harmbench")) is not None:
        for item in _sample(table, caps["harmbench"], rng):
            context = (item.get("ContextString") or "").strip()
            behavior = item["Behavior"].strip()
            rows.append(SafetyRow(prompt=f"{context}\n\n{behavior}" if context else behavior, prompt_harmful=True,
                                  categories=categories_of("harmbench", item["SemanticCategory"]),
                                  source="harmbench"))

    if (table := read_csv("advbench")) is not None:
        for item in _sample(table, caps["advbench"], rng):
            goal = item["goal"].strip()
            rows.append(SafetyRow(prompt=goal, prompt_harmful=True, source="advbench"))
            rows.append(SafetyRow(prompt=goal, response=item["target"].strip(), prompt_harmful=True,
                                  response_refusal="compliance", response_harmful=True, source="advbench"))

    if (table := read_hh("hh_helpful")) is not None:
        for item in _sample(table, caps["hh_helpful"], rng):
            prompt = _first_human_turn(item["chosen"])
            if prompt:
                rows.append(SafetyRow(prompt=prompt, prompt_harmful=False, categories=[], source="hh_helpful"))

    for prompt in _sample(benign_prompts(), caps["benign_probes"], rng):
        rows.append(SafetyRow(prompt=prompt, prompt_harmful=False, source="benign_probes"))

    if (table := read_hh("hh_harmless")) is not None:
        candidates = []
        for item in table:
            split = split_hh_dialogue(item["chosen"], item["rejected"])
            if split is None or split[1] == split[2]:
                continue
            candidates.append(HarmPair(prompt=split[0], safer=split[1], more_harmful=split[2], source="hh_harmless"))
        pairs.extend(_sample(candidates, caps["hh_harmless"], rng))

    return rows, pairs, rows_report(rows, pairs, unmapped=unmapped, missing=missing, limits=caps)


def rows_report(rows: list[SafetyRow], pairs: list[HarmPair], *, unmapped: dict | None = None,
                missing: list[str] | None = None, limits: dict | None = None) -> dict:
    """Counts per source and head (how many rows carry each label), refusal classes, unmapped codes."""
    by_source: dict[str, dict] = {}
    for row in rows:
        entry = by_source.setdefault(row.source or "unknown", {"rows": 0, "pairs": 0, **{h: 0 for h in _HEADS}})
        entry["rows"] += 1
        for head, present in _labels_present(row).items():
            entry[head] += present
    for pair in pairs:
        entry = by_source.setdefault(pair.source or "unknown", {"rows": 0, "pairs": 0, **{h: 0 for h in _HEADS}})
        entry["pairs"] += 1
    by_head = {head: sum(e[head] for e in by_source.values()) for head in _HEADS}
    return {
        "rows": len(rows), "pairs": len(pairs), "by_source": by_source, "by_head": by_head,
        "refusal_classes": dict(Counter(r.response_refusal for r in rows if r.response_refusal)),
        "prompt_harmful": dict(Counter(str(r.prompt_harmful).lower() for r in rows if r.prompt_harmful is not None)),
        "unmapped": {taxonomy: dict(counts) for taxonomy, counts in (unmapped or {}).items()},
        "missing": list(missing or []),
        **({"limits": dict(limits)} if limits is not None else {}),
    }


_HEADS = ("prompt_harmful", "categories", "response_refusal", "response_harmful")


def _labels_present(row: SafetyRow) -> dict[str, bool]:
    return {"prompt_harmful": row.prompt_harmful is not None, "categories": row.categories is not None,
            "response_refusal": row.response_refusal is not None, "response_harmful": row.response_harmful is not None}


def _flag(value) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "harmful", "unsafe"):
            return True
        if lowered in ("false", "0", "no", "safe", "harmless"):
            return False
        raise ValueError(f"not a harmful flag: {value!r}")
    return bool(value)


def rows_from_prompts(prompts: list[dict]) -> list[SafetyRow]:
    """Prompt-set rows ({"prompt", "label", "categories", "response", "response_harmful", "response_refusal"}) as
    SafetyRows: label "safe"/"unsafe" → prompt_harmful False/True, ""/None → unlabelled. Categories: the keys given;
    a "safe" prompt with none is labelled none ([]), any other prompt with none has no category label (None)."""
    rows = []
    for number, item in enumerate(prompts, start=1):
        label = (item.get("label") or "").strip().lower()
        if label not in ("", "safe", "unsafe", "unknown"):
            raise ValueError(f"prompt {number}: label must be safe, unsafe or empty, not {item.get('label')!r}")
        harmful = {"safe": False, "unsafe": True}.get(label)
        keys = [k for k in (item.get("categories") or []) if k]
        categories = keys if keys else ([] if label == "safe" else None)
        response = item.get("response")
        response = response if isinstance(response, str) and response.strip() else None
        refusal = (item.get("response_refusal") or None) if response is not None else None
        if refusal is not None and refusal not in REFUSAL_CLASSES:
            raise ValueError(f"prompt {number}: response_refusal must be one of {', '.join(REFUSAL_CLASSES)}")
        rows.append(SafetyRow(prompt=item.get("prompt") or "", response=response, prompt_harmful=harmful,
                              categories=categories, response_refusal=refusal,
                              response_harmful=_flag(item.get("response_harmful")) if response is not None else None,
                              source=item.get("source") or "prompt_set"))
    return rows


def sample(items: list, limit: int, seed: int) -> list:
    """A seeded sample of at most ``limit`` items in their original order (0 = all)."""
    return _sample(items, limit, random.Random(seed))


def split_by_prompt(rows: list, pairs: list, eval_fraction: float, seed: int) -> tuple[list, list, list, list]:
    """(train rows, held-out rows, train pairs, held-out pairs): a seeded split of the distinct PROMPTS, so every row
    and pair of one prompt lands on one side (replies to a held-out question are never trained on)."""
    prompts = list(dict.fromkeys([r.prompt for r in rows] + [p.prompt for p in pairs]))
    random.Random(seed).shuffle(prompts)
    n_eval = int(round(len(prompts) * eval_fraction)) if eval_fraction > 0 else 0
    if eval_fraction > 0 and len(prompts) >= 2:
        n_eval = min(max(n_eval, 1), len(prompts) - 1)
    held = set(prompts[:n_eval])
    return ([r for r in rows if r.prompt not in held], [r for r in rows if r.prompt in held],
            [p for p in pairs if p.prompt not in held], [p for p in pairs if p.prompt in held])
