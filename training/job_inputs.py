"""What the safety-classifier and evaluation runners hand the ml code: rows from prompt sets, export files and
the command's data files, and the spec version's categories, behaviours and budgets.

The safety classifier trains on three kinds of input together (each head only from the rows carrying its
label, in training/ml/safety):

- prompt sets: one row per prompt (label → prompt_harmful, categories, and the response with its harmful and
  refusal labels when the set carries one), through ``training.ml.safety.rows_from_prompts``;
- export snapshots: per reply, a row with the reply's harmful flag and categories when the export has them,
  and per pair a HarmPair ordered as the cost model orders it (severity, then harmful flags, else the rejected
  reply is the more harmful one: rewardmodels.ml.data.more_harmful_first);
- data files (``manage.py safety_classifier_train``): JSON lines, each ``{"row": {SafetyRow fields}}`` or
  ``{"pair": {HarmPair fields}}``, written once under MEDIA_ROOT/safety-data/ and named by the job's
  ``data_files`` with their sha256 and the spec version they were mapped to. A file rather than a prompt set
  because public rows carry what a prompt can not: a category label that is unknown (None) rather than none
  ([]), and several labelled replies per prompt.
"""

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings

DATA_FILE_DIR = "safety-data"  # under MEDIA_ROOT


def prompt_set_rows(prompt_set) -> list[dict[str, Any]]:
    """The set's prompts as the ml code reads them: {"prompt", "label", "categories", "response",
    "response_harmful", "response_refusal"}, in the set's order (the safety app's reader when it has one)."""
    try:
        from safety.selectors import prompt_set_rows as rows_of
    except ImportError:
        rows_of = None
    if rows_of is not None:
        return list(rows_of(prompt_set))
    from safety.models import Prompt

    return [{"prompt": p["text"], "label": p["label"], "categories": p["categories"], "response": p["response"],
             "response_harmful": p["response_harmful"], "response_refusal": p["response_refusal"]}
            for p in Prompt.objects.filter(prompt_set=prompt_set).order_by("index").values(
                "text", "label", "categories", "response", "response_harmful", "response_refusal")]


def spec_categories(version) -> list[dict[str, Any]]:
    """[{"key", "name", "behavior"}] of a spec version, in the document's order."""
    document = version.document if version is not None and isinstance(version.document, dict) else {}
    return [{"key": c["key"], "name": c.get("name") or c["key"], "behavior": c.get("behavior") or ""}
            for c in document.get("categories") or [] if isinstance(c, dict) and c.get("key")]


def evaluation_spec(version) -> dict[str, Any]:
    """What an evaluation judges against: the categories with their behaviour, and the budgets."""
    document = version.document if version is not None and isinstance(version.document, dict) else {}
    budgets = document.get("budgets") if isinstance(document.get("budgets"), dict) else {}
    return {"categories": spec_categories(version), "budgets": dict(budgets)}


def _known(categories: list[str] | None, keys: set[str], dropped: dict[str, int]) -> list[str] | None:
    if categories is None:
        return None
    out = []
    for key in categories:
        if key in keys:
            out.append(key)
        else:
            dropped[key] = dropped.get(key, 0) + 1
    return out


def export_rows(path: Path, *, source: str, keys: set[str], dropped: dict[str, int]) -> tuple[list, list]:
    """(SafetyRows, HarmPairs) of one export file: each reply with its labels, each pair for the harmful head."""
    from rewardmodels.ml.data import pair_from_row, more_harmful_first
    from training.ml.safety import HarmPair, SafetyRow

    rows, pairs = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            prompt = row.get("prompt") or ""
            harmful = row.get("harmful") or {}
            categories = row.get("categories") if isinstance(row.get("categories"), dict) else None
            for side in ("chosen", "rejected"):
                flag = harmful.get(side)
                tagged = _known(list(categories.get(side) or []), keys, dropped) if categories is not None else None
                if flag is None and tagged is None:
                    continue  # a reply with no label of its own trains nothing here
                rows.append(SafetyRow(prompt=prompt, response=row[side], response_harmful=None if flag is None else bool(flag),
                                      categories=tagged, source=source))
            pair = pair_from_row(row)
            if pair.first == pair.second:
                continue
            worse_first = more_harmful_first(pair)
            pairs.append(HarmPair(prompt=prompt, safer=pair.second if worse_first else pair.first,
                                  more_harmful=pair.first if worse_first else pair.second, source=source))
    return rows, pairs


def data_file_write(*, rows: list, pairs: list, spec_version, name: str) -> dict[str, Any]:
    """Write rows and pairs as one JSON-lines file under MEDIA_ROOT (named by its sha256): the job's data file entry."""
    lines = [json.dumps({"row": dataclasses.asdict(r)}, ensure_ascii=False, sort_keys=True) for r in rows]
    lines += [json.dumps({"pair": dataclasses.asdict(p)}, ensure_ascii=False, sort_keys=True) for p in pairs]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    relative = Path(DATA_FILE_DIR) / f"{digest[:16]}.jsonl"
    path = Path(settings.MEDIA_ROOT) / relative
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(body)
        partial.replace(path)  # atomic: a reader never sees half a file
    return {"name": name, "path": relative.as_posix(), "sha256": digest, "n_rows": len(rows), "n_pairs": len(pairs),
            "spec_version": spec_version.pk if spec_version is not None else None}


def data_file_rows(entry: dict[str, Any], *, keys: set[str], dropped: dict[str, int]) -> tuple[list, list]:
    """(SafetyRows, HarmPairs) of a job's data file; the file must still have the sha256 the job recorded."""
    from training.ml.safety import HarmPair, SafetyRow

    path = Path(settings.MEDIA_ROOT) / entry["path"]
    if not path.is_file():
        raise FileNotFoundError(f"the job's data file {entry.get('name')!r} is missing from storage ({entry['path']})")
    body = path.read_bytes()
    if hashlib.sha256(body).hexdigest() != entry.get("sha256"):
        raise ValueError(f"the job's data file {entry.get('name')!r} changed since the job was created (sha256 differs)")
    rows, pairs = [], []
    row_fields = {f.name for f in dataclasses.fields(SafetyRow)}
    pair_fields = {f.name for f in dataclasses.fields(HarmPair)}
    for number, line in enumerate(body.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if "row" in item:
            values = {k: v for k, v in item["row"].items() if k in row_fields}
            values["categories"] = _known(values.get("categories"), keys, dropped)
            rows.append(SafetyRow(**values))
        elif "pair" in item:
            pairs.append(HarmPair(**{k: v for k, v in item["pair"].items() if k in pair_fields}))
        else:
            raise ValueError(f"{entry['path']}:{number}: neither a row nor a pair")
    return rows, pairs


def prompt_set_safety_rows(prompt_set, *, keys: set[str], dropped: dict[str, int]) -> list:
    """A prompt set's rows as SafetyRows (categories outside the spec version dropped and counted)."""
    from training.ml.safety import rows_from_prompts

    rows = rows_from_prompts(prompt_set_rows(prompt_set))
    for row in rows:
        row.categories = _known(row.categories, keys, dropped)
        row.source = row.source or f"prompt set {prompt_set.pk}"
    return rows
