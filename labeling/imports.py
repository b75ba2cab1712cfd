"""Parsing of item files: JSONL (SPEC section 2), HH-RLHF dialogues and CSV.

A file is read from a binary file object (an upload spooled to disk) line by line, so memory does not grow
with its size. Pure functions: bytes in, ``ParsedItem`` rows out, or ``ValidationFailed`` naming the line and
the reason.
"""

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from rewardmodels.ml.hh import has_human_turn
from rewardmodels.ml.hh import split_hh_dialogue as hh_split
from specloop.errors import PayloadTooLarge, ValidationFailed
from specloop.textcheck import bad_text_reason, check_tree

FORMATS = ("jsonl", "hh", "csv")
MAX_FILE_BYTES = 200 * 1024 * 1024  # one import; a larger file is split by the user
MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSON line: a prompt and a few replies at their limits fit many times
MAX_PROMPT_CHARS = 100_000
MAX_RESPONSE_CHARS = 100_000
KEEP_EMPTY_HINT = "pass keep_empty=1 to keep empty replies"
_BOM = codecs.BOM_UTF8


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


def check_size(size: int, *, field: str) -> None:
    """Refuse a file over the limit before reading it."""
    if size > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            f"{field}: the file is over {MAX_FILE_BYTES // 2**20} MiB, the limit for one import: split it",
            detail={"errors": [{"field": field, "message": f"over the limit of {MAX_FILE_BYTES // 2**20} MiB"}],
                    "limit_bytes": MAX_FILE_BYTES},
        )


def _fail(line: int, message: str) -> ValidationFailed:
    error = ValidationFailed.one(f"line {line}", message)
    error.detail["line"] = line
    return error


def _text(value: Any, line: int, what: str, limit: int, *, allow_empty: bool = False) -> str:
    """Text of a field; a prompt may not be empty (a reply's emptiness is ``_reply``'s call)."""
    if not isinstance(value, str):
        raise _fail(line, f"{what} must be a string, got {type(value).__name__}")
    if reason := bad_text_reason(value):  # the database cannot store it
        raise _fail(line, f"{what} {reason}")
    if not value.strip() and not allow_empty:
        raise _fail(line, f"{what} is empty")
    if len(value) > limit:
        raise _fail(line, f"{what} is longer than {limit} characters")
    return value


def _reply(value: Any, line: int, what: str, *, keep_empty: bool) -> str:
    """A reply's text. An empty one is refused unless the import keeps them (a model can say nothing, but an
    empty reply is more often a broken file, and raters can only mark it)."""
    text = _text(value, line, what, MAX_RESPONSE_CHARS, allow_empty=True)
    if not keep_empty and not text.strip():
        raise _fail(line, f"{what} is empty; {KEEP_EMPTY_HINT}")
    return text


def _distinct(responses: list[dict[str, Any]], line: int) -> list[dict[str, Any]]:
    texts = [r["text"] for r in responses]
    if len(set(texts)) != len(texts):
        raise _fail(line, "two replies are identical: a pair needs two different replies to compare")
    return responses


def parse_jsonl_line(obj: Any, line: int, *, keep_empty: bool = False) -> ParsedItem:
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
            text = _reply(response.get("text"), line, f"responses[{i}].text", keep_empty=keep_empty)
            responses.append({"text": text, "model": model})
    elif "response_a" in obj and "response_b" in obj:
        responses = [
            {"text": _reply(obj["response_a"], line, "response_a", keep_empty=keep_empty), "model": None},
            {"text": _reply(obj["response_b"], line, "response_b", keep_empty=keep_empty), "model": None},
        ]
    else:
        raise _fail(line, "needs responses (a list) or response_a and response_b")
    return ParsedItem(line=line, prompt=prompt, responses=_distinct(responses, line), meta=meta)


def split_hh_dialogue(chosen: str, rejected: str, line: int) -> tuple[str, str, str]:
    """HH-RLHF: ``rewardmodels.ml.hh``'s split (the one training uses), or an error naming the line.

    The prompt keeps the dialogue as written up to and including the last shared ``"\\n\\nAssistant:"``;
    the replies are what follows it, so ``prompt + reply`` is the dataset's dialogue.
    """
    if chosen == rejected:
        raise _fail(line, "chosen and rejected are identical: a pair needs two different replies to compare")
    split = hh_split(chosen, rejected)
    if split is None:
        raise _fail(line, "chosen and rejected do not share a dialogue ending in an '\\n\\nAssistant:' turn")
    if not has_human_turn(split[0]):
        raise _fail(line, "the dialogue has no human turn before the last assistant turn")
    return split


