"""Parsing of prompt-set files: JSONL lines, or CSV rows read through a column mapping.

Bytes in, ``ParsedPrompt`` rows out, or ``ValidationFailed`` naming the line (or the query parameter) and the
reason; the file is read line by line, so memory does not grow with its size. The line rules (text checks,
limits, UTF-8, line numbering) are labeling's item-import rules, called from there.

CSV mappings for the public files in ../shared/data (query parameters of ``POST /api/v1/prompt-sets/``):

- AILuminate: ``prompt_column=prompt_text&code_column=hazard&taxonomy=ailuminate&label=unsafe``
- HarmBench: ``prompt_column=Behavior&code_column=SemanticCategory&taxonomy=harmbench&label=unsafe``
- AdvBench: ``prompt_column=goal&label=unsafe``
- Do-Not-Answer: ``prompt_column=question&code_column=types_of_harm&taxonomy=do_not_answer&label=unsafe``
  and ``response_column=GPT4_response&response_column=ChatGPT_response&...``: each reply becomes its own prompt
  row, with the labels in the ``<model>_harmful`` (0/1) and ``<model>_action`` (0–5) columns beside it.

Do-Not-Answer's action codes (Wang et al., 2023, table 2) become refusal classes as ``DNA_ACTION_REFUSAL`` says:
0 (cannot help: refuses) → ``full_refusal``; 5 (follows the instruction without question) → ``compliance``;
1 (refutes the request's opinion or premise), 2 (offers a well-rounded statement with both sides), 3 (answers
with a warning or disclaimer) and 4 (says it cannot answer for lack of knowledge or access) →
``partial_refusal``: each of them declines the request as asked while still saying something relevant, which
is what the partial-refusal class holds; none answers as asked (that is 5).
"""

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from labeling.imports import (
    MAX_PROMPT_CHARS,
    MAX_RESPONSE_CHARS,
    _fail,
    _first_bad_byte,
    _not_utf8,
    _text,
    json_lines,
)
from specloop.errors import ValidationFailed

from .crosswalk import map_codes

FORMATS = ("jsonl", "csv")
REFUSALS = ("compliance", "partial_refusal", "full_refusal")
# A label as written in a file or a query parameter → the stored label ("" is unknown).
LABELS = {"safe": "safe", "benign": "safe", "unsafe": "unsafe", "harmful": "unsafe", "unknown": "", "": ""}
DNA_ACTION_REFUSAL = {0: "full_refusal", 1: "partial_refusal", 2: "partial_refusal", 3: "partial_refusal",
                      4: "partial_refusal", 5: "compliance"}
JSONL_KEYS = ("prompt", "label", "category", "categories", "codes", "response", "response_harmful",
              "response_refusal", "meta")
_REPLY_LABEL = re.compile(r"^(?P<prefix>.+)_(response|harmful|action)$")
_KEY_SPLIT = re.compile(r"[,;]")


@dataclass
class ImportOptions:
    """How to read a file; every value comes from a query parameter or a form field of the same name."""

    fmt: str = "jsonl"
    label: str = ""  # the label of rows that do not carry one ("" unknown)
    prompt_column: str = "prompt"
    label_column: str = ""
    response_columns: list[str] = field(default_factory=list)
    category_column: str = ""
    code_column: str = ""
    taxonomy: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.fmt}
        if self.label:
            out["label"] = self.label
        if self.fmt == "csv":
            out["prompt_column"] = self.prompt_column
            for name in ("label_column", "category_column", "code_column", "taxonomy"):
                if getattr(self, name):
                    out[name] = getattr(self, name)
            if self.response_columns:
                out["response_columns"] = list(self.response_columns)
        elif self.taxonomy:
            out["taxonomy"] = self.taxonomy
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ImportOptions":
        return cls(fmt=data.get("format", "jsonl"), label=data.get("label", ""),
                   prompt_column=data.get("prompt_column", "prompt"), label_column=data.get("label_column", ""),
                   response_columns=list(data.get("response_columns", [])),
                   category_column=data.get("category_column", ""), code_column=data.get("code_column", ""),
                   taxonomy=data.get("taxonomy", ""))


