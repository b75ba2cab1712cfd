"""Text the database cannot store, over-deep bodies, malformed files and empty bodies: a 400 naming the field or line.

Each attack is sent to the real endpoint. Before the checks in specloop/parsers.py, specloop/middleware.py
and specloop/textcheck.py, PostgreSQL answered these with a 500 (it cannot store NUL; a lone surrogate
cannot be encoded) and deep bodies raised RecursionError.
"""

import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from labeling import services as labeling_services
from labeling.models import Campaign, Judgment
from specloop.textcheck import MAX_DEPTH, bad_text_line, bad_text_reason, check_tree
from taxonomy import services as spec_services
from taxonomy.models import Spec
from tests.labeling.helpers import make_campaign

NUL = "\x00"
SURROGATE = "\ud800"


def client_for(actors, who: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {getattr(actors, who + '_token')}")
    return client


def raw_json(value) -> str:
    """JSON text as a client sends it: a lone surrogate travels as the escape ``\\ud800``."""
    return json.dumps(value, ensure_ascii=True)


def assert_400_naming(response, field: str, words: str = "") -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:400])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    fields = [e["field"] for e in body["detail"]["errors"]]
    assert field in fields, (field, body)
    if words:
        assert words in body["error"], body
    return body


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=3)


@pytest.fixture
def assignment(actors, campaign):
    return labeling_services.next_task_assign(campaign=campaign, rater=actors.rater)


@pytest.fixture
def spec(actors, document):
    return spec_services.spec_create(user=actors.policy, name="Harm policy", document=document).spec


# --- the text check itself --------------------------------------------------------------------------


def test_the_text_check_names_nul_and_lone_surrogates_and_passes_everything_else():
    assert bad_text_reason("plain, ünïcödé, emoji 🙂, tabs\tand\nnewlines") is None
    assert "NUL" in bad_text_reason(f"ab{NUL}")
    assert "character 3" in bad_text_reason(f"ab{NUL}")
    assert "surrogate" in bad_text_reason(f"x{SURROGATE}") and "\\ud800" in bad_text_reason(SURROGATE)
    assert "surrogate" in bad_text_reason("\udfff")
    assert bad_text_line(f"one\ntwo\nth{NUL}ree") == (3, bad_text_reason(f"th{NUL}ree"))
    assert bad_text_line("one\ntwo") is None


def test_the_tree_check_names_the_path_and_walks_deep_values_without_recursion():
    value = {"document": {"categories": [{"name": "ok"}, {"name": f"bad{NUL}"}]}, f"k{SURROGATE}": 1}
    errors = check_tree(value)
    assert {e["field"] for e in errors} == {"document.categories[1].name", "k\\ud800"}
    deep: list = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    assert check_tree(deep) == [{"field": "[0]" * MAX_DEPTH, "message": f"nested deeper than {MAX_DEPTH} levels"}]
    shallow = [[[["fine"]]]]
    assert check_tree(shallow) == []


def test_the_tree_check_stops_a_yaml_alias_bomb():
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    errors = check_tree(yaml.safe_load(bomb))
    assert errors and "more than" in errors[0]["message"]


# --- JSON and YAML bodies ---------------------------------------------------------------------------

BAD_TEXT = [pytest.param(NUL, "NUL", id="nul"), pytest.param(SURROGATE, "surrogate", id="surrogate")]


@pytest.mark.parametrize("bad, words", BAD_TEXT)
def test_bad_text_in_a_spec_body_is_refused_naming_the_field(actors, document, bad, words):
    client = client_for(actors, "policy")
    cases = [
        ({"name": f"Spec{bad}", "document": document}, "name"),
        ({"name": "Spec", "description": f"d{bad}", "document": document}, "description"),
        ({"name": "Spec", "document": {**document, "goals": [f"goal{bad}"]}}, "document.goals[0]"),
    ]
    named = {**document, "categories": [dict(document["categories"][0], name=f"Vi{bad}olence")]}
    cases.append(({"name": "Spec", "document": named}, "document.categories[0].name"))
    keyed = {**document, "budgets": {f"viol{bad}": 0.1}}
    cases.append(({"name": "Spec", "document": keyed}, "document.budgets.viol" + ("\\u0000" if bad == NUL else "\\ud800")))
    for body, field in cases:
        response = client.post("/api/v1/specs/", data=raw_json(body), content_type="application/json")
        assert_400_naming(response, field, words)
    assert Spec.objects.count() == 0


def test_bad_text_in_a_yaml_spec_body_is_refused_naming_the_field(actors):
    text = 'goals: ["fine", "not\\0fine"]\ncategories: []\n'  # YAML's \0 escape is a NUL character
    response = client_for(actors, "policy").post("/api/v1/specs/?name=Y", data=text, content_type="application/yaml")
    assert_400_naming(response, "goals[1]", "NUL")
    assert Spec.objects.count() == 0


