"""Spec lifecycle: drafts, publishing, immutability, new drafts, the diff and the change log."""

import pytest

from specloop.errors import Conflict, ValidationFailed
from taxonomy import selectors, services
from taxonomy.models import SpecChange, SpecVersion


@pytest.fixture
def draft(actors, document):
    return services.spec_create(user=actors.policy, name="Harm policy", document=document)


def test_a_new_spec_starts_as_draft_v1_edited_by_its_creator(actors, draft):
    assert (draft.number, draft.status) == (1, "draft")
    assert list(draft.spec.editors.all()) == [actors.policy]
    change = SpecChange.objects.get(version=draft)
    assert change.user == actors.policy and change.action == "spec.create"


def test_publishing_freezes_the_version_and_edits_are_refused(actors, draft):
    published = services.spec_publish(spec=draft.spec, user=actors.policy)
    assert published.status == "published" and published.published_by == actors.policy
    before = SpecVersion.objects.get(pk=draft.pk).document
    with pytest.raises(Conflict, match="published and cannot be changed"):
        services.category_add(version=published, user=actors.policy,
                              category={"key": "new", "name": "New", "severity": 1, "behavior": "refuse"})
    with pytest.raises(Conflict):
        services.spec_version_replace_document(version=published, user=actors.policy, document=before)
    with pytest.raises(Conflict):
        services.example_add(version=published, user=actors.policy, key="violence", text="x", verdict="allowed")
    assert SpecVersion.objects.get(pk=draft.pk).document == before


def test_publishing_twice_is_refused_with_a_clear_error(actors, draft):
    services.spec_publish(spec=draft.spec, user=actors.policy)
    with pytest.raises(Conflict, match="no draft to publish"):
        services.spec_publish(spec=draft.spec, user=actors.policy)


def test_an_empty_spec_cannot_be_published(actors):
    version = services.spec_create(user=actors.policy, name="Empty", document=None)
    with pytest.raises(ValidationFailed, match="at least one category"):
        services.spec_publish(spec=version.spec, user=actors.policy)


def test_a_new_draft_copies_the_latest_version(actors, draft):
    services.spec_publish(spec=draft.spec, user=actors.policy)
    v2 = services.spec_draft_create(spec=draft.spec, user=actors.policy)
    assert (v2.number, v2.status, v2.based_on_id) == (2, "draft", draft.pk)
    assert v2.document == SpecVersion.objects.get(pk=draft.pk).document
    with pytest.raises(Conflict, match="already a draft"):
        services.spec_draft_create(spec=draft.spec, user=actors.policy)


def test_category_edits_keep_children_and_budgets_in_step(actors, draft):
    version = services.category_update(
        version=draft, user=actors.policy, key="violence",
        changes={"key": "violent_harm", "name": "Violent harm"}, budget=0.02,
    )
    cats = {c["key"]: c for c in version.document["categories"]}
    assert cats["weapons"]["parent"] == "violent_harm"
    assert version.document["budgets"] == {"violent_harm": 0.02}
    version = services.category_update(version=version, user=actors.policy, key="violent_harm", changes={}, budget=None)
    assert version.document["budgets"] == {}


def test_deleting_a_category_with_children_is_refused(actors, draft):
    with pytest.raises(ValidationFailed, match="sub-categories"):
        services.category_delete(version=draft, user=actors.policy, key="violence")
    version = services.category_delete(version=draft, user=actors.policy, key="weapons")
    assert [c["key"] for c in version.document["categories"]] == ["violence"]


def test_moving_a_category_swaps_it_with_its_sibling(actors, draft):
    version = services.category_add(version=draft, user=actors.policy,
                                     category={"key": "fraud", "name": "Fraud", "severity": 2, "behavior": "refuse"})
    version = services.category_move(version=version, user=actors.policy, key="fraud", direction="up")
    assert [c["key"] for c in version.document["categories"] if c["parent"] is None] == ["fraud", "violence"]
    # The first sibling cannot go further up: nothing changes and nothing is recorded.
    changes = SpecChange.objects.count()
    version = services.category_move(version=version, user=actors.policy, key="fraud", direction="up")
    assert SpecChange.objects.count() == changes