def parse_hh_line(obj: Any, line: int, *, keep_empty: bool = False) -> ParsedItem:
    if not isinstance(obj, dict) or not isinstance(obj.get("chosen"), str) or not isinstance(obj.get("rejected"), str):
        raise _fail(line, 'an HH-RLHF line needs "chosen" and "rejected" dialogue strings')
    prompt, chosen, rejected = split_hh_dialogue(obj["chosen"], obj["rejected"], line)
    prompt = _text(prompt, line, "prompt", MAX_PROMPT_CHARS)
    responses = [{"text": _reply(chosen, line, "chosen", keep_empty=keep_empty), "model": None},
                 {"text": _reply(rejected, line, "rejected", keep_empty=keep_empty), "model": None}]
    # The source's own preference: x (listed first) was chosen.
    return ParsedItem(line=line, prompt=prompt, responses=_distinct(responses, line), meta={"source_preference": "x"})


def _not_utf8(field: str, offset: int) -> ValidationFailed:
    return ValidationFailed.one(field, f"the file is not UTF-8 text (byte {offset})")


def _text_lines(source: IO[bytes], *, field: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, numbered as ``str.splitlines`` numbers them, read one line at a time."""
    n = offset = 0
    while raw := source.readline(MAX_LINE_BYTES + 1):
        if len(raw) > MAX_LINE_BYTES:
            raise _fail(n + 1, f"the line is longer than {MAX_LINE_BYTES // 2**20} MiB")
        start = offset
        offset += len(raw)
        if start == 0 and raw.startswith(_BOM):
            raw, start = raw[len(_BOM):], len(_BOM)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(field, start + exc.start) from None
        for piece in text.splitlines():  # a line may hold other line breaks (CR alone, U+2028...)
            n += 1
            yield n, piece


def json_lines(source: IO[bytes], *, field: str = "file") -> Iterator[tuple[int, Any]]:
    """Every non-blank line as a JSON value, with its number; a bad one raises naming it."""
    for n, text in _text_lines(source, field=field):
        if not text.strip():
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _fail(n, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if problems := check_tree(obj):  # NUL or a lone surrogate anywhere (meta, model), or nested too deep
            raise _fail(n, f"{problems[0]['field']} {problems[0]['message']}")
        yield n, obj


def _first_bad_byte(source: IO[bytes]) -> int:
    source.seek(0)
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    while chunk := source.read(1 << 20):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return offset + exc.start
        offset += len(chunk)
    return offset


def parse_csv(source: IO[bytes], *, field: str = "file") -> Iterator[ParsedItem]:
    """A header with ``prompt`` and two or more ``response*`` columns (empty cells: that row has fewer replies)."""
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
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
            for reply in replies:
                _text(reply["text"], line, "a reply", MAX_RESPONSE_CHARS)
            meta = {"category": row["category"]} if row.get("category") else {}
            yield ParsedItem(line=line, prompt=prompt, responses=_distinct(replies, line), meta=meta)
    except UnicodeDecodeError:
        raise _not_utf8(field, _first_bad_byte(source)) from None
    except csv.Error as exc:
        raise _fail(reader.line_num, f"not valid CSV ({exc})") from None
    finally:
        text.detach()  # the caller owns the file


def iter_items(source: IO[bytes], fmt: str, *, keep_empty: bool = False, field: str = "file") -> Iterator[ParsedItem]:
    """Every item of the file in order, or the first bad line's error (raised when the reading reaches it)."""
    if fmt not in FORMATS:
        raise ValidationFailed.one("format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "csv":
        items: Iterator[ParsedItem] = parse_csv(source, field=field)
    else:
        parse = parse_jsonl_line if fmt == "jsonl" else parse_hh_line
        items = (parse(obj, n, keep_empty=keep_empty) for n, obj in json_lines(source, field=field))
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        raise ValidationFailed.one(field, "the file has no items")


def parse_items(text: str, fmt: str, *, keep_empty: bool = False) -> list[ParsedItem]:
    """A whole file held as text (tests, the demo): ``iter_items`` over its bytes."""
    return list(iter_items(io.BytesIO(text.encode()), fmt, keep_empty=keep_empty))


def detect_format(text: str) -> str:
    """jsonl, hh or csv from the first non-empty line."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first.lstrip().startswith("{"):
        return "csv"
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return "jsonl"
    return "hh" if isinstance(obj, dict) and "chosen" in obj and "rejected" in obj and "prompt" not in obj else "jsonl"


def detect_format_file(source: IO[bytes]) -> str:
    """``detect_format`` from the start of a file; the file is left at its start."""
    try:
        for _, text in _text_lines(source, field="file"):
            if text.strip():
                return detect_format(text)
        return "jsonl"
    except ValidationFailed:
        return "jsonl"  # an undecodable or overlong first line: the import names it
    finally:
        source.seek(0)
