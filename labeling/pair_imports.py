"""Bring your own pairs: an existing preference dataset becomes a read-only snapshot beside the exports.

Formats: ``trl`` (TRL's ``prompt`` / ``chosen`` / ``rejected``, plain strings or conversational
message lists, optional ``harmful`` {"chosen", "rejected"} flags, ``margin`` and ``categories``) and
``hh`` (HH-RLHF ``chosen`` / ``rejected`` dialogues, split at the last shared assistant turn, with the
same optional extras). The snapshot's lines use the export format, so jobs read both alike.
"""

import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction

from specloop.errors import ValidationFailed

from .exports import write_snapshot
from .imports import MAX_PROMPT_CHARS, MAX_RESPONSE_CHARS, _fail, _json_lines, _text, split_hh_dialogue
from .models import ExportSnapshot

PAIR_FORMATS = ("trl", "hh")
ROLE_LABELS = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}


def _conversation(value: Any, line: int, what: str) -> str:
    """TRL's conversational form (a list of {"role", "content"}) as one text, HH style."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value):
        raise _fail(line, f"{what} must be a string or a list of {{\"role\", \"content\"}} messages")
    if len(value) == 1:
        return value[0]["content"]
    return "\n\n".join(f"{ROLE_LABELS.get(str(m.get('role', '')).lower(), 'Human')}: {m['content']}" for m in value)


def _extras(obj: dict, line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "harmful" in obj and obj["harmful"] is not None:
        harmful = obj["harmful"]
        if not isinstance(harmful, dict) or set(harmful) - {"chosen", "rejected"} or not all(
                isinstance(v, bool) for v in harmful.values()):
            raise _fail(line, 'harmful must be {"chosen": true|false, "rejected": true|false}')
        out["harmful"] = {"chosen": harmful.get("chosen"), "rejected": harmful.get("rejected")}
    if "margin" in obj and obj["margin"] is not None:
        margin = obj["margin"]
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
            raise _fail(line, "margin must be a number of 0 or more")
        out["margin"] = float(margin)
    if "categories" in obj and obj["categories"] is not None:
        cats = obj["categories"]
        if not isinstance(cats, dict) or not all(
                isinstance(v, list) and all(isinstance(c, str) for c in v) for v in cats.values()):
            raise _fail(line, 'categories must be {"chosen": [keys], "rejected": [keys]}')
        out["categories"] = {"chosen": sorted(cats.get("chosen", [])), "rejected": sorted(cats.get("rejected", []))}
    return out


def parse_pair_line(obj: Any, line: int, fmt: str) -> dict[str, Any]:
    """One line as {prompt, chosen, rejected, extras...}, or an error naming the line."""
    if not isinstance(obj, dict):
        raise _fail(line, "each line must be a JSON object")
    if fmt == "hh":
        if not isinstance(obj.get("chosen"), str) or not isinstance(obj.get("rejected"), str):
            raise _fail(line, 'an HH-RLHF line needs "chosen" and "rejected" dialogue strings')
        prompt, chosen, rejected = split_hh_dialogue(obj["chosen"], obj["rejected"], line)
        if not prompt:
            raise _fail(line, "the dialogue has no human turn before the last assistant turn")
    else:
        for key in ("prompt", "chosen", "rejected"):
            if key not in obj:
                raise _fail(line, f'a TRL line needs "prompt", "chosen" and "rejected"; "{key}" is missing')
        prompt = _text(_conversation(obj["prompt"], line, "prompt"), line, "prompt", MAX_PROMPT_CHARS, allow_empty=True)
        chosen = _text(_conversation(obj["chosen"], line, "chosen"), line, "chosen", MAX_RESPONSE_CHARS, allow_empty=True)
        rejected = _text(_conversation(obj["rejected"], line, "rejected"), line, "rejected", MAX_RESPONSE_CHARS,
                         allow_empty=True)
        if chosen == rejected:
            raise _fail(line, "chosen and rejected are identical: a pair needs two different replies to compare")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_extras(obj, line)}


def export_snapshot_import(*, user, text: str, fmt: str, name: str = "") -> ExportSnapshot:
    """Every line parsed first (a bad one → 400 with its number, nothing saved), then written once."""
    if fmt not in PAIR_FORMATS:
        raise ValidationFailed.one("format", f"must be one of {', '.join(PAIR_FORMATS)} (?format=trl or ?format=hh)")
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationFailed.one("name", "must be text of at most 200 characters")
    tag = uuid.uuid4().hex
    pairs: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    duplicates = 0
    for line, obj in _json_lines(text):
        pair = parse_pair_line(obj, line, fmt)
        key = orjson.dumps([pair["prompt"], pair["chosen"], pair["rejected"]])
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        pairs.append({"id": f"import-{tag[:8]}-{line}", **pair})
    if not pairs:
        raise ValidationFailed.one("body", "no pairs: send one JSON object per line")
    relative = f"exports/imported/{tag}.jsonl"
    n, digest, size = write_snapshot(iter(pairs), relative)
    try:
        with transaction.atomic():
            return ExportSnapshot.objects.create(
                source=ExportSnapshot.IMPORTED, name=(name.strip() or f"imported {fmt} dataset"),
                filters={"format": fmt, "duplicates": duplicates,
                         "with_harmful_flags": sum(1 for p in pairs if "harmful" in p)},
                n_pairs=n, n_ties=0, sha256=digest, path=relative, size_bytes=size, created_by=user)
    except Exception:
        (Path(settings.MEDIA_ROOT) / relative).unlink(missing_ok=True)
        raise
