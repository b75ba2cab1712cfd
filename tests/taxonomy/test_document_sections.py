"""A document given whole must have its required sections: ``{}`` is refused naming each missing one."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from specloop.errors import ValidationFailed
from taxonomy import services
from taxonomy.document import TOP_REQUIRED, normalize_document
from taxonomy.models import Spec, SpecVersion


def missing_fields(response) -> set[str]:
    assert response.status_code == 400, response.content
    return {e["field"] for e in response.json()["detail"]["errors"]}


def test_an_empty_document_names_every_missing_section():
    with pytest.raises(ValidationFailed) as info:
        normalize_document({})
    assert {e["field"] for e in info.value.errors} == set(TOP_REQUIRED) == {"goals", "categories"}
    assert all("is required" in e["message"] for e in info.value.errors)


def test_a_document_missing_one_section_names_that_section(document):
    del document["categories"], document["budgets"]
    with pytest.raises(ValidationFailed) as info:
        normalize_document(document)
    assert [e["field"] for e in info.value.errors] == ["categories"]


def test_a_document_with_empty_sections_is_a_blank_draft():
    doc = normalize_document({"goals": [], "categories": []})
    assert doc["categories"] == [] and doc["budgets"] == {} and doc["rubric"]["severity_scale"]


@pytest.mark.parametrize("body", [{"name": "Empty", "document": {}}, {"name": "Empty", "document": {"principles": ["x"]}}])
def test_creating_a_spec_from_an_empty_document_is_refused(actors, body):
    response = actors.api("policy").post("/api/v1/specs/", body, format="json")
    assert missing_fields(response) == {"goals", "categories"}
    assert Spec.objects.count() == 0


def test_an_empty_yaml_mapping_is_refused(actors):
    response = actors.api("policy").post("/api/v1/specs/?name=Empty", data="{}\n", content_type="application/yaml")
    assert missing_fields(response) == {"goals", "categories"}
    assert Spec.objects.count() == 0


def test_replacing_a_draft_with_an_empty_document_is_refused_and_keeps_the_draft(actors, document):
    version = services.spec_create(user=actors.policy, name="Harm policy", document=document)
    before = SpecVersion.objects.get(pk=version.pk).document
    response = actors.api("policy").put(f"/api/v1/specs/{version.spec_id}/versions/1/", {"document": {}}, format="json")
    assert missing_fields(response) == {"goals", "categories"}
    assert SpecVersion.objects.get(pk=version.pk).document == before


def test_a_new_draft_from_an_empty_document_is_refused(actors, document):
    version = services.spec_create(user=actors.policy, name="Harm policy", document=document)
    services.spec_publish(spec=version.spec, user=actors.policy)
    response = actors.api("policy").post(f"/api/v1/specs/{version.spec_id}/versions/", {"document": {}}, format="json")
    assert missing_fields(response) == {"goals", "categories"}
    assert SpecVersion.objects.filter(spec=version.spec).count() == 1


def test_uploading_an_empty_document_is_refused(client, actors, document):
    version = services.spec_create(user=actors.policy, name="Harm policy", document=document)
    client.force_login(actors.policy)
    response = client.post(f"/specs/{version.spec_id}/upload/", {"file": SimpleUploadedFile("spec.json", b"{}")})
    assert response.status_code == 400
    assert "goals" in response.content.decode() and "categories" in response.content.decode()


def test_a_spec_started_blank_on_the_page_still_works(actors):
    version = services.spec_create(user=actors.policy, name="Blank", document=None)
    assert version.document["categories"] == []
