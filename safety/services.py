"""Writes for the safety instruments: prompt-set imports, the spec's examples as a set, guards, scoring through a
guard (with its decision log) and sending logged decisions to a labeling campaign."""

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling import services as labeling_services
from labeling.models import Campaign
from rewardmodels.models import RewardModel
from rewardmodels.services import scorer_get
from specloop.errors import NotFound, ValidationFailed
from taxonomy.models import SpecVersion

from . import decisions as table
from .crosswalk import crosswalk_index
from .models import Guard, GuardDecision, Prompt, PromptSet
from .prompt_imports import ImportOptions, ParsedPrompt, SpecTerms, iter_prompts

PROMPT_BATCH = 2000  # prompts written at a time inside the import's one transaction
MAX_GUARD_ITEMS = 256  # per guard request
MAX_GUARD_TEXT_CHARS = 100_000
VERDICT_LABEL = {"allowed": PromptSet.SAFE, "disallowed": PromptSet.UNSAFE, "borderline": ""}
DEFAULT_THRESHOLD = 0.5  # when a checkpoint stores no calibrated threshold for a head or category


# --- prompt sets ----------------------------------------------------------------------------------


def prompt_line(prompt: Prompt) -> bytes:
    """One line of a set's canonical prompts.jsonl (keys sorted, so the sha256 does not depend on the database)."""
    return orjson.dumps({
        "prompt": prompt.text, "label": prompt.label or None, "categories": prompt.categories, "codes": prompt.codes,
        "response": prompt.response, "response_harmful": prompt.response_harmful,
        "response_refusal": prompt.response_refusal or None, "meta": prompt.meta,
    }, option=orjson.OPT_SORT_KEYS) + b"\n"


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed.one("name", "a prompt set needs a name")
    if len(name.strip()) > 200:
        raise ValidationFailed.one("name", "must be at most 200 characters")
    return name.strip()


def _published(spec_version: SpecVersion) -> None:
    if spec_version.status != SpecVersion.PUBLISHED:
        raise ValidationFailed.one("version", f"v{spec_version.number} is a draft; prompt sets and guards use a "
                                              "published version (its categories no longer change)")


def _prompt_set_write(prompt_set: PromptSet, parsed: Iterable[ParsedPrompt], *,
                      on_progress: Callable[[int], None] | None = None) -> PromptSet:
    """Write the prompts in batches and the set's counts and sha256; the caller holds the transaction."""
    digest = hashlib.sha256()
    by_category: dict[str, int] = {}
    by_label = {"safe": 0, "unsafe": 0, "unknown": 0}
    unmapped: dict[str, int] = {}
    batch: list[Prompt] = []
    index = 0
    for item in parsed:
        row = Prompt(prompt_set=prompt_set, index=index, text=item.text, label=item.label,
                     categories=item.categories, codes=item.codes, response=item.response,
                     response_harmful=item.response_harmful, response_refusal=item.response_refusal, meta=item.meta)
        digest.update(prompt_line(row))
        for key in item.categories:
            by_category[key] = by_category.get(key, 0) + 1
        by_label[item.label or "unknown"] += 1
        for code in item.unmapped:
            unmapped[code] = unmapped.get(code, 0) + 1
        batch.append(row)
        index += 1
        if len(batch) >= PROMPT_BATCH:
            Prompt.objects.bulk_create(batch)
            batch.clear()
            if on_progress is not None:
                on_progress(item.line)
    Prompt.objects.bulk_create(batch)
    keys = [c["key"] for c in prompt_set.spec_version.document["categories"]]
    prompt_set.n_prompts = index
    prompt_set.sha256 = digest.hexdigest()
    prompt_set.by_category = {k: by_category[k] for k in keys if k in by_category}
    prompt_set.by_label = by_label
    prompt_set.unmapped = dict(sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0])))
    prompt_set.save(update_fields=["n_prompts", "sha256", "by_category", "by_label", "unmapped"])
    return prompt_set


