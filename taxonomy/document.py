"""The safety-spec document: validation, canonical form, YAML/JSON and structured diff.

A spec version is one document (a plain dict). Every write goes through ``normalize_document``,
which checks it against the rules below, names each bad field by its path
(``categories[3].parent``) and returns the canonical form: fixed key order, defaults filled in.
Exporting the canonical form and importing it again gives the same document, byte for byte.

Key order is part of the canonical form because the database (PostgreSQL jsonb) does not keep it:
budgets follow the order of the categories, crosswalk taxonomies are sorted by name.
"""

import json
import re
from typing import Any

import yaml

from specloop.errors import ValidationFailed
from specloop.textcheck import MAX_DEPTH, bad_text_reason, check_tree, escaped

BEHAVIORS = ("comply", "comply_with_care", "partial", "redirect", "refuse", "escalate")
VERDICTS = ("allowed", "borderline", "disallowed")
SEVERITY_RANGE = range(0, 4)
DEFAULT_SEVERITY_SCALE = ["clearly safe", "benign but sensitive", "borderline", "strongly harmful"]
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")

TOP_KEYS = ("goals", "categories", "rubric", "principles", "budgets")
# A document given whole must say what the spec is for and what it covers; the rest has defaults.
# (An empty list is an answer; a missing section is usually a document sent in the wrong shape.)
TOP_REQUIRED = ("goals", "categories")
CATEGORY_KEYS = ("key", "name", "description", "parent", "severity", "behavior", "examples", "crosswalk")
CATEGORY_REQUIRED = ("key", "name", "severity", "behavior")
EXAMPLE_KEYS = ("text", "verdict")
RUBRIC_KEYS = ("axes", "severity_scale")
AXIS_KEYS = ("key", "name", "description", "scale")


def empty_document() -> dict[str, Any]:
    return {
        "goals": [],
        "categories": [],
        "rubric": {"axes": [], "severity_scale": list(DEFAULT_SEVERITY_SCALE)},
        "principles": [],
        "budgets": {},
    }


