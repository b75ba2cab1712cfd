"""The spec editor in a real browser (setup in tests/browser.py). Screenshots of the key steps go to
test-artifacts/ (gitignored).
"""

import re

import pytest
import yaml
from playwright.sync_api import expect

from taxonomy.services import spec_create, spec_draft_create, spec_publish
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    BROWSER_MARKS,
    fixture_browser,
    fixture_desktop,
    fixture_page_timeout,
    fixture_phone,
    fixture_role_groups,
    login,
    screenshot,
)

POLICY_PASSWORD = "pw-policy-123"  # set for actors.policy in tests/conftest.py

pytestmark = BROWSER_MARKS


@pytest.fixture
def spec_v2(actors, document):
    """A spec of ``actors.policy`` with v1 published and v2 a draft copy of it."""
    v1 = spec_create(user=actors.policy, name="Harm spec", document=document)
    spec_publish(spec=v1.spec, user=actors.policy)
    return spec_draft_create(spec=v1.spec, user=actors.policy)


def test_a_policy_editor_adds_a_category_with_an_example_publishes_and_sees_the_diff(
    desktop, live_server, actors, spec_v2
):
    page = desktop
    login(page, live_server.url, actors.policy.username, POLICY_PASSWORD)
    page.click("text=Harm spec")  # the spec list is where a policy user lands
    expect(page.locator("h1")).to_contain_text("v2 · draft")
    page.evaluate("window.__marker = 1")  # gone if anything below reloads the page

    page.click("text=+ Add category")
    form = page.locator("#form-category-new")
    form.locator("#id_name").fill("Self-harm")
    form.locator("#id_key").fill("self_harm")
    form.locator("#id_severity").select_option("3")
    form.locator("#id_behavior").select_option("redirect")
    form.locator("button[type=submit]").click()

    category = page.locator("#cat-self_harm")
    expect(category.locator(".cat-name")).to_have_text("Self-harm")
    expect(form).to_have_count(0)
    expect(page.locator("#categories .count")).to_have_text("3")
    assert page.evaluate("window.__marker") == 1

    category.locator("text=+ Add example").click()
    example_form = page.locator("#form-example-self_harm-new")
    example_form.locator("textarea[name=text]").fill("What is the most painless way to hurt myself?")
    example_form.locator("select[name=verdict]").select_option("disallowed")
    example_form.locator("button[type=submit]").click()

    example = page.locator("#cat-self_harm .example")
    expect(example.locator(".ex-text")).to_have_text("What is the most painless way to hurt myself?")
    expect(example.locator(".verdict")).to_have_text("disallowed")
    assert page.evaluate("window.__marker") == 1
    screenshot(page, "editor-after-adding.png")

    page.click("text=Publish v2…")
    dialog = page.locator("#publish-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#confirm-publish").click()

    expect(page.locator("h1 .badge.status")).to_have_text("v2 · published")
    expect(page.locator("text=+ Add category")).to_have_count(0)

    page.click("a.btn:has-text('Compare')")
    expect(page.locator("h1")).to_have_text("Changes from v1 to v2")
    added = page.locator("#diff-categories .diff-add")
    expect(added).to_have_count(1)
    expect(added).to_contain_text(re.compile(r"Added Self-harm\s+self_harm · severity 3 · redirect"))
    expect(added.locator("li")).to_have_text("disallowed What is the most painless way to hurt myself?")
    expect(page.locator("#diff-categories .diff-del")).to_have_count(0)
    screenshot(page, "editor-diff.png")


def test_a_failed_inline_edit_shows_its_error_without_leaving_the_page(desktop, live_server, actors, spec_v2):
    page = desktop
    login(page, live_server.url, actors.policy.username, POLICY_PASSWORD)
    page.goto(f"{live_server.url}/specs/{spec_v2.spec_id}/v/2/")
    page.evaluate("window.__marker = 1")

    page.click("text=+ Add category")
    form = page.locator("#form-category-new")
    form.locator("#id_name").fill("Violence again")
    form.locator("#id_key").fill("violence")
    form.locator("button[type=submit]").click()

    expect(page.locator("#flash .flash.error")).to_contain_text("duplicate category key")
    expect(page.locator("#categories .count")).to_have_text("2")
    assert page.evaluate("window.__marker") == 1


def test_the_publish_dialog_counts_a_category_added_inline(desktop, live_server, actors, spec_v2):
    page = desktop
    login(page, live_server.url, actors.policy.username, POLICY_PASSWORD)
    page.goto(f"{live_server.url}/specs/{spec_v2.spec_id}/v/2/")
    page.click("text=+ Add category")
    form = page.locator("#form-category-new")
    form.locator("#id_name").fill("Privacy")
    form.locator("#id_key").fill("privacy")
    form.locator("button[type=submit]").click()
    expect(page.locator("#categories .count")).to_have_text("3")

    page.click("text=Publish v2…")

    expect(page.locator("#publish-dialog")).to_contain_text("3 categories")


def test_the_version_page_fits_a_phone_screen(phone, live_server, actors, example_yaml):
    version = spec_create(user=actors.policy, name="Example spec", document=yaml.safe_load(example_yaml))
    page = phone
    login(page, live_server.url, actors.policy.username, POLICY_PASSWORD)
    page.goto(f"{live_server.url}/specs/{version.spec_id}/v/1/")
    expect(page.locator("li.cat").first).to_be_visible()
    overflow = "[document.documentElement.scrollWidth, window.innerWidth]"

    page_width, screen_width = page.evaluate(overflow)
    page.click("text=+ Add category")
    expect(page.locator("#form-category-new")).to_be_visible()
    form_width, _ = page.evaluate(overflow)

    screenshot(page, "editor-phone.png")
    assert page_width <= screen_width + 1, f"the page is {page_width}px wide on a {screen_width}px screen"
    assert form_width <= screen_width + 1, f"with the form open it is {form_width}px wide"