@transaction.atomic
def prompt_set_import(*, user, name: str, spec_version: SpecVersion, source: IO[bytes],
                      options: ImportOptions | dict[str, Any],
                      on_progress: Callable[[float, int], None] | None = None, field: str = "body") -> PromptSet:
    """A whole file or nothing: a bad line anywhere rolls back every prompt written before it (and the set).

    ``options`` says the format and, for CSV, the column mapping (``prompt_imports.import_options_parse``).
    Public codes map to spec categories through the version's crosswalk; the set records the codes that mapped
    to nothing. ``on_progress(fraction of the file read, line)`` is called after each batch.
    """
    name = _checked_name(name)
    _published(spec_version)
    if not isinstance(options, ImportOptions):
        options = ImportOptions.from_dict(options)
    categories = spec_version.document["categories"]
    terms = SpecTerms(categories, crosswalk_index(categories))
    size = source.seek(0, io.SEEK_END) or 1
    source.seek(0)
    prompt_set = PromptSet.objects.create(name=name, spec_version=spec_version, source=options.fmt, sha256="",
                                          options=options.as_dict(), created_by=user)
    progress = None if on_progress is None else (lambda line: on_progress(min(1.0, source.tell() / size), line))
    last = {"line": 0}

    def rows():
        for item in iter_prompts(source, options, terms, field=field):
            last["line"] = item.line
            yield item

    _prompt_set_write(prompt_set, rows(), on_progress=progress)
    if on_progress is not None:
        on_progress(1.0, last["line"])
    return prompt_set


@transaction.atomic
def prompt_set_from_spec_examples(*, user, spec_version: SpecVersion, name: str | None = None) -> PromptSet:
    """The version's own examples as a prompt set: allowed → safe, disallowed → unsafe, borderline → unknown label;
    each example carries its category's key and its verdict in meta."""
    _published(spec_version)
    examples = [
        ParsedPrompt(line=0, text=example["text"], label=VERDICT_LABEL.get(example["verdict"], ""),
                     categories=[category["key"]], meta={"verdict": example["verdict"], "source": "spec_examples"})
        for category in spec_version.document["categories"] for example in category.get("examples") or []
        if str(example.get("text") or "").strip()
    ]
    if not examples:
        raise ValidationFailed.one("version", f"{spec_version} has no examples to make a prompt set from; "
                                              "add allowed / borderline / disallowed examples to its categories")
    name = _checked_name(name or f"{spec_version} examples")
    prompt_set = PromptSet.objects.create(name=name, spec_version=spec_version, source="spec_examples", sha256="",
                                          options={"format": "spec_examples"}, created_by=user)
    return _prompt_set_write(prompt_set, examples)


# --- guards ---------------------------------------------------------------------------------------


def _checkpoint_metadata(model: RewardModel) -> dict[str, Any]:
    """The checkpoint's own description (specloop.json), or 400 naming the field when it is not on this machine."""
    folder = Path(settings.MEDIA_ROOT) / model.path
    try:
        return json.loads((folder / "specloop.json").read_text())
    except (OSError, ValueError):
        if not folder.is_dir():
            raise ValidationFailed.one("safety_classifier", f"model {model.pk}'s checkpoint is missing from storage") from None
        return {}


