"""The rater page in a real browser (setup in tests/browser.py). Screenshots go to test-artifacts/ (gitignored)."""

import json
import re

import pytest
import yaml
from playwright.sync_api import Page, expect

from labeling import services
from labeling.models import Assignment, Judgment
from taxonomy.services import spec_create, spec_publish
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

RATER_PASSWORD = "pw-rater-123"  # set for actors.rater in tests/conftest.py
ADMIN_PASSWORD = "pw-admin-123"

pytestmark = BROWSER_MARKS

LONG_REPLY = "\n".join(
    f"{n}. Step {n}: keep the blade at about 15–20 degrees and draw it across the stone, tip to heel." for n in range(1, 41)
)
ITEMS = [
    {"prompt": "How do I sharpen a kitchen knife?\nI have a whetstone.", "response_a": "Soak the stone first.\n\nThen:\n- coarse side\n- fine side",
     "response_b": LONG_REPLY},
    {"prompt": "Tell me a joke about <b>cats</b>.", "response_a": "Why did the cat sit on the computer? To keep an eye on the mouse.",
     "response_b": "I'd rather not."},
    {"prompt": "What is the capital of France?", "response_a": "Paris.", "response_b": "Lyon, since 1999."},
    {"prompt": "How much paracetamol is too much?", "response_a": "Over 4 g a day for an adult can damage the liver; ask a pharmacist.",
     "response_b": "Take as many as you like."},
    {"prompt": "Write a haiku about rain.", "response_a": "Soft rain on the roof\nthe kettle hums in the dark\nnobody is late",
     "response_b": "Rain. Rain. Rain. Rain."},
]


@pytest.fixture
def campaign(actors, example_yaml):
    """A campaign on the example spec (33 categories), five items, ``actors.rater`` assigned."""
    version = spec_create(user=actors.policy, name="Example spec", document=yaml.safe_load(example_yaml))
    version = spec_publish(spec=version.spec, user=actors.policy)
    campaign = services.campaign_create(
        user=actors.admin, name="Knife and kitchen round", spec_version=version, overlap=2,
        guidelines="Prefer the reply that helps safely.\nWhen you cannot judge a reply, skip it and say why.",
    )
    services.items_import(campaign=campaign, text="\n".join(json.dumps(i) for i in ITEMS), fmt="jsonl")
    services.campaign_raters_add(campaign=campaign, usernames=[actors.rater.username])
    return campaign


def _log_in(page: Page, base_url: str, username: str, password: str) -> None:
    login(page, base_url, username, password)
    page.wait_for_load_state("load")  # the page's deferred scripts (and their key handlers) have run


def _next_task(page: Page, before: str) -> None:
    expect(page.locator("#task")).not_to_have_attribute("data-assignment", before)


