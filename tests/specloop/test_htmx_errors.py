"""Errors on htmx requests land in the page's #flash banner, never inside the swapped element."""

import pytest
from django.test import Client

from taxonomy import services


@pytest.fixture
def version(actors, document):
    return services.spec_create(user=actors.policy, name="Harm policy", document=document)


def add_category_url(version) -> str:
    return f"/specs/{version.spec_id}/v/{version.number}/categories/new/"


def test_an_expired_session_on_an_htmx_request_redirects_the_whole_page_to_login(client, version):
    response = client.post(add_category_url(version), HTTP_HX_REQUEST="true",
                           HTTP_HX_CURRENT_URL=f"http://testserver/specs/{version.spec_id}/v/1/")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/login/?next=")
    assert f"/specs/{version.spec_id}/v/1/" in response["HX-Redirect"]


def test_a_missing_role_on_an_htmx_request_is_a_banner(client, actors, version):
    client.force_login(actors.admin)
    response = client.post(add_category_url(version), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#flash"
    assert "needs the policy role" in response.content.decode()
    assert "<html" not in response.content.decode()


def test_a_failed_csrf_check_on_an_htmx_request_is_a_banner(actors, version):
    client = Client(enforce_csrf_checks=True)
    client.force_login(actors.policy)
    response = client.post(add_category_url(version), {"key": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#flash"
    assert "Reload the page" in response.content.decode()


def test_a_failed_csrf_check_on_a_plain_form_is_a_page(actors, version):
    client = Client(enforce_csrf_checks=True)
    client.force_login(actors.policy)
    response = client.post(f"/specs/{version.spec_id}/publish/")
    assert response.status_code == 403 and "<html" in response.content.decode()
