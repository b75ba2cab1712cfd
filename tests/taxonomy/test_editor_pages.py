"""The spec editor's pages and htmx fragments, through the Django test client."""

import json
import re

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from taxonomy.models import SpecVersion
from taxonomy.services import category_add, example_add, spec_create, spec_draft_create, spec_publish
from tests.conftest import small_document
from tests.pages import HX, XSS

NEW_CATEGORY = {
    "key": "self_harm", "name": "Self-harm", "description": "Hurting oneself.", "parent": "",
    "severity": "3", "behavior": "redirect", "crosswalk": "llama_guard: S11", "budget": "0.005",
}


@pytest.fixture
def draft(actors, document) -> SpecVersion:
    """v1 of a spec edited by ``actors.policy``, still a draft."""
    return spec_create(user=actors.policy, name="Harm spec", document=document)


@pytest.fixture
def draft_v2(actors, draft) -> SpecVersion:
    """The same spec with v1 published and v2 a draft copy of it."""
    spec_publish(spec=draft.spec, user=actors.policy)
    return spec_draft_create(spec=draft.spec, user=actors.policy)


def _url(name: str, version: SpecVersion, *args) -> str:
    return reverse(f"taxonomy:{name}", args=[version.spec_id, version.number, *args])


def _doc(version: SpecVersion) -> dict:
    return SpecVersion.objects.get(pk=version.pk).document


def _keys(version: SpecVersion) -> list[str]:
    return [c["key"] for c in _doc(version)["categories"]]


def _category(version: SpecVersion, key: str) -> dict:
    return next(c for c in _doc(version)["categories"] if c["key"] == key)


# --- who may open what ------------------------------------------------------------------------------

SPEC_PAGES = {
    "version": lambda v: _url("version", v),
    "diff": lambda v: reverse("taxonomy:diff", args=[v.spec_id]) + "?from=1&to=2",
    "history": lambda v: reverse("taxonomy:history", args=[v.spec_id]),
    "export": lambda v: _url("export", v, "yaml"),
    "category-add": lambda v: _url("category-add", v),
}
READ_PAGES = ["version", "diff", "history", "export"]


@pytest.mark.parametrize("page", SPEC_PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, draft_v2, page):
    url = SPEC_PAGES[page](draft_v2)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("who", ["rater", "outsider"])
@pytest.mark.parametrize("page", SPEC_PAGES)
def test_a_rater_gets_403_on_the_spec_editor(client, actors, draft_v2, who, page):
    client.force_login(getattr(actors, who))

    assert client.get(SPEC_PAGES[page](draft_v2)).status_code == 403


@pytest.mark.parametrize("page", SPEC_PAGES)
def test_the_policy_editor_of_a_spec_opens_its_pages(client, actors, draft_v2, page):
    client.force_login(actors.policy)

    assert client.get(SPEC_PAGES[page](draft_v2)).status_code == 200


@pytest.mark.parametrize("page", SPEC_PAGES)
def test_a_policy_user_who_does_not_edit_the_spec_gets_404(client, actors, draft_v2, page):
    client.force_login(actors.policy2)

    assert client.get(SPEC_PAGES[page](draft_v2)).status_code == 404


def test_a_policy_user_who_does_not_edit_the_spec_cannot_post_to_it(client, actors, draft_v2):
    client.force_login(actors.policy2)

    response = client.post(_url("category-add", draft_v2), NEW_CATEGORY, headers=HX)

    assert response.status_code == 404
    assert "self_harm" not in _keys(draft_v2)


@pytest.mark.parametrize("page", READ_PAGES)
def test_an_admin_reads_every_spec_page(client, actors, draft_v2, page):
    client.force_login(actors.admin)

    assert client.get(SPEC_PAGES[page](draft_v2)).status_code == 200


def test_an_admin_sees_the_draft_without_edit_buttons(client, actors, draft_v2):
    client.force_login(actors.admin)

    body = client.get(_url("version", draft_v2)).content.decode()

    assert "Violence" in body  # the page did render the document
    for control in ("+ Add category", "+ Add example", "Publish v2", "hx-post", "Start draft", "Upload YAML"):
        assert control not in body


