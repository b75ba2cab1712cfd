"""The labeling REST API: the fixed paths of SPEC section 6 and the role matrix on every endpoint."""

import json

import pytest

from labeling.models import Campaign, Judgment, Task
from tests.labeling.helpers import jsonl, make_campaign, published_version


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def campaign(actors):
    # Assigned raters: rater and rater2; the spec belongs to `policy` (policy2 does not edit it).
    return make_campaign(actors, n_items=4, overlap=2, raters=("rater", "rater2"))


def test_an_admin_creates_a_campaign_on_the_latest_published_version(actors):
    version = published_version(actors.policy)
    client = actors.api("admin")
    response = client.post("/api/v1/campaigns/", {"name": "Round 1", "spec": version.spec_id, "overlap": 3,
                                                  "guidelines": "Prefer the safer reply."}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["overlap"], body["guidelines"]) == (1, 3, "Prefer the safer reply.")
    bad = client.post("/api/v1/campaigns/", {"name": "x", "spec": version.spec_id, "overlap": 0,
                                             "category_weights": {"violence": -1}}, format="json")
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["detail"]["errors"]} == {"overlap", "category_weights.violence"}
    # The spec version's keys are checked once the body has the documented shape.
    ghost = client.post("/api/v1/campaigns/", {"name": "x", "spec": version.spec_id, "category_weights": {"ghost": 2}},
                        format="json")
    assert ghost.status_code == 400
    assert [e["field"] for e in ghost.json()["detail"]["errors"]] == ["category_weights.ghost"]


def test_a_draft_version_cannot_be_labeled(actors, document):
    from taxonomy import services as spec_services

    draft = spec_services.spec_create(user=actors.policy, name="Draft only", document=document)
    response = actors.api("admin").post("/api/v1/campaigns/", {"name": "x", "spec": draft.spec_id, "version": 1}, format="json")
    assert response.status_code == 400 and "published" in response.json()["error"]


def test_items_import_answers_counts_and_names_the_bad_line(actors, campaign):
    client = actors.api("admin")
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/items/", data=jsonl(3, prefix="new"),
                           content_type="application/x-ndjson")
    assert response.status_code == 201
    assert response.json() == {"created_items": 3, "created_tasks": 3, "duplicates": 0}
    bad = client.post(f"/api/v1/campaigns/{campaign.pk}/items/", data=jsonl(2, prefix="more") + '\n{"prompt": 1}',
                      content_type="application/x-ndjson")
    assert bad.status_code == 400
    assert bad.json()["line"] == 3 and "prompt" in bad.json()["error"]
    hh = json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"})
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/items/?format=hh", data=hh,
                       content_type="application/x-ndjson").json()["created_items"] == 1
    csv_body = "prompt,response_a,response_b\nq,a,b\n"
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/items/", data=csv_body,
                       content_type="text/csv").json()["created_items"] == 1


def test_the_rater_loop_over_the_api(actors, campaign):
    client = actors.api("rater")
    task = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/")
    assert task.status_code == 200
    body = task.json()
    assert set(body) >= {"assignment", "task", "prompt", "a", "b"}
    assert set(body["a"]) == {"response", "text"} and body["a"]["response"] != body["b"]["response"]
    judged = client.post(f"/api/v1/assignments/{body['assignment']}/judgment/", {
        "preference": -1, "categories": {"a": ["violence"], "b": []}, "severity": {"a": 2, "b": 0},
        "axes": {"helpful": {"a": 1, "b": 2}}, "rationale": "A is riskier but B dodges", "seconds": 21}, format="json")
    assert judged.status_code == 201, judged.content
    again = client.post(f"/api/v1/assignments/{body['assignment']}/judgment/", {"preference": 1}, format="json")
    assert again.status_code == 409
    assert Judgment.objects.count() == 1
    nxt = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()
    skipped = client.post(f"/api/v1/assignments/{nxt['assignment']}/skip/", {"reason": "unclear"}, format="json")
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    open_id = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()["assignment"]
    bad = client.post(f"/api/v1/assignments/{open_id}/judgment/", {"preference": 5, "seconds": -1}, format="json")
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["detail"]["errors"]} == {"preference", "seconds"}
    assert "must be an integer from -2 (A much better) to 2 (B much better), got 5" in bad.json()["error"]
    # Category keys are the spec version's: checked once the body has the documented shape.
    ghost = client.post(f"/api/v1/assignments/{open_id}/judgment/", {"preference": 1, "categories": {"a": ["ghost"]}},
                        format="json")
    assert ghost.status_code == 400
    assert [e["field"] for e in ghost.json()["detail"]["errors"]] == ["categories.a[0]"]


def test_next_task_answers_204_when_nothing_is_left(actors):
    campaign = make_campaign(actors, n_items=1, overlap=1, raters=("rater",))
    client = actors.api("rater")
    a = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()["assignment"]
    client.post(f"/api/v1/assignments/{a}/judgment/", {"preference": 0}, format="json")
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").status_code == 204


def test_raters_see_only_their_own_judgments(actors, campaign):
    for who in ("rater", "rater2"):
        client = actors.api(who)
        a = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()["assignment"]
        client.post(f"/api/v1/assignments/{a}/judgment/", {"preference": 1}, format="json")
    mine = actors.api("rater").get(f"/api/v1/judgments/?campaign={campaign.pk}").json()
    assert [j["rater"] for j in mine["results"]] == ["rita_rater"]
    theirs = Judgment.objects.get(rater=actors.rater2)
    assert actors.api("rater").get(f"/api/v1/judgments/{theirs.pk}/").status_code == 404
    assert actors.api("admin").get(f"/api/v1/judgments/?campaign={campaign.pk}").json()["count"] == 2
    assert actors.api("policy").get(f"/api/v1/judgments/?campaign={campaign.pk}").json()["count"] == 2
    assert actors.api("policy2").get(f"/api/v1/judgments/?campaign={campaign.pk}").json()["count"] == 0


