"""Parsing of item files: JSONL (SPEC section 2), HH-RLHF dialogues and CSV.

Pure functions: text in, ``ParsedItem`` rows out, or ``ValidationFailed`` naming the line and the reason.
"""

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from specloop.errors import ValidationFailed

FORMATS = ("jsonl", "hh", "csv")
MAX_FILE_BYTES = 200 * 1024 * 1024  # one import; a larger file is split by the user
MAX_PROMPT_CHARS = 100_000
MAX_RESPONSE_CHARS = 100_000


@dataclass
class ParsedItem:
    line: int
    prompt: str
    responses: list[dict[str, Any]]  # [{"text": str, "model": str | None}]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Same prompt and same reply texts, in the same order: the same item."""
        h = hashlib.sha256()
        h.update(self.prompt.encode())
        for response in self.responses:
            h.update(b"\x00")
            h.update(response["text"].encode())
        return h.hexdigest()


def decode_file(raw: bytes, *, field: str) -> str:
    """An item file's bytes as text (UTF-8, a BOM allowed), or an error naming ``field``."""
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationFailed.one(field, f"the file is {len(raw) // 2**20} MiB; the limit is 200 MiB: split it")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed.one(field, f"the file is not UTF-8 text (byte {exc.start})") from None


def _fail(line: int, message: str) -> ValidationFailed:
    error = ValidationFailed.one(f"line {line}", message)
    error.detail["line"] = line
    return error


def _text(value: Any, line: int, what: str, limit: int, *, allow_empty: bool = False) -> str:
    """Text of a field. A reply may be empty (a model can say nothing); a prompt may not."""
    if not isinstance(value, str):
        raise _fail(line, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip() and not allow_empty:
        raise _fail(line, f"{what} is empty")
    if len(value) > limit:
        raise _fail(line, f"{what} is longer than {limit} characters")
    return value


def _distinct(responses: list[dict[str, Any]], line: int) -> list[dict[str, Any]]:
    texts = [r["text"] for r in responses]
    if len(set(texts)) != len(texts):
        raise _fail(line, "two replies are identical: a pair needs two different replies to compare")
    return responses


def parse_jsonl_line(obj: Any, line: int) -> ParsedItem:
    if not isinstance(obj, dict):
        raise _fail(line, "each line must be a JSON object")
    allowed = {"prompt", "responses", "response_a", "response_b", "meta"}
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(line, f"unknown key {unknown[0]!r}; allowed: prompt, responses, response_a, response_b, meta")
    prompt = _text(obj.get("prompt"), line, "prompt", MAX_PROMPT_CHARS)
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise _fail(line, "meta must be an object")
    if "responses" in obj:
        if "response_a" in obj or "response_b" in obj:
            raise _fail(line, "give either responses or response_a/response_b, not both")
        raw = obj["responses"]
        if not isinstance(raw, list) or len(raw) < 2:
            raise _fail(line, "responses must be a list of at least two replies")
        responses = []
        for i, response in enumerate(raw):
            if isinstance(response, str):
                response = {"text": response}
            if not isinstance(response, dict):
                raise _fail(line, f"responses[{i}] must be an object with text")
            model = response.get("model")
            if model is not None and not isinstance(model, str):
                raise _fail(line, f"responses[{i}].model must be a string")
            text = _text(response.get("text"), line, f"responses[{i}].text", MAX_RESPONSE_CHARS, allow_empty=True)
            responses.append({"text": text, "model": model})
    elif "response_a" in obj and "response_b" in obj:
        responses = [
            {"text": _text(obj["response_a"], line, "response_a", MAX_RESPONSE_CHARS, allow_empty=True), "model": None},
            {"text": _text(obj["response_b"], line, "response_b", MAX_RESPONSE_CHARS, allow_empty=True), "model": None},
        ]
    else:
        raise _fail(line, "needs responses (a list) or response_a and response_b")
    return ParsedItem(line=line, prompt=prompt, responses=_distinct(responses, line), meta=meta)


ASSISTANT = "\n\nAssistant:"


def split_hh_dialogue(chosen: str, rejected: str, line: int) -> tuple[str, str, str]:
    """HH-RLHF: the shared dialogue up to its last assistant turn is the prompt; what follows are the replies.

    The split is at the last ``Assistant:`` marker inside the common prefix, since a reply may itself
    contain that marker (ten lines of the public dev files do).
    """
    if chosen == rejected:
        raise _fail(line, "chosen and rejected are identical: a pair needs two different replies to compare")
    cut = os.path.commonprefix([chosen, rejected]).rfind(ASSISTANT)
    if cut < 0:
        raise _fail(line, "chosen and rejected do not share a dialogue ending in an '\\n\\nAssistant:' turn")
    prompt = chosen[:cut].strip()
    return prompt, chosen[cut + len(ASSISTANT):].strip(), rejected[cut + len(ASSISTANT):].strip()


def parse_hh_line(obj: Any, line: int) -> ParsedItem:
    if not isinstance(obj, dict) or not isinstance(obj.get("chosen"), str) or not isinstance(obj.get("rejected"), str):
        raise _fail(line, 'an HH-RLHF line needs "chosen" and "rejected" dialogue strings')
    prompt, chosen, rejected = split_hh_dialogue(obj["chosen"], obj["rejected"], line)
    if not prompt:
        raise _fail(line, "the dialogue has no human turn before the last assistant turn")
    # An empty final reply is kept: it is what the model said, and raters can compare it.
    responses = [{"text": chosen, "model": None}, {"text": rejected, "model": None}]
    # The source's own preference: x (listed first) was chosen.
    return ParsedItem(line=line, prompt=prompt, responses=_distinct(responses, line), meta={"source_preference": "x"})


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(n, f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def parse_csv(text: str) -> Iterator[ParsedItem]:
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "prompt" not in columns:
        raise _fail(1, "the CSV header needs a 'prompt' column and reply columns (response_a, response_b, ...)")
    reply_columns = [c for c in columns if c.startswith("response")]
    if len(reply_columns) < 2:
        raise _fail(1, "the CSV header needs at least two reply columns (response_a, response_b, ...)")
    for row in reader:
        line = reader.line_num
        prompt = _text(row.get("prompt"), line, "prompt", MAX_PROMPT_CHARS)
        replies = [{"text": row[c], "model": None} for c in reply_columns if row.get(c) and row[c].strip()]
        if len(replies) < 2:
            raise _fail(line, "needs at least two non-empty reply columns")
        meta = {"category": row["category"]} if row.get("category") else {}
        yield ParsedItem(line=line, prompt=prompt, responses=_distinct(replies, line), meta=meta)


def parse_items(text: str, fmt: str) -> Iterable[ParsedItem]:
    """Every item of the file, or the first bad line's error."""
    if fmt not in FORMATS:
        raise ValidationFailed.one("format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return list(parse_csv(text))
    parse = parse_jsonl_line if fmt == "jsonl" else parse_hh_line
    items = [parse(obj, n) for n, obj in _json_lines(text)]
    if not items:
        raise ValidationFailed.one("body", "the file has no items")
    return items


def detect_format(text: str) -> str:
    """jsonl, hh or csv from the first non-empty line."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first.lstrip().startswith("{"):
        return "csv"
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return "jsonl"
    return "hh" if isinstance(obj, dict) and "chosen" in obj and "rejected" in obj and "prompt" not in obj else "jsonl"