def test_the_policy_editor_sees_the_edit_buttons(client, actors, draft_v2):
    """The counterpart of the admin test: the same page for an editor does carry the controls."""
    client.force_login(actors.policy)

    body = client.get(_url("version", draft_v2)).content.decode()

    for control in ("+ Add category", "+ Add example", "Publish v2", "hx-post", "Upload YAML"):
        assert control in body


ADMIN_POSTS = {
    "category-add": (lambda v: _url("category-add", v), NEW_CATEGORY),
    "category-edit": (lambda v: _url("category-edit", v, "violence"), {**NEW_CATEGORY, "key": "violence"}),
    "category-delete": (lambda v: _url("category-delete", v, "weapons"), {}),
    "category-move": (lambda v: _url("category-move", v, "violence"), {"direction": "down"}),
    "example-add": (lambda v: _url("example-add", v, "violence"), {"text": "x", "verdict": "allowed"}),
    "example-edit": (lambda v: _url("example-edit", v, "violence", 0), {"text": "x", "verdict": "allowed"}),
    "example-delete": (lambda v: _url("example-delete", v, "violence", 0), {}),
    "example-move": (lambda v: _url("example-move", v, "violence", 0), {"direction": "down"}),
    "lines-edit": (lambda v: _url("lines-edit", v, "goals"), {"lines": "one\ntwo"}),
    "publish": (lambda v: reverse("taxonomy:publish", args=[v.spec_id]), {}),
    "editors": (lambda v: reverse("taxonomy:editors", args=[v.spec_id]), {"usernames": "pete_policy"}),
}


@pytest.mark.parametrize("endpoint", ADMIN_POSTS)
def test_an_admin_gets_403_on_every_edit_endpoint(client, actors, draft_v2, endpoint):
    url, data = ADMIN_POSTS[endpoint]
    before = _doc(draft_v2)
    client.force_login(actors.admin)

    response = client.post(url(draft_v2), data, headers=HX)

    assert response.status_code == 403
    assert _doc(draft_v2) == before
    assert SpecVersion.objects.get(pk=draft_v2.pk).status == SpecVersion.DRAFT


def test_an_admin_cannot_upload_or_start_a_draft(client, actors, draft_v2):
    spec_publish(spec=draft_v2.spec, user=actors.policy)
    client.force_login(actors.admin)
    upload = SimpleUploadedFile("spec.yaml", yaml.safe_dump(small_document()).encode())

    assert client.post(reverse("taxonomy:upload", args=[draft_v2.spec_id]), {"file": upload}).status_code == 403
    assert client.post(reverse("taxonomy:draft-create", args=[draft_v2.spec_id])).status_code == 403
    assert draft_v2.spec.versions.count() == 2


# --- escaping ---------------------------------------------------------------------------------------


@pytest.fixture
def hostile(actors, draft_v2) -> SpecVersion:
    """v2 gains a category whose every text field carries HTML."""
    return category_add(
        version=draft_v2, user=actors.policy, budget=0.1,
        category={"key": "xss", "name": XSS, "description": "<img src=x onerror=alert(2)>", "parent": None,
                  "severity": 1, "behavior": "refuse", "crosswalk": {"<b>tax</b>": ["<i>code</i>"]},
                  "examples": [{"text": "<iframe src=//evil></iframe>", "verdict": "allowed"}]},
    )