def test_bad_text_in_a_replaced_draft_is_refused(actors, spec, document):
    document["principles"] = [f"least harm{NUL}"]
    response = client_for(actors, "policy").put(f"/api/v1/specs/{spec.id}/versions/1/", {"document": document},
                                                format="json")
    assert_400_naming(response, "document.principles[0]")


@pytest.mark.parametrize("bad, words", BAD_TEXT)
def test_bad_text_in_usernames_is_refused(actors, spec, campaign, bad, words):
    response = client_for(actors, "policy").post(f"/api/v1/specs/{spec.id}/editors/",
                                                 data=raw_json({"usernames": [f"pete{bad}"]}), content_type="application/json")
    assert_400_naming(response, "usernames[0]", words)
    response = client_for(actors, "admin").post(f"/api/v1/campaigns/{campaign.id}/raters/",
                                                data=raw_json({"usernames": ["rita_rater", f"r{bad}"]}),
                                                content_type="application/json")
    assert_400_naming(response, "usernames[1]", words)


@pytest.mark.parametrize("bad, words", BAD_TEXT)
def test_bad_text_in_a_campaign_is_refused(actors, campaign, bad, words):
    client = client_for(actors, "admin")
    spec_id = campaign.spec_version.spec_id
    for field in ("name", "guidelines"):
        body = {"name": "Campaign", "spec": spec_id, field: f"text{bad}"}
        assert_400_naming(client.post("/api/v1/campaigns/", data=raw_json(body), content_type="application/json"),
                          field, words)
    assert Campaign.objects.count() == 1


@pytest.mark.parametrize("bad, words", BAD_TEXT)
def test_bad_text_in_a_judgment_a_skip_and_an_adjudication_is_refused(actors, assignment, bad, words):
    rater = client_for(actors, "rater")
    response = rater.post(f"/api/v1/assignments/{assignment.pk}/judgment/",
                          data=raw_json({"preference": 1, "rationale": f"because{bad}"}), content_type="application/json")
    assert_400_naming(response, "rationale", words)
    response = rater.post(f"/api/v1/assignments/{assignment.pk}/skip/", data=raw_json({"reason": f"tired{bad}"}),
                          content_type="application/json")
    assert_400_naming(response, "reason", words)
    response = client_for(actors, "policy").post(f"/api/v1/tasks/{assignment.task_id}/adjudication/",
                                                 data=raw_json({"preference": 1, "note": f"decided{bad}"}),
                                                 content_type="application/json")
    assert_400_naming(response, "note", words)
    assert Judgment.objects.count() == 0


def test_bad_text_in_a_training_job_is_refused(actors):
    response = client_for(actors, "admin").post("/api/v1/training-jobs/", {"kind": "reward", "name": f"job{NUL}",
                                                                          "config": {"backbone": f"m{NUL}"}}, format="json")
    body = assert_400_naming(response, "name")
    assert "config.backbone" in [e["field"] for e in body["detail"]["errors"]]


# --- query strings and paths ------------------------------------------------------------------------


@pytest.mark.parametrize("who, path, field", [
    ("admin", "/api/v1/training-jobs/?status=%00", "status"),
    ("admin", "/api/v1/training-jobs/?kind=reward%00", "kind"),
    ("rater", "/api/v1/judgments/?campaign=%00", "campaign"),
    ("policy", "/api/v1/specs/1/diff/?from=1%00", "from"),
    ("admin", "/api/v1/training-jobs/1/artifacts/model%00.bin", "path"),
])
def test_bad_text_in_a_query_parameter_or_the_path_is_refused(actors, who, path, field):
    assert_400_naming(client_for(actors, who).get(path), field, "NUL")


def test_a_nul_in_a_header_is_refused(actors):
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/specs/", HTTP_AUTHORIZATION=f"Token {actors.policy_token}{NUL}")
    assert_400_naming(response, "Authorization", "NUL")
    response = client_for(actors, "admin").post("/api/v1/training-jobs/", {}, format="json",
                                                HTTP_IDEMPOTENCY_KEY=f"retry{NUL}")
    assert_400_naming(response, "Idempotency-Key", "NUL")


# --- page forms -------------------------------------------------------------------------------------