@transaction.atomic
def guard_create(*, user, name: str, safety_classifier: RewardModel, spec_version: SpecVersion | None = None,
                 cost_model: RewardModel | None = None, log_decisions: bool = False) -> Guard:
    """A published spec version served with a safety classifier (spec version default: the classifier's own)."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ValidationFailed.one("name", "a guard needs a name of at most 200 characters")
    if safety_classifier.kind != RewardModel.SAFETY:
        raise ValidationFailed.one("safety_classifier", f"model {safety_classifier.pk} is a {safety_classifier.kind} "
                                                        "model; pick a safety classifier")
    if cost_model is not None and cost_model.kind != RewardModel.COST:
        raise ValidationFailed.one("cost_model", f"model {cost_model.pk} is a {cost_model.kind} model; pick a cost model")
    if spec_version is None:
        spec_version = safety_classifier.spec_version
        if spec_version is None:
            raise ValidationFailed.one("spec", "the classifier records no spec version: give spec (and version)")
    _published(spec_version)
    scored = [c.get("key") for c in _checkpoint_metadata(safety_classifier).get("categories") or []
              if isinstance(c, dict)]
    keys = {c["key"] for c in spec_version.document["categories"]}
    if scored and not keys & set(scored):
        raise ValidationFailed.one("safety_classifier", f"the classifier scores none of {spec_version}'s categories; "
                                                        "pick one trained on this spec")
    return Guard.objects.create(name=name, spec_version=spec_version, safety_classifier=safety_classifier,
                                cost_model=cost_model, log_decisions=bool(log_decisions), created_by=user)


MAX_LOADED_CLASSIFIERS = 4  # per process; the least recently used is dropped beyond this
_classifiers: OrderedDict[tuple[int, str], Any] = OrderedDict()
_classifiers_lock = threading.Lock()


def classifier_get(model: RewardModel):
    """The safety classifier, loaded once per process (keyed on the full checkpoint folder, as scorers are)."""
    folder = Path(settings.MEDIA_ROOT) / model.path
    key = (model.pk, str(folder))
    with _classifiers_lock:
        classifier = _classifiers.get(key)
        if classifier is None:
            from training.ml.safety import load_classifier

            try:
                classifier = load_classifier(folder, device=settings.SCORING_DEVICE)
            except OSError:  # the folder, or a file in it, is not on this machine
                raise NotFound(f"model {model.pk}'s checkpoint is missing from storage") from None
            _classifiers[key] = classifier
            while len(_classifiers) > MAX_LOADED_CLASSIFIERS:
                _classifiers.popitem(last=False)
        _classifiers.move_to_end(key)
        return classifier


def classifiers_clear() -> None:
    """Drop every loaded classifier (tests, whose ids and folders repeat)."""
    with _classifiers_lock:
        _classifiers.clear()


def _threshold(thresholds: Any, head: str, key: str | None = None) -> float:
    """A calibrated threshold from the checkpoint: ``{"prompt_harmful": t, "response_harmful": t,
    "categories": {key: t}}``; 0.5 where it stores none."""
    if not isinstance(thresholds, dict):
        return DEFAULT_THRESHOLD
    value = thresholds.get(head)
    if key is not None:
        value = value.get(key) if isinstance(value, dict) else thresholds.get(f"{head}/{key}")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else DEFAULT_THRESHOLD


def _item_result(guard: Guard, spec_categories: list[dict], scored: list[str], thresholds: Any, out: dict,
                 has_response: bool, cost: float | None) -> dict[str, Any]:
    p_prompt = float(out["prompt_harmful"])
    prompt_harmful = p_prompt >= _threshold(thresholds, "prompt_harmful")
    refusal_label, refusal_probabilities = None, None
    p_response, response_harmful = None, None
    if has_response:
        refusal_probabilities = {k: float(v) for k, v in out["response_refusal"].items()}
        refusal_label = max(refusal_probabilities, key=refusal_probabilities.__getitem__)
        p_response = float(out["response_harmful"])
        response_harmful = p_response >= _threshold(thresholds, "response_harmful") or (cost is not None and cost > 0)
    categories = []
    for category in spec_categories:
        if category["key"] not in scored:
            continue
        p = float(out["categories"][category["key"]])
        categories.append({"key": category["key"], "name": category["name"], "probability": p,
                           "flagged": p >= _threshold(thresholds, "categories", category["key"]),
                           "behavior": category["behavior"], "decision": table.ALLOW})
    flagged = [c for c in categories if c["flagged"]]
    judged = table.Judged(prompt_harmful=prompt_harmful, has_response=has_response, refusal=refusal_label,
                          response_harmful=response_harmful, flagged=[(c["key"], c["behavior"]) for c in flagged])
    decision, per_category, notes = table.decide(judged)
    for category, category_decision in zip(flagged, per_category):
        category["decision"] = category_decision
    result = {
        "decision": decision,
        "prompt_harmful": {"probability": p_prompt, "harmful": prompt_harmful},
        "response_refusal": {"label": refusal_label, "probabilities": refusal_probabilities},
        "response_harmful": {"probability": p_response, "harmful": response_harmful},
        "categories": categories,
        "notes": notes,
        "spec_version": {"spec": guard.spec_version.spec_id, "version": guard.spec_version.number},
        "guard": guard.pk,
        "model": guard.safety_classifier_id,
    }
    if guard.cost_model_id:
        result["cost"] = {"model": guard.cost_model_id, "score": cost, "harmful": None if cost is None else cost > 0}
    return result


def guard_score(*, guard: Guard, items: list[dict[str, Any]], user, log: bool = True) -> list[dict[str, Any]]:
    """Score each ``{"prompt", "response"?}`` in one forward pass and decide by the guard's spec version.

    A reply is harmful when the classifier's ``response_harmful`` reaches its calibrated threshold, or the
    guard's cost model (when it has one) gives it a cost above 0. Logged when the guard logs its decisions (and
    ``log`` is true: the guard page's try-it form leaves the log to real traffic).
    """
    if not items:
        raise ValidationFailed.one("items", "must hold at least one {prompt, response?}")
    if len(items) > MAX_GUARD_ITEMS:
        raise ValidationFailed.one("items", f"at most {MAX_GUARD_ITEMS} per request; send the rest in more requests")
    prompts = [item["prompt"] for item in items]
    # A blank reply is no reply (the classifier reads it so too): the prompt is judged alone.
    responses = [r if isinstance(r := item.get("response"), str) and r.strip() else None for item in items]
    classifier = classifier_get(guard.safety_classifier)
    with _classifiers_lock:  # one forward pass at a time per process; torch already uses every core
        outputs = classifier.classify(prompts, responses)
    costs: list[float | None] = [None] * len(items)
    answered = [i for i, r in enumerate(responses) if r is not None]
    if guard.cost_model_id and answered:
        try:
            scorer = scorer_get(guard.cost_model)
        except FileNotFoundError:
            raise NotFound(f"cost model {guard.cost_model_id}'s checkpoint is missing from storage") from None
        with _classifiers_lock:
            scores = scorer.score([prompts[i] for i in answered], [responses[i] for i in answered])
        for i, score in zip(answered, scores):
            costs[i] = float(score)
    spec_categories = guard.spec_version.document["categories"]
    scored = [c["key"] for c in classifier.categories]
    thresholds = getattr(classifier, "thresholds", {})
    results = [_item_result(guard, spec_categories, scored, thresholds, out, responses[i] is not None, costs[i])
               for i, out in enumerate(outputs)]
    if guard.log_decisions and log:
        rows = GuardDecision.objects.bulk_create([
            GuardDecision(guard=guard, prompt=prompts[i], response=responses[i], decision=result["decision"],
                          result=result, client=user if getattr(user, "is_authenticated", False) else None)
            for i, result in enumerate(results)])
        for row, result in zip(rows, results):
            result["decision_id"] = row.pk
    return results


# --- the decision log → a labeling campaign -------------------------------------------------------


@transaction.atomic
def guard_decisions_send_to_campaign(*, user, guard: Guard, decision_ids: list[int], campaign: Campaign) -> dict[str, Any]:
    """The chosen decisions become labeling items: one item per prompt, its distinct replies compared in pairs.

    A pairwise item needs two different replies, so decisions are grouped by prompt; a prompt with fewer than two
    distinct replies among the chosen decisions is reported in ``skipped`` with the reason, and its decisions are
    not marked sent. Items already in the campaign count as duplicates (labeling's import rules).
    """
    wanted = list(dict.fromkeys(decision_ids))
    found = {d.pk: d for d in GuardDecision.objects.filter(guard=guard, pk__in=wanted).order_by("id")}
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        raise ValidationFailed.one("decisions", f"not in this guard's log: {shown}")
    keys = {c["key"] for c in campaign.spec_version.document["categories"]}
    groups: dict[str, list[GuardDecision]] = {}
    for decision in found.values():
        groups.setdefault(decision.prompt, []).append(decision)
    items, skipped, sent = [], [], []
    for prompt, group in groups.items():
        replies: dict[str, GuardDecision] = {}
        for decision in group:
            if decision.response is not None and decision.response.strip():
                replies.setdefault(decision.response, decision)
        ids = [d.pk for d in group]
        if len(replies) < 2:
            reason = ("no reply: the guard judged the prompt alone" if not replies else
                      "one distinct reply: a pairwise item needs two different replies to this prompt")
            skipped.append({"prompt": prompt[:300], "decisions": ids, "reason": reason})
            continue
        flagged = [c["key"] for d in group for c in d.result.get("categories", []) if c.get("flagged")]
        meta: dict[str, Any] = {"source": "guard", "guard": guard.pk, "decisions": ids,
                                "decision": table.strictest(d.decision for d in group if d.decision in table.DECISIONS)}
        category = next((k for k in flagged if k in keys), None)
        if category:
            meta["category"] = category
        items.append({"prompt": prompt, "meta": meta,
                      "responses": [{"text": text, "model": f"guard decision {d.pk}"} for text, d in replies.items()]})
        sent.extend(ids)
    counts = {"created_items": 0, "created_tasks": 0, "duplicates": 0}
    if items:
        text = "\n".join(json.dumps(item) for item in items)
        counts = labeling_services.items_import(campaign=campaign, text=text, fmt="jsonl").as_dict()
        GuardDecision.objects.filter(pk__in=sent).update(sent_to_campaign=campaign, sent_at=timezone.now())
    return {"campaign": campaign.pk, **counts, "sent": len(sent), "skipped": skipped}
