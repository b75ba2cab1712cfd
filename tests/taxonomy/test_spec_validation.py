"""Every document rule names the bad field, and a refused document saves nothing."""

import copy

import pytest

from specloop.errors import ValidationFailed
from taxonomy import services
from taxonomy.document import dump_json, dump_yaml, normalize_document, parse_json, parse_yaml
from taxonomy.models import Spec, SpecChange, SpecVersion
from tests.conftest import small_document


def errors_of(doc) -> list[dict]:
    with pytest.raises(ValidationFailed) as info:
        normalize_document(doc)
    return info.value.errors


def fields_of(doc) -> set[str]:
    return {e["field"] for e in errors_of(doc)}


def broken(mutate) -> dict:
    doc = small_document()
    mutate(doc)
    return doc


CASES = [
    ("unknown top-level key", lambda d: d.update(colour="blue"), "colour", "unknown key"),
    ("unknown category key", lambda d: d["categories"][0].update(colour="red"), "categories[0].colour", "unknown key"),
    ("unknown example key", lambda d: d["categories"][0]["examples"][0].update(x=1), "categories[0].examples[0].x", "unknown key"),
    ("duplicate category key", lambda d: d["categories"][1].update(key="violence", parent=None), "categories[1].key", "duplicate"),
    ("missing parent", lambda d: d["categories"][1].update(parent="ghost"), "categories[1].parent", "does not exist"),
    ("cycle", lambda d: d["categories"][0].update(parent="weapons"), "categories[0].parent", "cycle"),
    ("self parent", lambda d: d["categories"][1].update(parent="weapons"), "categories[1].parent", "cycle"),
    ("unknown behaviour", lambda d: d["categories"][0].update(behavior="lecture"), "categories[0].behavior", "unknown behaviour"),
    ("empty axis scale", lambda d: d["rubric"]["axes"][0].update(scale=[]), "rubric.axes[0].scale", "empty"),
    ("empty severity scale", lambda d: d["rubric"].update(severity_scale=[]), "rubric.severity_scale", "empty"),
    ("budget for unknown category", lambda d: d["budgets"].update(ghost=0.1), "budgets.ghost", "not a category"),
    ("budget out of range", lambda d: d["budgets"].update(violence=1.5), "budgets.violence", "between 0 and 1"),
    ("bad verdict", lambda d: d["categories"][0]["examples"][0].update(verdict="maybe"), "categories[0].examples[0].verdict", "unknown verdict"),
    ("severity out of range", lambda d: d["categories"][0].update(severity=7), "categories[0].severity", "0 to 3"),
    ("bad key", lambda d: d["categories"][0].update(key="Violent Crime"), "categories[0].key", "not a valid key"),
    ("missing name", lambda d: d["categories"][0].pop("name"), "categories[0].name", "required"),
]


@pytest.mark.parametrize("label, mutate, field, words", CASES, ids=[c[0] for c in CASES])
def test_it_names_the_bad_field(label, mutate, field, words):
    errors = errors_of(broken(mutate))
    matching = [e for e in errors if e["field"] == field]
    assert matching, f"expected an error on {field}, got {errors}"
    assert words in matching[0]["message"]


def test_it_reports_every_problem_at_once():
    doc = broken(lambda d: (d.update(colour=1), d["budgets"].update(ghost=0.2), d["categories"][0].update(behavior="x")))
    assert fields_of(doc) == {"colour", "budgets.ghost", "categories[0].behavior"}


def test_it_rejects_a_longer_cycle_in_the_category_tree():
    doc = small_document()
    doc["categories"].append({"key": "knives", "name": "Knives", "parent": "weapons", "severity": 1, "behavior": "partial"})
    doc["categories"][0]["parent"] = "knives"
    messages = [e["message"] for e in errors_of(doc) if "cycle" in e["message"]]
    assert len(messages) == 1 and "violence" in messages[0] and "knives" in messages[0] and "weapons" in messages[0]


def test_bad_yaml_names_the_line():
    with pytest.raises(ValidationFailed) as info:
        parse_yaml("goals:\n  - a\n categories: [\n")
    assert "line" in info.value.message and info.value.errors[0]["field"] == "document"


def test_a_valid_document_is_filled_in_with_defaults():
    doc = normalize_document({"goals": [], "categories": [{"key": "a", "name": "A", "severity": 1, "behavior": "refuse"}]})
    assert doc["categories"][0] == {
        "key": "a", "name": "A", "description": "", "parent": None, "severity": 1, "behavior": "refuse",
        "examples": [], "crosswalk": {},
    }
    assert doc["rubric"]["severity_scale"] == ["clearly safe", "benign but sensitive", "borderline", "strongly harmful"]
    assert list(doc) == ["goals", "categories", "rubric", "principles", "budgets"]


def test_the_example_spec_round_trips_exactly_through_yaml_and_json(example_yaml):
    doc = normalize_document(parse_yaml(example_yaml))
    assert dump_yaml(doc) == example_yaml
    assert normalize_document(parse_yaml(dump_yaml(doc))) == doc
    as_json = dump_json(doc)
    assert normalize_document(parse_json(as_json)) == doc
    assert dump_json(normalize_document(parse_json(as_json))) == as_json


def test_the_example_spec_is_complete(example_yaml):
    doc = normalize_document(parse_yaml(example_yaml))
    assert len(doc["categories"]) >= 12
    assert [a["key"] for a in doc["rubric"]["axes"]] == ["helpful", "harmless", "honest"]
    assert all(len(a["scale"]) == 5 for a in doc["rubric"]["axes"])
    assert doc["principles"] and doc["budgets"] and doc["goals"]
    for category in doc["categories"]:
        verdicts = {e["verdict"] for e in category["examples"]}
        assert verdicts == {"allowed", "borderline", "disallowed"}, category["key"]
        assert category["crosswalk"], category["key"]
    taxonomies = {t for c in doc["categories"] for t in c["crosswalk"]}
    assert {"ailuminate", "llama_guard", "beavertails", "do_not_answer"} <= taxonomies


@pytest.mark.parametrize("label, mutate, field, words", CASES, ids=[c[0] for c in CASES])
def test_a_refused_document_saves_nothing(actors, label, mutate, field, words):
    before = (Spec.objects.count(), SpecVersion.objects.count(), SpecChange.objects.count())
    with pytest.raises(ValidationFailed):
        services.spec_create(user=actors.policy, name="Bad", document=broken(mutate))
    assert (Spec.objects.count(), SpecVersion.objects.count(), SpecChange.objects.count()) == before


@pytest.mark.parametrize("label, mutate, field, words", CASES, ids=[c[0] for c in CASES])
def test_a_refused_edit_leaves_the_draft_as_it_was(actors, document, label, mutate, field, words):
    version = services.spec_create(user=actors.policy, name="Good", document=document)
    saved = copy.deepcopy(version.document)
    changes = SpecChange.objects.count()
    with pytest.raises(ValidationFailed):
        services.spec_version_replace_document(version=version, user=actors.policy, document=broken(mutate))
    version.refresh_from_db()
    assert version.document == saved
    assert SpecChange.objects.count() == changes