def import_options_parse(*, fmt: Any, values: Mapping[str, Any], response_columns: list[str]) -> ImportOptions:
    """Options checked before a line is read (a job would only fail on them later); each error names its parameter."""
    errors: list[dict[str, str]] = []
    if fmt not in FORMATS:
        errors.append({"field": "format", "message": f"must be one of {', '.join(FORMATS)}"})
    label = str(values.get("label") or "").strip().lower()
    if label not in LABELS:
        errors.append({"field": "label", "message": "must be safe, unsafe or unknown (the label of every row without one)"})
    text: dict[str, str] = {}
    for name in ("prompt_column", "label_column", "category_column", "code_column", "taxonomy"):
        value = values.get(name) or ""
        if not isinstance(value, str) or len(value) > 200:
            errors.append({"field": name, "message": "must be text of at most 200 characters"})
            value = ""
        text[name] = value.strip()
    columns = [c.strip() for c in response_columns if c and c.strip()]
    if len(columns) > 50 or any(len(c) > 200 for c in columns):
        errors.append({"field": "response_column", "message": "at most 50 columns of at most 200 characters each"})
    if len(set(columns)) != len(columns):
        errors.append({"field": "response_column", "message": "a column is named twice"})
    if text["code_column"] and not text["taxonomy"]:
        errors.append({"field": "taxonomy", "message": "name the public taxonomy of code_column's codes "
                       "(e.g. ailuminate, harmbench, do_not_answer), so they map through the spec's crosswalk"})
    if fmt == "jsonl":
        for name in ("prompt_column", "label_column", "category_column", "code_column"):
            if text[name] and not (name == "prompt_column" and text[name] == "prompt"):
                errors.append({"field": name, "message": "column mappings are for CSV files (format=csv)"})
        if columns:
            errors.append({"field": "response_column", "message": "column mappings are for CSV files (format=csv)"})
    if errors:
        raise ValidationFailed(errors)
    return ImportOptions(fmt=fmt, label=LABELS[label], prompt_column=text["prompt_column"] or "prompt",
                         label_column=text["label_column"], response_columns=columns,
                         category_column=text["category_column"], code_column=text["code_column"],
                         taxonomy=text["taxonomy"])


@dataclass
class ParsedPrompt:
    line: int
    text: str
    label: str = ""
    categories: list[str] = field(default_factory=list)
    codes: dict[str, list[str]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)  # "taxonomy:code" of codes that mapped to nothing
    response: str | None = None
    response_harmful: bool | None = None
    response_refusal: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class SpecTerms:
    """The spec version's category keys and crosswalk, as the parser checks and maps against them."""

    def __init__(self, categories: list[dict], crosswalk: dict[str, dict[str, list[str]]]):
        self.keys = [c["key"] for c in categories]
        self._known = set(self.keys)
        self.crosswalk = crosswalk

    def check_keys(self, keys: list[str], line: int, what: str) -> list[str]:
        for key in keys:
            if key not in self._known:
                shown = ", ".join(self.keys[:12]) + (", ..." if len(self.keys) > 12 else "")
                raise _fail(line, f"{what}: {key!r} is not a category of the spec version (its keys: {shown})")
        return list(dict.fromkeys(keys))

    def mapped(self, codes: dict[str, list[str]]) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        unmapped: list[str] = []
        for taxonomy, values in codes.items():
            found, missing = map_codes(self.crosswalk, taxonomy, values)
            keys.extend(k for k in found if k not in keys)
            unmapped.extend(f"{taxonomy}:{code}" for code in missing)
        return keys, unmapped


def _label(value: Any, line: int, what: str = "label") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or value.strip().lower() not in LABELS:
        raise _fail(line, f"{what} must be safe, unsafe or unknown, got {value!r}")
    return LABELS[value.strip().lower()]


def _jsonl_prompt(obj: Any, line: int, options: ImportOptions, terms: SpecTerms) -> ParsedPrompt:
    if not isinstance(obj, dict):
        raise _fail(line, "each line must be a JSON object")
    unknown = sorted(set(obj) - set(JSONL_KEYS))
    if unknown:
        raise _fail(line, f"unknown key {unknown[0]!r}; allowed: {', '.join(JSONL_KEYS)}")
    text = _text(obj.get("prompt"), line, "prompt", MAX_PROMPT_CHARS)
    label = _label(obj["label"], line) if "label" in obj else options.label
    if "category" in obj and "categories" in obj:
        raise _fail(line, "give either category or categories, not both")
    keys: list[str] = []
    if obj.get("category") is not None:
        if not isinstance(obj["category"], str):
            raise _fail(line, "category must be a category key (a string)")
        keys = [obj["category"]]
    elif obj.get("categories") is not None:
        if not isinstance(obj["categories"], list) or not all(isinstance(k, str) for k in obj["categories"]):
            raise _fail(line, "categories must be a list of category keys")
        keys = obj["categories"]
    keys = terms.check_keys(keys, line, "category")
    codes: dict[str, list[str]] = {}
    raw_codes = obj.get("codes")
    if raw_codes is not None:
        if not isinstance(raw_codes, dict):
            raise _fail(line, 'codes must be {"<taxonomy>": "code" or ["code", ...]}')
        for taxonomy, value in raw_codes.items():
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _fail(line, f"codes.{taxonomy} must be a code or a list of codes")
            codes[taxonomy] = [v.strip() for v in values if v.strip()]
    mapped, unmapped = terms.mapped(codes)
    response = obj.get("response")
    if response is not None:
        response = _text(response, line, "response", MAX_RESPONSE_CHARS)
    harmful = obj.get("response_harmful")
    if harmful is not None and not isinstance(harmful, bool):
        raise _fail(line, "response_harmful must be true, false or null")
    refusal = obj.get("response_refusal") or ""
    if refusal not in ("", *REFUSALS):
        raise _fail(line, f"response_refusal must be one of {', '.join(REFUSALS)} (or null)")
    if response is None and (harmful is not None or refusal):
        raise _fail(line, "response_harmful and response_refusal label a response: give the response too")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise _fail(line, "meta must be an object")
    return ParsedPrompt(line=line, text=text, label=label, categories=[*keys, *(k for k in mapped if k not in keys)],
                        codes=codes, unmapped=unmapped, response=response, response_harmful=harmful,
                        response_refusal=refusal, meta=meta)


