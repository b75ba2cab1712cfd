"""The spec REST API: every endpoint, the role matrix and the error shape."""

import json

import pytest
import yaml

from taxonomy import services
from taxonomy.document import dump_yaml, normalize_document, parse_yaml
from taxonomy.models import Spec, SpecVersion


@pytest.fixture
def spec(actors, document):
    return services.spec_create(user=actors.policy, name="Harm policy", document=document).spec


def test_policy_creates_a_spec_from_json(actors, document):
    response = actors.api("policy").post("/api/v1/specs/", {"name": "From JSON", "document": document}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "draft" and body["version"] == 1
    assert Spec.objects.get(pk=body["id"]).name == "From JSON"


def test_policy_creates_a_spec_from_yaml(actors, example_yaml):
    response = actors.api("policy").post(
        "/api/v1/specs/?name=Example", data=example_yaml, content_type="application/yaml"
    )
    assert response.status_code == 201, response.content
    version = SpecVersion.objects.get(spec_id=response.json()["id"])
    assert version.document == normalize_document(parse_yaml(example_yaml))
    assert version.spec.name == "Example"


def test_the_example_spec_round_trips_through_the_api(actors, example_yaml):
    client = actors.api("policy")
    spec_id = client.post("/api/v1/specs/?name=Example", data=example_yaml, content_type="application/yaml").json()["id"]
    exported = client.get(f"/api/v1/specs/{spec_id}/versions/1/export?format=yaml")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("application/yaml")
    assert exported.content.decode() == example_yaml
    as_json = client.get(f"/api/v1/specs/{spec_id}/versions/1/export/?format=json")
    assert as_json.json() == yaml.safe_load(example_yaml)
    # JSON in, JSON out: the same document.
    again = client.post("/api/v1/specs/", {"name": "Again", "document": as_json.json()}, format="json").json()["id"]
    assert client.get(f"/api/v1/specs/{again}/versions/1/export?format=json").json() == as_json.json()


def test_a_bad_document_answers_400_naming_the_field_and_saves_nothing(actors, document):
    document["categories"][1]["parent"] = "ghost"
    document["budgets"]["nope"] = 0.1
    response = actors.api("policy").post("/api/v1/specs/", {"name": "Bad", "document": document}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert {e["field"] for e in body["detail"]["errors"]} == {"categories[1].parent", "budgets.nope"}
    assert "categories[1].parent" in body["error"]
    assert Spec.objects.count() == 0


def test_bad_yaml_answers_400_with_the_line(actors):
    response = actors.api("policy").post("/api/v1/specs/?name=X", data="goals: [a\ncategories:", content_type="application/yaml")
    assert response.status_code == 400
    assert "line" in response.json()["error"]
    assert Spec.objects.count() == 0


def test_a_missing_name_or_document_is_named(actors, document):
    client = actors.api("policy")
    assert client.post("/api/v1/specs/", {"document": document}, format="json").json()["detail"]["errors"][0]["field"] == "name"
    assert client.post("/api/v1/specs/", {"name": "x"}, format="json").json()["detail"]["errors"][0]["field"] == "document"


def test_spec_detail_lists_versions(actors, spec):
    services.spec_publish(spec=spec, user=actors.policy)
    services.spec_draft_create(spec=spec, user=actors.policy)
    body = actors.api("policy").get(f"/api/v1/specs/{spec.id}/").json()
    assert body["name"] == "Harm policy"
    assert [(v["version"], v["status"]) for v in body["versions"]] == [(1, "published"), (2, "draft")]
    assert body["versions"][0]["published_by"] == "paula_policy"


def test_publish_then_edit_is_refused_with_409(actors, spec, document):
    client = actors.api("policy")
    response = client.post(f"/api/v1/specs/{spec.id}/publish/")
    assert response.status_code == 200
    assert response.json() == {"version": 1, "status": "published"}
    put = client.put(f"/api/v1/specs/{spec.id}/versions/1/", {"document": document}, format="json")
    assert put.status_code == 409
    assert "published and cannot be changed" in put.json()["error"]
    assert client.post(f"/api/v1/specs/{spec.id}/publish/").status_code == 409


def test_a_draft_document_is_replaced_by_put(actors, spec, document):
    document["goals"] = ["Changed"]
    response = actors.api("policy").put(
        f"/api/v1/specs/{spec.id}/versions/1/", data=dump_yaml(normalize_document(document)), content_type="application/yaml"
    )
    assert response.status_code == 200, response.content
    assert response.json()["document"]["goals"] == ["Changed"]


def test_new_draft_then_diff_and_changes(actors, spec, document):
    client = actors.api("policy")
    client.post(f"/api/v1/specs/{spec.id}/publish/")
    document["categories"].append({"key": "fraud", "name": "Fraud", "severity": 2, "behavior": "refuse"})
    created = client.post(f"/api/v1/specs/{spec.id}/versions/", {"document": document}, format="json")
    assert created.status_code == 201 and created.json()["version"] == 2
    assert client.post(f"/api/v1/specs/{spec.id}/versions/").status_code == 409  # a draft exists
    diff = client.get(f"/api/v1/specs/{spec.id}/diff/?from=1&to=2").json()
    assert [c["key"] for c in diff["categories"]["added"]] == ["fraud"]
    assert diff["from"] == 1 and diff["to"] == 2
    default = client.get(f"/api/v1/specs/{spec.id}/diff/").json()
    assert (default["from"], default["to"]) == (1, 2)
    assert client.get(f"/api/v1/specs/{spec.id}/diff/?from=x").status_code == 400
    assert client.get(f"/api/v1/specs/{spec.id}/diff/?from=1&to=9").status_code == 404
    changes = client.get(f"/api/v1/specs/{spec.id}/changes/").json()
    assert [c["action"] for c in changes["results"]] == ["version.create", "version.publish", "spec.create"]
    assert changes["results"][0]["user"] == "paula_policy"


def test_export_rejects_an_unknown_format(actors, spec):
    response = actors.api("policy").get(f"/api/v1/specs/{spec.id}/versions/1/export?format=xml")
    assert response.status_code == 400 and response.json()["detail"]["errors"][0]["field"] == "format"


def test_sharing_gives_another_policy_user_access(actors, spec):
    assert actors.api("policy2").get(f"/api/v1/specs/{spec.id}/").status_code == 404
    response = actors.api("policy").post(f"/api/v1/specs/{spec.id}/editors/", {"usernames": ["pete_policy"]}, format="json")
    assert response.json() == {"editors": ["paula_policy", "pete_policy"]}
    assert actors.api("policy2").get(f"/api/v1/specs/{spec.id}/").status_code == 200


def test_the_list_shows_only_the_specs_a_user_may_see(actors, spec, document):
    services.spec_create(user=actors.policy2, name="Other team", document=document)
    assert [s["name"] for s in actors.api("policy").get("/api/v1/specs/").json()] == ["Harm policy"]
    assert [s["name"] for s in actors.api("admin").get("/api/v1/specs/").json()] == ["Harm policy", "Other team"]


READS = [
    ("get", "/api/v1/specs/{id}/"),
    ("get", "/api/v1/specs/{id}/versions/1/"),
    ("get", "/api/v1/specs/{id}/versions/1/export?format=yaml"),
    ("get", "/api/v1/specs/{id}/diff/?from=1&to=1"),
    ("get", "/api/v1/specs/{id}/changes/"),
]
WRITES = [
    ("post", "/api/v1/specs/{id}/publish/"),
    ("post", "/api/v1/specs/{id}/versions/"),
    ("put", "/api/v1/specs/{id}/versions/1/"),
    ("post", "/api/v1/specs/{id}/editors/"),
]
# who -> expected status for (reads, writes) on a spec owned by `policy`
MATRIX = {
    None: (401, 401),
    "outsider": (403, 403),
    "rater": (403, 403),
    "policy2": (404, 404),
    "admin": (200, 403),
}


@pytest.mark.parametrize("who", list(MATRIX), ids=[str(w) for w in MATRIX])
def test_the_role_matrix_on_every_spec_endpoint(actors, spec, document, who):
    client = actors.api(who)
    read_status, write_status = MATRIX[who]
    for method, path in READS:
        response = getattr(client, method)(path.format(id=spec.id))
        assert response.status_code == read_status, (who, path, response.content)
        if response.status_code >= 400:
            assert "error" in response.json()
    body = {"document": document, "usernames": ["pete_policy"]}
    for method, path in WRITES:
        response = getattr(client, method)(path.format(id=spec.id), body, format="json")
        assert response.status_code == write_status, (who, method, path, response.content)
    assert SpecVersion.objects.get(spec=spec).status == "draft"


@pytest.mark.parametrize("who, status", [(None, 401), ("rater", 403), ("admin", 403), ("policy", 201)])
def test_only_policy_creates_specs(actors, document, who, status):
    response = actors.api(who).post("/api/v1/specs/", {"name": "X", "document": document}, format="json")
    assert response.status_code == status


def test_unknown_spec_ids_are_404(actors):
    assert actors.api("policy").get("/api/v1/specs/999999/").status_code == 404
    assert actors.api("admin").get("/api/v1/specs/999999/versions/1/").status_code == 404


def test_session_auth_works_for_the_browser(client, actors, spec):
    client.force_login(actors.policy)
    assert client.get(f"/api/v1/specs/{spec.id}/").status_code == 200


def test_api_schema_and_docs_are_served_locally_to_signed_in_users(client, actors):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(actors.rater)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/specs/", "/api/v1/specs/{spec_id}/publish/", "/api/v1/specs/{spec_id}/versions/{number}/export"):
        assert path in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "unpkg" not in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_json_error_bodies_have_the_same_shape(actors):
    response = actors.api(None).get("/api/v1/specs/")
    assert response.status_code == 401
    assert set(json.loads(response.content)) == {"error", "detail"}


def test_spec_detail_links_each_version_to_the_one_it_was_based_on_in_a_fixed_number_of_queries(
        actors, spec, django_assert_max_num_queries):
    for _ in range(4):
        services.spec_publish(spec=spec, user=actors.policy)
        services.spec_draft_create(spec=spec, user=actors.policy)
    client = actors.api("policy")
    # token + user + roles, the spec, its versions, its editors: not one more per version
    with django_assert_max_num_queries(5):
        body = client.get(f"/api/v1/specs/{spec.id}/").json()
    assert [v["based_on"] for v in body["versions"]] == [None, 1, 2, 3, 4]


def test_put_of_a_version_takes_exactly_the_documented_body(actors, spec, document):
    client = actors.api("policy")
    url = f"/api/v1/specs/{spec.id}/versions/1/"
    extra = client.put(url, {"document": document, "notes": "x"}, format="json")
    assert extra.status_code == 400
    assert [e["field"] for e in extra.json()["detail"]["errors"]] == ["notes"]
    assert client.put(url, {"document": ["goals"]}, format="json").json()["detail"]["errors"][0]["field"] == "document"
    assert client.put(url, {"document": document}, format="json").status_code == 200
    schema = yaml.safe_load(actors.api("admin").get("/api/schema/").content)
    body = schema["paths"]["/api/v1/specs/{spec_id}/versions/{number}/"]["put"]["requestBody"]
    declared = schema["components"]["schemas"][body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert body["required"] is True
    assert declared["required"] == ["document"] and declared["additionalProperties"] is False
    assert set(declared["properties"]) == {"document"}
