"""Bring your own pairs: an existing preference dataset becomes a read-only snapshot beside the exports.

Formats: ``trl`` (TRL's ``prompt`` / ``chosen`` / ``rejected``, plain strings or conversational
message lists, optional ``harmful`` {"chosen", "rejected"} flags, ``margin`` and ``categories``) and
``hh`` (HH-RLHF ``chosen`` / ``rejected`` dialogues, split at the last shared assistant turn, with the
same optional extras). The snapshot's lines use the export format, so jobs read both alike.

The file is read line by line and the snapshot written as it goes; what stays in memory is a 16-byte digest
per distinct pair (to count repeats), never the pairs.
"""

import hashlib
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
from django.conf import settings
from django.db import transaction

from specloop.errors import ValidationFailed

from .exports import write_snapshot
from .imports import MAX_PROMPT_CHARS, _fail, _reply, _text, json_lines, split_hh_dialogue
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


def parse_pair_line(obj: Any, line: int, fmt: str, *, keep_empty: bool = False) -> dict[str, Any]:
    """One line as {prompt, chosen, rejected, extras...}, or an error naming the line."""
    if not isinstance(obj, dict):
        raise _fail(line, "each line must be a JSON object")
    if fmt == "hh":
        if not isinstance(obj.get("chosen"), str) or not isinstance(obj.get("rejected"), str):
            raise _fail(line, 'an HH-RLHF line needs "chosen" and "rejected" dialogue strings')
        prompt, chosen, rejected = split_hh_dialogue(obj["chosen"], obj["rejected"], line)
        prompt = _text(prompt, line, "prompt", MAX_PROMPT_CHARS)
        chosen = _reply(chosen, line, "chosen", keep_empty=keep_empty)
        rejected = _reply(rejected, line, "rejected", keep_empty=keep_empty)
    else:
        for key in ("prompt", "chosen", "rejected"):
            if key not in obj:
                raise _fail(line, f'a TRL line needs "prompt", "chosen" and "rejected"; "{key}" is missing')
        prompt = _text(_conversation(obj["prompt"], line, "prompt"), line, "prompt", MAX_PROMPT_CHARS, allow_empty=True)
        chosen = _reply(_conversation(obj["chosen"], line, "chosen"), line, "chosen", keep_empty=keep_empty)
        rejected = _reply(_conversation(obj["rejected"], line, "rejected"), line, "rejected", keep_empty=keep_empty)
        if chosen == rejected:
            raise _fail(line, "chosen and rejected are identical: a pair needs two different replies to compare")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_extras(obj, line)}


def pair_import_options(*, fmt: Any, name: Any) -> dict[str, str]:
    """The format and name checked before any line is read (a job would only fail on them later)."""
    if fmt not in PAIR_FORMATS:
        raise ValidationFailed.one("format", f"must be one of {', '.join(PAIR_FORMATS)} (?format=trl or ?format=hh)")
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationFailed.one("name", "must be text of at most 200 characters")
    return {"format": fmt, "name": name}


PROGRESS_EVERY = 2000  # lines between two on_progress calls


def export_snapshot_import(
    *, user, fmt: str, text: str | None = None, source: IO[bytes] | None = None, name: str = "",
    keep_empty: bool = False, on_progress: Callable[[float, int], None] | None = None, field: str = "body",
) -> ExportSnapshot:
    """Every line parsed as the snapshot file is written (a bad one → 400 with its number, no file, no row).

    ``source`` is a binary file object (or give ``text``); ``on_progress(fraction read, lines read)`` is
    called every few thousand lines.
    """
    pair_import_options(fmt=fmt, name=name)
    if source is None:
        source = io.BytesIO((text or "").encode())
    size = source.seek(0, io.SEEK_END) or 1
    source.seek(0)
    tag = uuid.uuid4().hex
    counts = {"duplicates": 0, "with_harmful_flags": 0, "lines": 0}
    seen: set[bytes] = set()

    def rows():
        for line, obj in json_lines(source, field=field):
            pair = parse_pair_line(obj, line, fmt, keep_empty=keep_empty)
            key = hashlib.blake2b(orjson.dumps([pair["prompt"], pair["chosen"], pair["rejected"]]), digest_size=16)
            counts["lines"] = line
            if on_progress is not None and line % PROGRESS_EVERY == 0:
                on_progress(min(1.0, source.tell() / size), line)
            if key.digest() in seen:
                counts["duplicates"] += 1
                continue
            seen.add(key.digest())
            counts["with_harmful_flags"] += "harmful" in pair
            yield {"id": f"import-{tag[:8]}-{line}", **pair}

    relative = f"exports/imported/{tag}.jsonl"
    n, digest, size_bytes = write_snapshot(rows(), relative)  # leaves no file when a line is bad
    try:
        if not n:
            raise ValidationFailed.one("body", "no pairs: send one JSON object per line")
        with transaction.atomic():
            snapshot = ExportSnapshot.objects.create(
                source=ExportSnapshot.IMPORTED, name=(name.strip() or f"imported {fmt} dataset"),
                filters={"format": fmt, "duplicates": counts["duplicates"],
                         "with_harmful_flags": counts["with_harmful_flags"]},
                n_pairs=n, n_ties=0, sha256=digest, path=relative, size_bytes=size_bytes, created_by=user)
    except Exception:
        (Path(settings.MEDIA_ROOT) / relative).unlink(missing_ok=True)
        raise
    if on_progress is not None:
        on_progress(1.0, counts["lines"])
    return snapshot