def _flag(value: str, line: int, column: str) -> bool | None:
    value = value.strip().lower()
    if value == "":
        return None
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise _fail(line, f"column {column!r} must be 0 or 1, got {value!r}")


def _action(value: str, line: int, column: str) -> str:
    value = value.strip()
    if value == "":
        return ""
    if not value.isdigit() or int(value) not in DNA_ACTION_REFUSAL:
        raise _fail(line, f"column {column!r} must be a Do-Not-Answer action code from 0 to 5, got {value!r}")
    return DNA_ACTION_REFUSAL[int(value)]


def _check_header(columns: list[str], options: ImportOptions) -> None:
    shown = ", ".join(columns[:30]) or "(none)"
    errors = []
    for name in ("prompt_column", "label_column", "category_column", "code_column"):
        column = getattr(options, name)
        if column and column not in columns:
            errors.append({"field": name, "message": f"no column {column!r} in the CSV header; its columns: {shown}"})
    for column in options.response_columns:
        if column not in columns:
            errors.append({"field": "response_column", "message": f"no column {column!r} in the CSV header; its columns: {shown}"})
    if errors:
        raise ValidationFailed(errors)


def _csv_prompts(source: IO[bytes], options: ImportOptions, terms: SpecTerms, *, field: str) -> Iterator[ParsedPrompt]:
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        columns = list(reader.fieldnames or [])
        _check_header(columns, options)
        used = {options.prompt_column, options.label_column, options.category_column, options.code_column,
                *options.response_columns}
        kept = [c for c in columns if c and c not in used and not _REPLY_LABEL.match(c)]
        for row in reader:
            line = reader.line_num
            if None in row:
                raise _fail(line, f"the row has more cells than the header has columns ({len(columns)})")
            prompt = _text(row.get(options.prompt_column) or "", line, f"column {options.prompt_column!r}", MAX_PROMPT_CHARS)
            label = (_label(row.get(options.label_column) or "", line, f"column {options.label_column!r}")
                     if options.label_column else "")
            label = label or options.label
            keys: list[str] = []
            if options.category_column:
                cell = row.get(options.category_column) or ""
                keys = terms.check_keys([k.strip() for k in _KEY_SPLIT.split(cell) if k.strip()], line,
                                        f"column {options.category_column!r}")
            codes: dict[str, list[str]] = {}
            if options.code_column and (row.get(options.code_column) or "").strip():
                codes = {options.taxonomy: [row[options.code_column].strip()]}
            mapped, unmapped = terms.mapped(codes)
            categories = [*keys, *(k for k in mapped if k not in keys)]
            meta = {c: row[c] for c in kept if row.get(c)}
            replies = []
            for column in options.response_columns:
                reply = row.get(column) or ""
                if not reply.strip():
                    continue
                reply = _text(reply, line, f"column {column!r}", MAX_RESPONSE_CHARS)
                match = _REPLY_LABEL.match(column)
                prefix = match.group("prefix") if match and column.endswith("_response") else None
                harmful, refusal = None, ""
                if prefix and f"{prefix}_harmful" in row:
                    harmful = _flag(row[f"{prefix}_harmful"] or "", line, f"{prefix}_harmful")
                if prefix and f"{prefix}_action" in row:
                    refusal = _action(row[f"{prefix}_action"] or "", line, f"{prefix}_action")
                replies.append((reply, harmful, refusal, prefix or column))
            if not replies:
                yield ParsedPrompt(line=line, text=prompt, label=label, categories=categories, codes=codes,
                                   unmapped=unmapped, meta=meta)
            for reply, harmful, refusal, model in replies:
                yield ParsedPrompt(line=line, text=prompt, label=label, categories=categories, codes=codes,
                                   unmapped=unmapped, response=reply, response_harmful=harmful,
                                   response_refusal=refusal, meta={**meta, "model": model})
    except UnicodeDecodeError:
        raise _not_utf8(field, _first_bad_byte(source)) from None
    except csv.Error as exc:
        raise _fail(reader.line_num, f"not valid CSV ({exc})") from None
    finally:
        text.detach()  # the caller owns the file


def iter_prompts(source: IO[bytes], options: ImportOptions, terms: SpecTerms, *, field: str = "body") -> Iterator[ParsedPrompt]:
    """Every prompt of the file in order, or the first bad line's error (raised when the reading reaches it)."""
    if options.fmt == "csv":
        prompts = _csv_prompts(source, options, terms, field=field)
    else:
        prompts = (_jsonl_prompt(obj, n, options, terms) for n, obj in json_lines(source, field=field))
    empty = True
    for prompt in prompts:
        empty = False
        yield prompt
    if empty:
        raise ValidationFailed.one(field, "the file has no prompts")