def test_a_nul_in_the_login_form_is_a_400_page_naming_the_field(client):
    response = client.post("/login/", {"username": f"rita{NUL}", "password": "pw-rater-123"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "username" in response.content.decode() and "NUL" in response.content.decode()


def test_a_nul_in_a_page_form_on_htmx_is_a_banner(client, actors, assignment):
    client.force_login(actors.rater)
    response = client.post(f"/assignments/{assignment.pk}/skip/", {"reason": f"tired{NUL}"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "reason" in response.content.decode()
    response = client.post(f"/assignments/{assignment.pk}/judge/", {"preference": "1", "rationale": f"x{NUL}"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "rationale" in response.content.decode()
    assert Judgment.objects.count() == 0


def test_a_nul_in_the_spec_editor_forms_is_refused(client, actors, spec):
    client.force_login(actors.policy)
    response = client.post(f"/specs/{spec.id}/editors/", {"usernames": f"pete_policy{NUL}"})
    assert response.status_code == 400 and "usernames" in response.content.decode()
    upload = SimpleUploadedFile("spec.yaml", b'goals: ["a\\0b"]\ncategories: []\n')
    response = client.post(f"/specs/{spec.id}/upload/", {"file": upload})
    assert response.status_code == 400 and "goals[0]" in response.content.decode()


# --- nesting ----------------------------------------------------------------------------------------


def test_a_json_body_nested_past_the_recursion_limit_is_a_400(actors):
    body = '{"name": "x", "document": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client_for(actors, "policy").post("/api/v1/specs/", data=body, content_type="application/json")
    assert_400_naming(response, "body", f"nested deeper than {MAX_DEPTH} levels")


def test_a_json_body_nested_past_the_depth_limit_is_a_400_naming_where(actors, assignment):
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    response = client_for(actors, "rater").post(f"/api/v1/assignments/{assignment.pk}/judgment/",
                                                {"preference": 1, "axes": {"helpful": deep}}, format="json")
    body = assert_400_naming(response, "axes.helpful" + "[0]" * (MAX_DEPTH - 2), "nested deeper")
    assert Judgment.objects.count() == 0 and body


def test_a_yaml_body_nested_past_the_recursion_limit_is_a_400(actors):
    text = "goals: " + "[" * 20_000 + "]" * 20_000 + "\ncategories: []\n"
    response = client_for(actors, "policy").post("/api/v1/specs/?name=Y", data=text, content_type="application/yaml")
    assert_400_naming(response, "document", "nested deeper")


def test_a_yaml_alias_bomb_is_a_400(actors):
    bomb = "goals: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    response = client_for(actors, "policy").post("/api/v1/specs/?name=Y", data=bomb, content_type="application/yaml")
    assert response.status_code == 400 and "more than" in response.json()["error"]


# --- item and pair files ----------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    pytest.param('{"prompt": "hi\\u0000", "responses": ["a", "b"]}', id="prompt"),
    pytest.param('{"prompt": "hi", "responses": [{"text": "a", "model": "m\\u0000"}, "b"]}', id="model"),
    pytest.param('{"prompt": "hi", "responses": ["a", "b"], "meta": {"source": "x\\u0000"}}', id="meta"),
])
def test_a_nul_in_an_item_file_names_the_line(actors, campaign, line):
    good = '{"prompt": "fine", "responses": ["one", "two"]}'
    response = client_for(actors, "admin").post(f"/api/v1/campaigns/{campaign.id}/items/", data=f"{good}\n{line}\n",
                                                content_type="application/x-ndjson")
    assert response.status_code == 400, response.content
    assert response.json()["line"] == 2 and "NUL" in response.json()["error"]


def test_a_bare_carriage_return_in_a_csv_import_names_the_line(actors, campaign):
    text = 'prompt,response_a,response_b\n"fine",one,two\nbroken\rprompt,one,two\n'
    response = client_for(actors, "admin").post(f"/api/v1/campaigns/{campaign.id}/items/", data=text,
                                                content_type="text/csv")
    assert response.status_code == 400, response.content
    assert "line" in response.json()


def test_an_empty_body_to_an_import_is_a_400(actors, campaign):
    client = client_for(actors, "admin")
    items = client.post(f"/api/v1/campaigns/{campaign.id}/items/", data="", content_type="application/x-ndjson")
    assert_400_naming(items, "body", "empty")
    pairs = client.post("/api/v1/exports/import/?format=trl", data="", content_type="application/x-ndjson")
    assert_400_naming(pairs, "body", "empty")


def test_a_blank_body_to_an_import_is_a_400(actors, campaign):
    client = client_for(actors, "admin")
    for path in (f"/api/v1/campaigns/{campaign.id}/items/", "/api/v1/exports/import/?format=trl"):
        response = client.post(path, data="   \n\n", content_type="application/x-ndjson")
        assert response.status_code == 400 and response.json()["error"], response.content


# --- every endpoint inherits the checks -------------------------------------------------------------

# Parsers that hand the view a file instead of parsed values; the importer checks each line it reads.
FILE_PARSERS = {"labeling.api.RawUploadParser": "item and pair files: labeling/imports.py checks every line"}


def _api_views():
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith("api/"):
                view = getattr(entry.callback, "cls", None)
                if view is not None:
                    yield route, view

    return list(walk(get_resolver().url_patterns))


def test_every_api_view_parses_bodies_with_the_checking_parsers():
    """A new endpoint gets the size, nesting and text checks unless it lists a parser that skips them."""
    from specloop import parsers
    from taxonomy.api import YAMLParser

    checking = (parsers.JSONParser, YAMLParser)
    views = _api_views()
    assert len(views) > 20
    unchecked = {
        f"{route}: {p.__module__}.{p.__qualname__}"
        for route, view in views for p in view.parser_classes
        if not issubclass(p, checking) and f"{p.__module__}.{p.__qualname__}" not in FILE_PARSERS
    }
    assert not unchecked, unchecked
