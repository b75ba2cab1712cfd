"""Every error under /api/ is JSON {"error", "detail"}: unknown paths, bodies too large, the database down, bugs."""

import logging
import socket
from contextlib import contextmanager

import pytest
from django.db import connections
from rest_framework.test import APIClient

from tests.labeling.helpers import make_campaign


def client_for(actors, who: str) -> APIClient:
    """A token client that hands back the server's answer to an exception instead of raising it."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {getattr(actors, who + '_token')}")
    return client


def assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], dict)
    return body


# --- unknown paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v2/specs/", "/api/", "/api/v1/specs/1/versions/1/nope/"])
def test_an_unknown_api_path_answers_json_404(actors, settings, path, debug):
    settings.DEBUG = debug
    body = assert_error_shape(client_for(actors, "policy").get(path), 404)
    assert path in body["error"] and "/api/docs/" in body["error"]


def test_an_unknown_api_path_answers_json_404_to_a_post_and_to_anonymous_users(actors):
    assert_error_shape(client_for(actors, "admin").post("/api/v1/nope/", {"a": 1}, format="json"), 404)
    assert_error_shape(APIClient().get("/api/v1/nope/"), 404)


def test_an_api_path_without_its_slash_still_redirects(actors):
    response = client_for(actors, "policy").get("/api/v1/specs")
    assert response.status_code == 301 and response["Location"] == "/api/v1/specs/"


def test_an_unknown_page_keeps_the_html_404(client, actors):
    client.force_login(actors.policy)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- bodies over the upload limit -------------------------------------------------------------------


@pytest.fixture
def small_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    return 10_000


def test_a_json_body_over_the_upload_limit_answers_json_413(actors, small_limit, document):
    document["principles"] = ["x" * 200] * 100  # about 20 kB
    response = client_for(actors, "policy").post("/api/v1/specs/", {"name": "Big", "document": document}, format="json")
    body = assert_error_shape(response, 413)
    assert "larger than" in body["error"] and body["detail"]["limit_bytes"] == small_limit


def test_a_yaml_body_over_the_upload_limit_answers_json_413(actors, small_limit):
    text = "goals:\n" + "".join(f"  - goal number {i} {'x' * 80}\n" for i in range(200))
    response = client_for(actors, "policy").post("/api/v1/specs/?name=Big", data=text, content_type="application/yaml")
    assert_error_shape(response, 413)


def test_a_body_read_whole_by_the_view_answers_json_413(actors, small_limit, document):
    """``request.body`` raises Django's RequestDataTooBig, which used to be an HTML 400."""
    from taxonomy import services

    spec = services.spec_create(user=actors.policy, name="Spec", document=document).spec
    services.spec_publish(spec=spec, user=actors.policy)
    response = client_for(actors, "policy").post(f"/api/v1/specs/{spec.id}/versions/", data="{" + " " * 20_000 + "}",
                                                 content_type="application/json")
    assert_error_shape(response, 413)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_a_form_body_to_the_api_is_a_json_415_the_schema_states(actors, small_limit, content_type):
    """The API takes what its schema documents: JSON (and files or YAML where an operation says so)."""
    response = client_for(actors, "admin").post("/api/v1/campaigns/", data="name=" + "x" * 20_000,
                                                content_type=content_type)
    assert "Unsupported media type" in assert_error_shape(response, 415)["error"]


def test_a_page_form_over_the_upload_limit_gets_a_readable_413_page(client, small_limit):
    response = client.post("/login/", {"username": "x" * 20_000, "password": "pw"})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "larger than" in response.content.decode()


# --- the database down ------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@contextmanager
def database_down():
    """The default connection points where no database answers (a closed port; a folder that does not exist)."""
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    else:
        connection.settings_dict["NAME"] = "/nonexistent-specloop-dir/db.sqlite3"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


OUTAGE_REQUESTS = [
    ("policy", "get", "/api/v1/specs/", None),
    ("policy", "post", "/api/v1/specs/", {"name": "During the outage", "document": {"goals": [], "categories": []}}),
    ("rater", "get", "/api/v1/campaigns/{campaign}/next-task/", None),
    ("rater", "post", "/api/v1/assignments/1/judgment/", {"preference": 1}),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who, method, path, data", OUTAGE_REQUESTS, ids=[f"{m} {p}" for _, m, p, _ in OUTAGE_REQUESTS])
def test_a_database_outage_answers_json_503_with_retry_after(actors, caplog, who, method, path, data):
    campaign = make_campaign(actors, n_items=2)
    client = client_for(actors, who)
    with database_down(), caplog.at_level(logging.WARNING):
        response = getattr(client, method)(path.format(campaign=campaign.pk), data, format="json")
    body = assert_error_shape(response, 503)
    assert body["error"] == "the database is unavailable; try again shortly"
    assert int(response["Retry-After"]) > 0
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1 and "OperationalError" in logged[0].getMessage() and not logged[0].exc_info
    # The database is back: the same client is served again.
    assert client.get("/api/v1/campaigns/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_page_during_a_database_outage_answers_a_plain_503(client, actors):
    client.force_login(actors.policy)
    client.raise_request_exception = False
    with database_down():
        response = client.get("/specs/")
        health = client.get("/healthz")
    assert response.status_code == 503 and response["Retry-After"]
    assert "database is unavailable" in response.content.decode()
    assert health.status_code == 503  # a load balancer takes the instance out instead of seeing a 500


# --- bugs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_an_unhandled_exception_on_the_api_answers_json_500_logged_once(actors, monkeypatch, caplog, settings, debug):
    settings.DEBUG = debug

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("taxonomy.selectors.spec_list", broken)
    with caplog.at_level(logging.ERROR):
        response = client_for(actors, "policy").get("/api/v1/specs/")
    body = assert_error_shape(response, 500)
    assert "logged" in body["error"] and "secret internals" not in response.content.decode()
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and "/api/v1/specs/" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info[0] is RuntimeError


def test_an_unhandled_exception_still_reaches_error_reporters(actors, monkeypatch):
    """got_request_exception is sent (the test client re-raises on it, as Sentry and the like listen to it)."""

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("taxonomy.selectors.spec_list", broken)
    with pytest.raises(RuntimeError, match="boom"):
        actors.api("policy").get("/api/v1/specs/")