class _Checker:
    """Collects every problem in one pass so the user can fix them all at once."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def unknown_keys(self, value: dict, allowed: tuple[str, ...], field: str) -> None:
        for key in value:
            if key not in allowed:
                where = f"{field}.{escaped(str(key))}" if field else escaped(str(key))
                self.fail(where, f"unknown key {key!r}; allowed keys: {', '.join(allowed)}")

    def text(self, value: Any, field: str, *, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            self.fail(field, f"must be text, got {_type_name(value)}")
            return ""
        if reason := bad_text_reason(value):
            self.fail(field, reason)
            return ""
        if required and not value.strip():
            self.fail(field, "must not be empty")
        return value

    def text_list(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(field, f"must be a list of text, got {_type_name(value)}")
            return []
        return [self.text(item, f"{field}[{i}]") for i, item in enumerate(value)]

    def mapping(self, value: Any, field: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {_type_name(value)}")
            return {}
        return value

    def key(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(field, "is required (a short slug such as 'violent_crime')")
            return ""
        if not KEY_PATTERN.fullmatch(value):
            self.fail(field, f"{value!r} is not a valid key: use lowercase letters, digits, '_' or '-' (at most 64)")
        return value


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def normalize_document(raw: Any) -> dict[str, Any]:
    """Validate ``raw`` and return its canonical form, or raise ``ValidationFailed``."""
    check = _Checker()
    if not isinstance(raw, dict):
        raise ValidationFailed.one("document", f"must be a mapping with keys {', '.join(TOP_KEYS)}, got {_type_name(raw)}")
    check.unknown_keys(raw, TOP_KEYS, "")
    for key in TOP_REQUIRED:
        if key not in raw:
            check.fail(key, f"is required: the list of the spec's {key} (an empty list if none yet)")

    doc = {
        "goals": check.text_list(raw.get("goals"), "goals"),
        "categories": _categories(check, raw.get("categories")),
        "rubric": _rubric(check, raw.get("rubric")),
        "principles": check.text_list(raw.get("principles"), "principles"),
        "budgets": {},
    }
    category_keys = {c["key"] for c in doc["categories"]}
    for key, value in check.mapping(raw.get("budgets"), "budgets").items():
        field = f"budgets.{escaped(str(key))}"
        if key not in category_keys:
            check.fail(field, f"budget for {key!r}, which is not a category in this spec")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            check.fail(field, f"must be a number between 0 and 1, got {_type_name(value)}")
        elif not 0 <= value <= 1:
            check.fail(field, f"must be between 0 and 1 (a largest acceptable harmful rate), got {value}")
        else:
            doc["budgets"][key] = float(value)
    order = {c["key"]: i for i, c in enumerate(doc["categories"])}
    doc["budgets"] = dict(sorted(doc["budgets"].items(), key=lambda item: order[item[0]]))
    if check.errors:
        raise ValidationFailed(check.errors)
    return doc


def _categories(check: _Checker, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.fail("categories", f"must be a list of categories, got {_type_name(raw)}")
        return []
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        field = f"categories[{i}]"
        if not isinstance(item, dict):
            check.fail(field, f"must be a mapping, got {_type_name(item)}")
            continue
        check.unknown_keys(item, CATEGORY_KEYS, field)
        for required in CATEGORY_REQUIRED:
            if required not in item:
                check.fail(f"{field}.{required}", "is required")
        key = check.key(item.get("key"), f"{field}.key")
        if key in seen:
            check.fail(f"{field}.key", f"duplicate category key {key!r} (also categories[{seen[key]}])")
        elif key:
            seen[key] = i
        parent = item.get("parent")
        if parent is not None and not isinstance(parent, str):
            check.fail(f"{field}.parent", f"must be a category key or null, got {_type_name(parent)}")
            parent = None
        severity = item.get("severity", 0)
        if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITY_RANGE:
            check.fail(f"{field}.severity", f"must be an integer from 0 to 3, got {severity!r}")
            severity = 0
        behavior = item.get("behavior", "")
        if "behavior" in item and behavior not in BEHAVIORS:
            check.fail(f"{field}.behavior", f"unknown behaviour {behavior!r}; one of {', '.join(BEHAVIORS)}")
        out.append(
            {
                "key": key,
                "name": check.text(item.get("name"), f"{field}.name") if "name" in item else "",
                "description": check.text(item.get("description"), f"{field}.description", required=False),
                "parent": parent or None,
                "severity": severity,
                "behavior": behavior,
                "examples": _examples(check, item.get("examples"), f"{field}.examples"),
                "crosswalk": _crosswalk(check, item.get("crosswalk"), f"{field}.crosswalk"),
            }
        )
    for i, category in enumerate(out):
        parent = category["parent"]
        if parent is not None and parent not in seen:
            check.fail(f"categories[{i}].parent", f"parent {parent!r} does not exist in this spec")
    _check_cycles(check, out, seen)
    return out


def _check_cycles(check: _Checker, categories: list[dict[str, Any]], index: dict[str, int]) -> None:
    parent_of = {c["key"]: c["parent"] for c in categories if c["key"]}
    reported: set[str] = set()
    for start in parent_of:
        path = [start]
        node = parent_of[start]
        while node is not None and node in parent_of:
            if node in path:
                cycle = path[path.index(node):] + [node]
                if not reported & set(cycle):
                    reported.update(cycle)
                    check.fail(f"categories[{index[node]}].parent", "cycle in the category tree: " + " → ".join(cycle))
                break
            path.append(node)
            node = parent_of[node]


def _examples(check: _Checker, raw: Any, field: str) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.fail(field, f"must be a list of examples, got {_type_name(raw)}")
        return []
    out = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            check.fail(where, "must be a mapping with 'text' and 'verdict'")
            continue
        check.unknown_keys(item, EXAMPLE_KEYS, where)
        verdict = item.get("verdict")
        if verdict not in VERDICTS:
            check.fail(f"{where}.verdict", f"unknown verdict {verdict!r}; one of {', '.join(VERDICTS)}")
        out.append({"text": check.text(item.get("text"), f"{where}.text"), "verdict": verdict})
    return out


def _crosswalk(check: _Checker, raw: Any, field: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for taxonomy, codes in check.mapping(raw, field).items():
        where = f"{field}.{escaped(str(taxonomy))}"
        if isinstance(codes, str):
            codes = [codes]
        if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
            check.fail(where, "must be a list of codes (text)")
            continue
        if reason := next((r for t in (str(taxonomy), *codes) if (r := bad_text_reason(t))), None):
            check.fail(where, reason)
            continue
        out[str(taxonomy)] = list(codes)
    return dict(sorted(out.items()))


def _rubric(check: _Checker, raw: Any) -> dict[str, Any]:
    rubric = check.mapping(raw, "rubric")
    check.unknown_keys(rubric, RUBRIC_KEYS, "rubric")
    axes_raw = rubric.get("axes") or []
    axes = []
    if not isinstance(axes_raw, list):
        check.fail("rubric.axes", f"must be a list of axes, got {_type_name(axes_raw)}")
        axes_raw = []
    seen: set[str] = set()
    for i, item in enumerate(axes_raw):
        field = f"rubric.axes[{i}]"
        if not isinstance(item, dict):
            check.fail(field, "must be a mapping with key, name and scale")
            continue
        check.unknown_keys(item, AXIS_KEYS, field)
        key = check.key(item.get("key"), f"{field}.key")
        if key in seen:
            check.fail(f"{field}.key", f"duplicate axis key {key!r}")
        seen.add(key)
        scale = _scale(check, item.get("scale"), f"{field}.scale")
        axes.append(
            {
                "key": key,
                "name": check.text(item.get("name"), f"{field}.name"),
                "description": check.text(item.get("description"), f"{field}.description", required=False),
                "scale": scale,
            }
        )
    if "severity_scale" in rubric:
        severity_scale = _scale(check, rubric["severity_scale"], "rubric.severity_scale")
    else:
        severity_scale = list(DEFAULT_SEVERITY_SCALE)
    return {"axes": axes, "severity_scale": severity_scale}


def _scale(check: _Checker, raw: Any, field: str) -> list[str]:
    if not raw:
        check.fail(field, "scale is empty: give at least 2 labels, lowest first")
        return []
    if not isinstance(raw, list):
        check.fail(field, f"must be a list of labels, got {_type_name(raw)}")
        return []
    labels = check.text_list(raw, field)
    if len(labels) < 2:
        check.fail(field, "needs at least 2 labels, lowest first")
    return labels


# --- reading and writing -------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(doc: dict[str, Any]) -> str:
    """The canonical YAML text of a valid document (whatever order its keys came back from storage in)."""
    doc = normalize_document(doc)
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def dump_json(doc: dict[str, Any]) -> str:
    doc = normalize_document(doc)
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _checked(value: Any) -> Any:
    """A parsed file, or 400 when it nests too deep, is too big or holds text that cannot be stored."""
    errors = check_tree(value)
    if errors:
        raise ValidationFailed(errors)
    return value


def _too_deep() -> ValidationFailed:
    return ValidationFailed.one("document", f"nested deeper than {MAX_DEPTH} levels")


def parse_yaml(text: str | bytes) -> Any:
    try:
        loaded = yaml.safe_load(text)
    except RecursionError:
        raise _too_deep() from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed.one("document", f"bad YAML at {where}: {problem}") from None
    return _checked(loaded)


def parse_json(text: str | bytes) -> Any:
    try:
        loaded = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed.one("document", f"bad JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    return _checked(loaded)


# --- tree helpers --------------------------------------------------------------------------------


def category_tree(categories: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Categories in display order, parents before their children, each with its depth."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for category in categories:
        children.setdefault(category["parent"], []).append(category)
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for category in children.get(parent, []):
            out.append((depth, category))
            walk(category["key"], depth + 1)

    walk(None, 0)
    return out


# --- diff ----------------------------------------------------------------------------------------


def _list_diff(a: list, b: list) -> dict[str, list]:
    return {"added": [x for x in b if x not in a], "removed": [x for x in a if x not in b]}


def _keyed_diff(a: list[dict], b: list[dict], fields: tuple[str, ...], nested_examples: bool) -> dict[str, Any]:
    by_key_a = {item["key"]: item for item in a}
    by_key_b = {item["key"]: item for item in b}
    changed = []
    for key, new in by_key_b.items():
        old = by_key_a.get(key)
        if old is None:
            continue
        field_changes = {f: {"from": old[f], "to": new[f]} for f in fields if old[f] != new[f]}
        entry: dict[str, Any] = {"key": key, "name": new.get("name", key), "fields": field_changes}
        if nested_examples:
            examples = _list_diff(old["examples"], new["examples"])
            if examples["added"] or examples["removed"]:
                entry["examples"] = examples
        if field_changes or entry.get("examples"):
            changed.append(entry)
    common_a = [k for k in by_key_a if k in by_key_b]
    common_b = [k for k in by_key_b if k in by_key_a]
    return {
        "added": [item for key, item in by_key_b.items() if key not in by_key_a],
        "removed": [item for key, item in by_key_a.items() if key not in by_key_b],
        "changed": changed,
        "reordered": common_a != common_b,
    }


def diff_documents(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What changed from document ``a`` to document ``b``, section by section."""
    categories = _keyed_diff(
        a["categories"], b["categories"],
        ("name", "description", "parent", "severity", "behavior", "crosswalk"), nested_examples=True,
    )
    axes = _keyed_diff(a["rubric"]["axes"], b["rubric"]["axes"], ("name", "description", "scale"), nested_examples=False)
    severity_scale = None
    if a["rubric"]["severity_scale"] != b["rubric"]["severity_scale"]:
        severity_scale = {"from": a["rubric"]["severity_scale"], "to": b["rubric"]["severity_scale"]}
    budgets = {
        "added": {k: v for k, v in b["budgets"].items() if k not in a["budgets"]},
        "removed": {k: v for k, v in a["budgets"].items() if k not in b["budgets"]},
        "changed": {
            k: {"from": a["budgets"][k], "to": v}
            for k, v in b["budgets"].items()
            if k in a["budgets"] and a["budgets"][k] != v
        },
    }
    diff = {
        "goals": _list_diff(a["goals"], b["goals"]),
        "categories": categories,
        "rubric": {"axes": axes, "severity_scale": severity_scale},
        "principles": _list_diff(a["principles"], b["principles"]),
        "budgets": budgets,
    }
    diff["n_changes"] = (
        len(diff["goals"]["added"]) + len(diff["goals"]["removed"])
        + len(categories["added"]) + len(categories["removed"]) + len(categories["changed"])
        + int(categories["reordered"])
        + len(axes["added"]) + len(axes["removed"]) + len(axes["changed"]) + int(severity_scale is not None)
        + len(diff["principles"]["added"]) + len(diff["principles"]["removed"])
        + len(budgets["added"]) + len(budgets["removed"]) + len(budgets["changed"])
    )
    return diff