def _assert_escaped(body: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    for raw in (XSS, "<img src=x", "<iframe", "<b>tax</b>", "<i>code</i>"):
        assert raw not in body


def test_html_in_a_category_is_escaped_on_the_version_page(client, actors, hostile):
    client.force_login(actors.policy)

    body = client.get(_url("version", hostile)).content.decode()

    _assert_escaped(body)
    assert "&lt;img src=x onerror=alert(2)&gt;" in body
    assert "&lt;iframe src=//evil&gt;&lt;/iframe&gt;" in body


def test_html_in_a_category_is_escaped_on_the_diff_page(client, actors, hostile):
    client.force_login(actors.admin)

    body = client.get(reverse("taxonomy:diff", args=[hostile.spec_id]) + "?from=1&to=2").content.decode()

    _assert_escaped(body)
    assert "&lt;iframe src=//evil&gt;&lt;/iframe&gt;" in body


def test_html_in_a_category_is_escaped_in_the_htmx_spec_body(client, actors, hostile):
    client.force_login(actors.policy)

    response = client.post(_url("example-add", hostile, "xss"), {"text": XSS, "verdict": "borderline"}, headers=HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="spec-body"' in body
    _assert_escaped(body)
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # the name and the new example


def test_html_in_a_category_is_escaped_in_its_edit_form(client, actors, hostile):
    client.force_login(actors.policy)

    body = client.get(_url("category-edit", hostile, "xss"), headers=HX).content.decode()

    _assert_escaped(body)


# --- CSRF with htmx ---------------------------------------------------------------------------------


def _hx_csrf_token(body: str) -> str:
    match = re.search(r"""<body hx-headers='\{"X-CSRFToken": "([^"]+)"\}'>""", body)
    assert match, "the body tag carries no hx-headers CSRF token"
    return match.group(1)


def test_an_htmx_post_without_the_csrf_token_is_refused(actors, draft_v2):
    client = Client(enforce_csrf_checks=True)
    client.force_login(actors.policy)
    client.get(_url("version", draft_v2))  # sets the CSRF cookie, as a browser would have it

    response = client.post(_url("category-add", draft_v2), NEW_CATEGORY, headers=HX)

    assert response.status_code == 403
    assert "self_harm" not in _keys(draft_v2)


def test_an_htmx_post_with_the_token_from_hx_headers_is_accepted(actors, draft_v2):
    client = Client(enforce_csrf_checks=True)
    client.force_login(actors.policy)
    token = _hx_csrf_token(client.get(_url("version", draft_v2)).content.decode())

    response = client.post(_url("category-add", draft_v2), NEW_CATEGORY, headers={**HX, "X-CSRFToken": token})

    assert response.status_code == 200
    assert "self_harm" in _keys(draft_v2)


# --- htmx inline edits ------------------------------------------------------------------------------


def test_the_add_category_form_is_a_fragment(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.get(_url("category-add", draft_v2) + "?parent=violence", headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="form-category-new"' in body
    assert '<option value="violence" selected>' in body


def test_adding_a_category_over_htmx_answers_the_spec_body(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-add", draft_v2), NEW_CATEGORY, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<div id="spec-body"')
    assert 'id="cat-self_harm"' in body
    added = _category(draft_v2, "self_harm")
    assert added == {
        "key": "self_harm", "name": "Self-harm", "description": "Hurting oneself.", "parent": None,
        "severity": 3, "behavior": "redirect", "examples": [], "crosswalk": {"llama_guard": ["S11"]},
    }
    assert _doc(draft_v2)["budgets"]["self_harm"] == 0.005


def test_adding_a_category_without_htmx_redirects_to_the_version_page(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-add", draft_v2), NEW_CATEGORY)

    assert response.status_code == 302
    assert response["Location"] == _url("version", draft_v2)
    assert "self_harm" in _keys(draft_v2)


def _refused_fragment(response, *, target: str, swap: str) -> str:
    """The body of a 400 answered as a fragment (no page around it) and swapped into ``target``."""
    body = response.content.decode()
    assert response.status_code == 400
    assert response["HX-Retarget"] == target
    assert response["HX-Reswap"] == swap
    assert "<html" not in body
    return body


def test_an_invalid_category_form_is_answered_400_and_retargeted_to_the_form(client, actors, draft_v2):
    before = _doc(draft_v2)
    client.force_login(actors.policy)

    response = client.post(_url("category-add", draft_v2), {**NEW_CATEGORY, "budget": "7"}, headers=HX)

    body = _refused_fragment(response, target="#form-category-new", swap="outerHTML")
    assert 'id="form-category-new"' in body
    assert "less than or equal to 1" in body
    assert _doc(draft_v2) == before


def test_an_invalid_edit_form_is_retargeted_to_that_categorys_form(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-edit", draft_v2, "weapons"), {**NEW_CATEGORY, "name": ""}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#form-category-weapons"
    assert _category(draft_v2, "weapons")["name"] == "Weapons"


def test_a_duplicate_key_is_answered_with_an_error_fragment_in_flash(client, actors, draft_v2):
    before = _doc(draft_v2)
    client.force_login(actors.policy)

    response = client.post(_url("category-add", draft_v2), {**NEW_CATEGORY, "key": "violence"}, headers=HX)

    body = _refused_fragment(response, target="#flash", swap="innerHTML")
    assert 'class="flash error"' in body
    assert "duplicate category key" in body
    assert _doc(draft_v2) == before
    assert not draft_v2.changes.filter(action="category.add").exists()


def test_a_bad_key_is_answered_with_an_error_naming_the_field(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-add", draft_v2), {**NEW_CATEGORY, "key": "Self Harm"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "categories[2].key" in response.content.decode()
    assert _keys(draft_v2) == ["violence", "weapons"]


def test_editing_a_category_over_htmx_changes_it(client, actors, draft_v2):
    client.force_login(actors.policy)
    data = {"key": "weapons", "name": "Weapons and explosives", "description": "Arms.", "parent": "violence",
            "severity": "3", "behavior": "refuse", "crosswalk": "", "budget": "0.02"}

    response = client.post(_url("category-edit", draft_v2, "weapons"), data, headers=HX)

    assert response.status_code == 200
    assert "Weapons and explosives" in response.content.decode()
    weapons = _category(draft_v2, "weapons")
    assert (weapons["name"], weapons["severity"], weapons["behavior"]) == ("Weapons and explosives", 3, "refuse")
    assert _doc(draft_v2)["budgets"]["weapons"] == 0.02


def test_renaming_a_category_key_carries_its_children_and_budget(client, actors, draft_v2):
    client.force_login(actors.policy)
    data = {"key": "violent_harm", "name": "Violence", "description": "Hurting people.", "parent": "",
            "severity": "3", "behavior": "refuse", "crosswalk": "llama_guard: S1", "budget": "0.01"}

    response = client.post(_url("category-edit", draft_v2, "violence"), data, headers=HX)

    assert response.status_code == 200
    doc = _doc(draft_v2)
    assert [c["key"] for c in doc["categories"]] == ["violent_harm", "weapons"]
    assert _category(draft_v2, "weapons")["parent"] == "violent_harm"
    assert doc["budgets"] == {"violent_harm": 0.01}


def test_clearing_the_budget_field_removes_the_budget(client, actors, draft_v2):
    client.force_login(actors.policy)
    data = {"key": "violence", "name": "Violence", "description": "", "parent": "", "severity": "3",
            "behavior": "refuse", "crosswalk": "", "budget": ""}

    client.post(_url("category-edit", draft_v2, "violence"), data, headers=HX)

    assert _doc(draft_v2)["budgets"] == {}


def test_editing_an_unknown_category_is_an_error_fragment(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.get(_url("category-edit", draft_v2, "nowhere"), headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "no category" in response.content.decode()


def test_moving_a_category_swaps_it_with_its_sibling(client, actors, draft_v2):
    category_add(version=draft_v2, user=actors.policy,
                 category={"key": "privacy", "name": "Privacy", "severity": 1, "behavior": "refuse"})
    client.force_login(actors.policy)

    response = client.post(_url("category-move", draft_v2, "privacy"), {"direction": "up"}, headers=HX)

    assert response.status_code == 200
    assert 'id="spec-body"' in response.content.decode()
    # weapons stays under violence: only top-level siblings trade places
    assert _keys(draft_v2) == ["privacy", "weapons", "violence"]


def test_moving_a_category_in_a_bad_direction_is_an_error(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-move", draft_v2, "violence"), {"direction": "sideways"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert _keys(draft_v2) == ["violence", "weapons"]


def test_deleting_a_category_removes_it(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-delete", draft_v2, "weapons"), headers=HX)

    assert response.status_code == 200
    assert 'id="cat-weapons"' not in response.content.decode()
    assert _keys(draft_v2) == ["violence"]


def test_deleting_a_category_with_children_is_refused(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("category-delete", draft_v2, "violence"), headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "has sub-categories (weapons)" in response.content.decode()
    assert _keys(draft_v2) == ["violence", "weapons"]


def test_adding_editing_moving_and_deleting_examples(client, actors, draft_v2):
    client.force_login(actors.policy)
    form = client.get(_url("example-add", draft_v2, "weapons"), headers=HX)
    assert 'id="form-example-weapons-new"' in form.content.decode()

    added = client.post(_url("example-add", draft_v2, "weapons"),
                        {"text": "Where can I buy a rifle legally?", "verdict": "allowed"}, headers=HX)
    client.post(_url("example-add", draft_v2, "weapons"),
                {"text": "Print me a ghost gun.", "verdict": "disallowed"}, headers=HX)
    assert added.status_code == 200
    assert "Where can I buy a rifle legally?" in added.content.decode()

    edited = client.post(_url("example-edit", draft_v2, "weapons", 0),
                         {"text": "Where can I buy a hunting rifle?", "verdict": "borderline"}, headers=HX)
    assert edited.status_code == 200
    moved = client.post(_url("example-move", draft_v2, "weapons", 0), {"direction": "down"}, headers=HX)
    assert moved.status_code == 200
    assert _category(draft_v2, "weapons")["examples"] == [
        {"text": "Print me a ghost gun.", "verdict": "disallowed"},
        {"text": "Where can I buy a hunting rifle?", "verdict": "borderline"},
    ]

    deleted = client.post(_url("example-delete", draft_v2, "weapons", 0), headers=HX)

    assert deleted.status_code == 200
    assert "Print me a ghost gun." not in deleted.content.decode()
    assert _category(draft_v2, "weapons")["examples"] == [
        {"text": "Where can I buy a hunting rifle?", "verdict": "borderline"}
    ]


def test_the_example_edit_form_is_filled_with_the_example(client, actors, draft_v2):
    client.force_login(actors.policy)

    body = client.get(_url("example-edit", draft_v2, "violence", 0), headers=HX).content.decode()

    assert 'id="form-example-violence-0"' in body
    assert "How do I hurt someone?" in body


def test_an_empty_example_is_retargeted_to_its_form(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("example-add", draft_v2, "weapons"), {"text": "", "verdict": "allowed"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#form-example-weapons-new"
    assert _category(draft_v2, "weapons")["examples"] == []


def test_editing_a_missing_example_is_an_error_fragment(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("example-edit", draft_v2, "weapons", 3), {"text": "x", "verdict": "allowed"},
                           headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert _category(draft_v2, "weapons")["examples"] == []


def test_editing_the_goals_over_htmx(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(_url("lines-edit", draft_v2, "goals"), {"lines": " Be safe \n\nBe useful"}, headers=HX)

    assert response.status_code == 200
    assert _doc(draft_v2)["goals"] == ["Be safe", "Be useful"]


def test_editing_a_category_of_a_published_version_is_refused_with_409(client, actors, draft):
    published = spec_publish(spec=draft.spec, user=actors.policy)
    before = _doc(published)
    client.force_login(actors.policy)
    data = {**NEW_CATEGORY, "key": "violence", "name": "Renamed"}

    response = client.post(_url("category-edit", published, "violence"), data, headers=HX)

    assert response.status_code == 409
    assert response["HX-Retarget"] == "#flash"
    assert "is published and cannot be changed" in response.content.decode()
    assert _doc(published) == before


@pytest.mark.parametrize("endpoint", ["category-add", "category-delete", "example-add", "example-delete"])
def test_every_edit_of_a_published_version_is_refused_with_409(client, actors, draft, endpoint):
    published = spec_publish(spec=draft.spec, user=actors.policy)
    before = _doc(published)
    client.force_login(actors.policy)
    url, data = {
        "category-add": (_url("category-add", published), NEW_CATEGORY),
        "category-delete": (_url("category-delete", published, "weapons"), {}),
        "example-add": (_url("example-add", published, "violence"), {"text": "x", "verdict": "allowed"}),
        "example-delete": (_url("example-delete", published, "violence", 0), {}),
    }[endpoint]

    response = client.post(url, data)

    assert response.status_code == 409
    assert "<html" in response.content.decode()  # without htmx: the error page
    assert _doc(published) == before


def test_a_published_version_page_offers_no_edit_buttons(client, actors, draft):
    published = spec_publish(spec=draft.spec, user=actors.policy)
    client.force_login(actors.policy)

    body = client.get(_url("version", published)).content.decode()

    assert "+ Add category" not in body
    assert "hx-post" not in body
    assert "Start draft v2" in body


# --- lifecycle: publish, draft, diff, download, upload ------------------------------------------------


def test_publishing_from_the_page_redirects_to_the_published_version(client, actors, draft):
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:publish", args=[draft.spec_id]))

    assert response.status_code == 302
    assert response["Location"] == _url("version", draft)
    draft.refresh_from_db()
    assert draft.status == SpecVersion.PUBLISHED
    assert draft.published_by == actors.policy
    assert "v1 · published" in client.get(response["Location"]).content.decode()


def test_publishing_when_there_is_no_draft_is_a_409_page(client, actors, draft):
    spec_publish(spec=draft.spec, user=actors.policy)
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:publish", args=[draft.spec_id]))

    assert response.status_code == 409
    assert "no draft to publish" in response.content.decode()


def test_publishing_a_spec_without_categories_is_refused(client, actors):
    empty = spec_create(user=actors.policy, name="Empty", document=None)
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:publish", args=[empty.spec_id]))

    assert response.status_code == 400
    assert "at least one category" in response.content.decode()
    empty.refresh_from_db()
    assert empty.status == SpecVersion.DRAFT


def test_starting_a_draft_creates_v2_from_v1(client, actors, draft):
    v1 = spec_publish(spec=draft.spec, user=actors.policy)
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:draft-create", args=[draft.spec_id]))

    v2 = draft.spec.versions.get(number=2)
    assert response.status_code == 302
    assert response["Location"] == _url("version", v2)
    assert v2.status == SpecVersion.DRAFT
    assert v2.based_on == v1
    assert v2.document == v1.document
    body = client.get(response["Location"]).content.decode()
    assert "v2 · draft" in body
    assert "+ Add category" in body


def test_starting_a_second_draft_is_a_409(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:draft-create", args=[draft_v2.spec_id]))

    assert response.status_code == 409
    assert draft_v2.spec.versions.count() == 2


def test_the_diff_page_lists_an_added_category(client, actors, draft_v2):
    category_add(version=draft_v2, user=actors.policy, budget=0.005,
                 category={"key": "self_harm", "name": "Self-harm", "severity": 3, "behavior": "redirect",
                           "examples": [{"text": "I want to hurt myself.", "verdict": "disallowed"}]})
    client.force_login(actors.policy)

    response = client.get(reverse("taxonomy:diff", args=[draft_v2.spec_id]))  # default: previous → latest

    body = response.content.decode()
    assert response.status_code == 200
    assert "Changes from v1 to v2" in body
    section = body[body.index('id="diff-categories"'):]
    section = section[:section.index("</section>")]
    assert re.search(r'class="diff-add">Added <strong>Self-harm</strong> <code class="key">self_harm</code>', section)
    assert "I want to hurt myself." in section
    assert "Removed" not in section
    assert "2 changes." in body  # the category and its budget


def test_the_diff_page_refuses_a_bad_version_number(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.get(reverse("taxonomy:diff", args=[draft_v2.spec_id]) + "?from=one")

    assert response.status_code == 400
    assert "from: must be a version number" in response.content.decode()


def test_the_yaml_download_is_an_attachment_that_parses_to_the_document(client, actors, draft_v2):
    client.force_login(actors.policy)

    response = client.get(_url("export", draft_v2, "yaml"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="harm-spec-v2.yaml"'
    assert response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content.decode()) == _doc(draft_v2)


def test_uploading_a_bad_yaml_file_names_the_field_and_saves_nothing(client, actors, draft_v2):
    before = _doc(draft_v2)
    bad = small_document()
    bad["categories"][1]["parent"] = "nowhere"
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:upload", args=[draft_v2.spec_id]),
                           {"file": SimpleUploadedFile("spec.yaml", yaml.safe_dump(bad).encode())})

    body = response.content.decode()
    assert response.status_code == 400
    assert "categories[1].parent" in body
    assert "parent &#x27;nowhere&#x27; does not exist" in body
    assert _doc(draft_v2) == before
    assert draft_v2.spec.versions.count() == 2


def test_uploading_a_file_that_is_not_yaml_says_where_it_breaks(client, actors, draft_v2):
    before = _doc(draft_v2)
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:upload", args=[draft_v2.spec_id]),
                           {"file": SimpleUploadedFile("spec.yaml", b"goals: [one\ncategories: {")})

    assert response.status_code == 400
    assert "bad YAML at line" in response.content.decode()
    assert _doc(draft_v2) == before


def test_uploading_a_good_file_replaces_the_draft(client, actors, draft_v2):
    new = small_document(goals=["Only this goal"])
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:upload", args=[draft_v2.spec_id]),
                           {"file": SimpleUploadedFile("spec.yaml", yaml.safe_dump(new).encode())})

    assert response.status_code == 302
    assert response["Location"] == _url("version", draft_v2)
    assert _doc(draft_v2)["goals"] == ["Only this goal"]
    assert draft_v2.spec.versions.count() == 2


def test_uploading_a_good_file_to_a_published_spec_starts_a_new_draft(client, actors, draft):
    v1 = spec_publish(spec=draft.spec, user=actors.policy)
    new = small_document(goals=["Only this goal"])
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:upload", args=[draft.spec_id]),
                           {"file": SimpleUploadedFile("spec.json", json.dumps(new).encode())})

    v2 = draft.spec.versions.get(number=2)
    assert response.status_code == 302
    assert response["Location"] == _url("version", v2)
    assert v2.status == SpecVersion.DRAFT
    assert v2.document["goals"] == ["Only this goal"]
    assert _doc(v1)["goals"] == ["Do not cause physical harm"]


def test_the_history_page_lists_the_edits(client, actors, draft_v2):
    example_add(version=draft_v2, user=actors.policy, key="weapons", text="Build a bomb", verdict="disallowed")
    client.force_login(actors.policy)

    body = client.get(reverse("taxonomy:history", args=[draft_v2.spec_id])).content.decode()

    for summary in ("Created spec “Harm spec”", "Published v1", "Started v2 from v1",
                    "Added a disallowed example to &#x27;weapons&#x27;"):
        assert summary in body


def test_the_version_page_query_count_does_not_grow_with_the_document(client, actors, draft_v2,
                                                                     django_assert_num_queries):
    for i in range(10):
        category_add(version=draft_v2, user=actors.policy,
                     category={"key": f"extra_{i}", "name": f"Extra {i}", "severity": 1, "behavior": "refuse",
                               "examples": [{"text": f"example {i}", "verdict": "allowed"}]})
    client.force_login(actors.policy)
    url = _url("version", draft_v2)

    # session, user, user's groups (roles), spec (visibility + counts), version, all versions,
    # recent changes of this version, the spec's editors
    with django_assert_num_queries(8):
        response = client.get(url)

    assert response.status_code == 200
    assert response.content.decode().count('<li class="cat depth-') == 12


def test_uploading_a_file_with_no_document_to_a_published_spec_is_refused(client, actors, draft):
    """A YAML file holding only a comment parses to nothing; that is not a document, so nothing is saved."""
    spec_publish(spec=draft.spec, user=actors.policy)
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:upload", args=[draft.spec_id]),
                           {"file": SimpleUploadedFile("spec.yaml", b"# to be written\n")})

    assert response.status_code == 400
    assert "document" in response.content.decode()
    assert draft.spec.versions.count() == 1


def test_creating_a_spec_from_a_file_with_no_document_is_refused(client, actors):
    client.force_login(actors.policy)

    response = client.post(reverse("taxonomy:list"), {
        "name": "From file", "start": "upload", "file": SimpleUploadedFile("spec.yaml", b"~\n"),
    })

    assert response.status_code == 400
    assert not SpecVersion.objects.filter(spec__name="From file").exists()


def test_the_yaml_download_of_a_spec_with_a_non_ascii_name_is_still_an_attachment(client, actors):
    version = spec_create(user=actors.policy, name="Sécurité 安全", document=small_document())
    client.force_login(actors.policy)

    response = client.get(_url("export", version, "yaml"))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")


def test_the_category_edit_form_keeps_a_severity_the_scale_has_no_label_for(client, actors):
    """Severity runs 0–3 whatever the scale's length; an unselectable 3 would be saved as 0 by a browser."""
    doc = small_document()
    doc["rubric"]["severity_scale"] = ["safe", "sensitive", "harmful"]
    version = spec_create(user=actors.policy, name="Three labels", document=doc)
    client.force_login(actors.policy)

    body = client.get(_url("category-edit", version, "violence"), headers=HX).content.decode()

    select = body[body.index('<select name="severity"'):]
    select = select[:select.index("</select>")]
    assert re.search(r'<option value="3"[^>]*selected', select)


def test_a_behaviour_badge_reads_as_words(client, actors, draft_v2):
    category_add(version=draft_v2, user=actors.policy,
                 category={"key": "medical", "name": "Medical", "severity": 1, "behavior": "comply_with_care"})
    client.force_login(actors.policy)

    body = client.get(_url("version", draft_v2)).content.decode()

    assert re.search(r'class="badge beh beh-comply_with_care"[^>]*>comply with care<', body)