def test_moving_a_category_under_its_own_child_is_refused(actors, draft):
    with pytest.raises(ValidationFailed, match="cycle"):
        services.category_update(version=draft, user=actors.policy, key="violence", changes={"parent": "weapons"})


def test_examples_are_added_edited_moved_and_deleted(actors, draft):
    v = services.example_add(version=draft, user=actors.policy, key="violence", text="History of duels", verdict="allowed")
    assert v.document["categories"][0]["examples"][-1] == {"text": "History of duels", "verdict": "allowed"}
    v = services.example_move(version=v, user=actors.policy, key="violence", index=1, direction="up")
    assert v.document["categories"][0]["examples"][0]["text"] == "History of duels"
    v = services.example_update(version=v, user=actors.policy, key="violence", index=0, text="Duels", verdict="borderline")
    assert v.document["categories"][0]["examples"][0] == {"text": "Duels", "verdict": "borderline"}
    v = services.example_delete(version=v, user=actors.policy, key="violence", index=0)
    assert len(v.document["categories"][0]["examples"]) == 1
    with pytest.raises(ValidationFailed):
        services.example_add(version=v, user=actors.policy, key="violence", text="x", verdict="sometimes")


def test_every_change_records_who_and_what(actors, draft):
    services.example_add(version=draft, user=actors.policy, key="violence", text="Duels", verdict="allowed")
    change = SpecChange.objects.filter(version=draft).first()  # newest first
    assert change.user == actors.policy
    assert change.action == "example.add"
    assert change.detail["diff"]["categories"]["changed"][0]["examples"]["added"] == [{"text": "Duels", "verdict": "allowed"}]


def test_the_diff_lists_added_removed_and_changed_parts(actors, draft):
    spec = draft.spec
    services.spec_publish(spec=spec, user=actors.policy)
    v2 = services.spec_draft_create(spec=spec, user=actors.policy)
    v2 = services.category_add(version=v2, user=actors.policy, budget=0.05,
                               category={"key": "fraud", "name": "Fraud", "severity": 2, "behavior": "refuse"})
    v2 = services.category_update(version=v2, user=actors.policy, key="weapons", changes={"severity": 3}, budget=0.001)
    v2 = services.category_update(version=v2, user=actors.policy, key="violence", changes={}, budget=0.02)
    v2 = services.spec_version_set_list(version=v2, user=actors.policy, section="goals", items=["Be safe"])
    diff = selectors.spec_version_diff(spec=spec, from_number=1, to_number=2)
    assert [c["key"] for c in diff["categories"]["added"]] == ["fraud"]
    assert diff["categories"]["changed"] == [
        {"key": "weapons", "name": "Weapons", "fields": {"severity": {"from": 2, "to": 3}}}
    ]
    assert diff["budgets"] == {
        "added": {"fraud": 0.05, "weapons": 0.001}, "removed": {}, "changed": {"violence": {"from": 0.01, "to": 0.02}}
    }
    assert diff["goals"] == {"added": ["Be safe"], "removed": ["Do not cause physical harm"]}
    assert diff["n_changes"] == 1 + 1 + 3 + 2
    reverse = selectors.spec_version_diff(spec=spec, from_number=2, to_number=1)
    assert [c["key"] for c in reverse["categories"]["removed"]] == ["fraud"]


def test_sharing_needs_the_policy_role(actors, draft):
    with pytest.raises(ValidationFailed, match="does not have the policy role"):
        services.spec_editors_add(spec=draft.spec, user=actors.policy, usernames=["rita_rater"])
    assert services.spec_editors_add(spec=draft.spec, user=actors.policy, usernames=["pete_policy"]) == [
        "paula_policy", "pete_policy"
    ]