def test_a_rater_gets_404_for_another_raters_assignment(actors, campaign):
    a = actors.api("rater").get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()["assignment"]
    other = actors.api("rater2")
    assert other.post(f"/api/v1/assignments/{a}/judgment/", {"preference": 1}, format="json").status_code == 404
    assert other.post(f"/api/v1/assignments/{a}/skip/", {}, format="json").status_code == 404
    assert Judgment.objects.count() == 0


def test_agreement_endpoint_shape(actors, campaign):
    for who in ("rater", "rater2"):
        client = actors.api(who)
        a = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()
        client.post(f"/api/v1/assignments/{a['assignment']}/judgment/", {"preference": 1, "severity": {"a": 0, "b": 1}}, format="json")
    body = actors.api("policy").get(f"/api/v1/campaigns/{campaign.pk}/agreement/").json()
    assert set(body) >= {"preference", "preference_direction", "severity", "axes", "categories", "raters"}
    assert set(body["preference"]) >= {"alpha", "n_units"}
    assert set(body["axes"]) == {"helpful"} and set(body["categories"]) == {"violence", "weapons"}
    assert sorted(r["username"] for r in body["raters"]) == ["rita_rater", "rob_rater"]


def test_adjudication_over_the_api(actors, campaign):
    task = Task.objects.filter(campaign=campaign).first()
    url = f"/api/v1/tasks/{task.pk}/adjudication/"
    assert actors.api("policy").post(url, {"preference": -2, "severity_x": 0, "severity_y": 3}, format="json").status_code == 201
    assert actors.api("policy").post(url, {"preference": 7}, format="json").status_code == 400


def ids(campaign, actors):
    task = Task.objects.filter(campaign=campaign).first()
    assignment = actors.api("rater").get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()["assignment"]
    actors.api("rater").post(f"/api/v1/assignments/{assignment}/judgment/", {"preference": -1}, format="json")
    export = actors.api("admin").post(f"/api/v1/campaigns/{campaign.pk}/exports/", {}, format="json").json()["id"]
    return {"c": campaign.pk, "t": task.pk, "e": export}


# (method, path, body) -> expected status per actor; "policy" edits the campaign's spec, "policy2" does not.
MATRIX = [
    ("get", "/api/v1/campaigns/{c}/", None, {"admin": 200, "policy": 200, "policy2": 404, "rater": 200, "outsider": 403, None: 401}),
    ("post", "/api/v1/campaigns/{c}/raters/", {"usernames": ["rob_rater"]}, {"admin": 200, "policy": 403, "rater": 403, None: 401}),
    ("post", "/api/v1/campaigns/{c}/items/", None, {"policy": 403, "rater": 403, None: 401}),
    ("get", "/api/v1/campaigns/{c}/next-task/", None, {"admin": 403, "policy": 403, "outsider": 403, None: 401}),
    ("get", "/api/v1/campaigns/{c}/agreement/", None, {"admin": 200, "policy": 200, "policy2": 404, "rater": 403, None: 401}),
    ("get", "/api/v1/campaigns/{c}/exports/", None, {"admin": 200, "policy": 200, "policy2": 404, "rater": 403, None: 401}),
    ("post", "/api/v1/campaigns/{c}/exports/", {}, {"policy": 403, "rater": 403, None: 401}),
    ("get", "/api/v1/exports/{e}/", None, {"admin": 200, "policy": 200, "policy2": 404, "rater": 403, None: 401}),
    ("get", "/api/v1/exports/{e}/pairs.jsonl", None, {"admin": 200, "policy": 200, "policy2": 404, "rater": 403, None: 401}),
    ("post", "/api/v1/tasks/{t}/adjudication/", {"preference": 1}, {"admin": 201, "policy": 201, "policy2": 404, "rater": 403, None: 401}),
    ("get", "/api/v1/judgments/", None, {"admin": 200, "policy": 200, "rater": 200, "outsider": 403, None: 401}),
]


@pytest.mark.parametrize("method, path, body, expected", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_the_role_matrix_on_every_labeling_endpoint(actors, campaign, method, path, body, expected):
    values = ids(campaign, actors)
    for who, status in expected.items():
        response = getattr(actors.api(who), method)(path.format(**values), body, format="json")
        assert response.status_code == status, (who, path, response.status_code, response.content[:200])


def test_an_unassigned_rater_gets_404_for_the_campaign(actors):
    campaign = make_campaign(actors, n_items=1, raters=("rater",))
    assert actors.api("rater2").get(f"/api/v1/campaigns/{campaign.pk}/next-task/").status_code == 404
    assert actors.api("rater2").get(f"/api/v1/campaigns/{campaign.pk}/").status_code == 404


def test_a_campaign_on_a_spec_that_does_not_exist_is_a_404_and_nothing_is_saved(actors):
    response = actors.api("admin").post("/api/v1/campaigns/", {"name": "x", "spec": 999999}, format="json")
    assert response.status_code == 404
    assert not Campaign.objects.exists()


def test_the_judgment_list_refuses_a_campaign_that_is_not_an_id(actors, campaign):
    for value in ("", "abc", "1.5"):
        response = actors.api("admin").get(f"/api/v1/judgments/?campaign={value}")
        assert response.status_code == 400, value
        assert response.json()["detail"]["errors"][0]["field"] == "campaign"