def test_a_rater_labels_three_tasks_and_skips_one_with_the_keyboard_and_the_admin_sees_the_judgments(
    desktop, live_server, actors, campaign
):
    page = desktop
    _log_in(page, live_server.url, actors.rater.username, RATER_PASSWORD)
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/rate/$"))  # the login lands on a task
    page.evaluate("window.__marker = 1")  # gone if anything below reloads the page
    screenshot(page, "rate-desktop.png", full_page=False)

    before = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("Enter")  # no preference yet: a hint, no request
    expect(page.locator("#pref-hint")).to_be_visible()
    expect(page.locator("#task")).to_have_attribute("data-assignment", before)

    for key in ["2", "5", "3"]:
        before = page.locator("#task").get_attribute("data-assignment")
        page.keyboard.press(key)
        expect(page.locator(f"input[name=preference][data-key='{key}']")).to_be_checked()
        page.keyboard.press("Enter")
        _next_task(page, before)
    expect(page.locator("#my-work [data-stat=judged]")).to_have_text("3 judged")

    before = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("s")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.type("I cannot judge medical doses")
    screenshot(page, "rate-skip.png", full_page=False)
    page.keyboard.press("Enter")
    _next_task(page, before)
    expect(page.locator("#my-work [data-stat=skipped]")).to_have_text("1 skipped")
    assert page.evaluate("window.__marker") == 1

    judgments = Judgment.objects.filter(rater=actors.rater).order_by("id")
    assert [j.preference for j in judgments] == [-1, 2, 0]
    assert all(j.seconds is not None and j.seconds < 60 for j in judgments)
    assert Assignment.objects.get(rater=actors.rater, status="skipped").skip_reason == "I cannot judge medical doses"

    page.context.clear_cookies()
    _log_in(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/agreement/")
    row = page.locator("#rater-table tr", has_text=actors.rater.username)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(re.compile(r"\b3\b"))


def test_categories_severity_and_axes_go_in_with_the_keyboard_and_the_guidelines_are_one_key_away(
    desktop, live_server, actors, campaign
):
    page = desktop
    _log_in(page, live_server.url, actors.rater.username, RATER_PASSWORD)

    reply_b = page.locator(".reply-b")
    reply_b.locator(".chip-filter").fill("self")  # the filter narrows 33 chips to the matching ones
    expect(reply_b.locator(".cat-chip:visible")).to_have_count(1)
    reply_b.locator(".cat-chip:visible input").focus()
    page.keyboard.press("Space")
    expect(reply_b.locator("[data-chip-count]")).to_have_text("1")
    reply_b.locator("input[name=severity_b][value='2']").focus()
    page.keyboard.press("Space")
    reply_b.locator("input[name=axis_b_helpful][value='0']").focus()
    page.keyboard.press("Space")

    page.keyboard.press("2")
    screenshot(page, "rate-filled.png")
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_contain_text("When you cannot judge a reply, skip it")
    expect(page.locator("#guide-self_harm")).to_contain_text("disallowed")
    screenshot(page, "rate-guidelines.png", full_page=False)
    page.keyboard.press("Escape")
    expect(page.locator("#guidelines")).to_be_hidden()

    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    screenshot(page, "rate-help.png", full_page=False)
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_hidden()

    before = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("4")  # changes the preference chosen above
    page.keyboard.press("Enter")
    _next_task(page, before)

    judgment = Judgment.objects.get()
    assert judgment.preference == 1
    assert judgment.categories == {"a": [], "b": ["self_harm"]}
    assert judgment.severity == {"a": None, "b": 2}  # left unset, like the axes
    assert judgment.axes == {"helpful": {"a": None, "b": 0}}


def test_long_replies_scroll_on_their_own_and_a_failed_submit_keeps_the_form(desktop, live_server, actors, campaign):
    page = desktop
    _log_in(page, live_server.url, actors.rater.username, RATER_PASSWORD)
    a, b = page.locator(".reply-a .reply-text"), page.locator(".reply-b .reply-text")
    long_box = b if "Step 40" in b.inner_text() else a
    assert long_box.evaluate("el => el.scrollHeight > el.clientHeight + 50")  # the long reply scrolls inside its box
    assert long_box.evaluate("el => getComputedStyle(el).overflowY") == "auto"
    assert a.bounding_box()["y"] == b.bounding_box()["y"]  # side by side

    Assignment.objects.filter(rater=actors.rater).update(status="judged")  # someone else finished it meanwhile
    page.keyboard.press("1")
    page.locator("#rationale").fill("A is safer")
    page.locator("#rationale").press("Control+Enter")

    expect(page.locator("#flash .flash.error")).to_contain_text("already judged")
    expect(page.locator("#rationale")).to_have_value("A is safer")
    expect(page.locator("input[name=preference][data-key='1']")).to_be_checked()
    screenshot(page, "rate-error.png", full_page=False)


def test_the_rate_page_fits_a_phone_with_the_replies_stacked(phone, live_server, actors, campaign):
    page = phone
    _log_in(page, live_server.url, actors.rater.username, RATER_PASSWORD)
    a, b = page.locator(".reply-a"), page.locator(".reply-b")
    box_a, box_b = a.bounding_box(), b.bounding_box()
    page_width, screen_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    screenshot(page, "rate-phone.png")
    assert box_b["y"] >= box_a["y"] + box_a["height"]  # B below A
    assert page_width <= screen_width + 1, f"the page is {page_width}px wide on a {screen_width}px screen"
