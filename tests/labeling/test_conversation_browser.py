"""A long multi-turn conversation and an empty reply in a real browser (setup in tests/browser.py): the turn both
replies answer is in view without scrolling, on a laptop and on a phone, on the rater page and in the
disagreement queue. Screenshots go to test-artifacts/ (gitignored)."""

import json

import pytest
from playwright.sync_api import Page, expect

from labeling import services
from labeling.models import Item
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    BROWSER_MARKS,
    OVERFLOW,
    fixture_browser,
    fixture_page_timeout,
    fixture_role_groups,
    login,
    new_page,
    screenshot,
)
from tests.labeling.helpers import judge, published_version

pytestmark = BROWSER_MARKS

RATER_PASSWORD = "pw-rater-123"  # set for actors.rater in tests/conftest.py
ADMIN_PASSWORD = "pw-admin-123"
EMPTY_MARK = "(empty reply — the model said nothing)"
VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}


def _turn(n: int, speaker: str) -> str:
    sentences = " ".join(f"Point {k} of turn {n}: keep the blade at a steady angle, light pressure, the whole length of"
                         " the edge, then check it against the light." for k in range(1, 6))
    return f"{speaker}: {sentences}"


def conversation(final: str) -> str:
    """Twelve long turns (human and assistant by turns), then the human's question both replies answer."""
    turns = [_turn(n, "Human" if n % 2 else "Assistant") for n in range(1, 13)]
    return "\n\n".join([*turns, f"Human: {final} Which stone should I buy first, and how do I tell that the edge is"
                                 " sharp enough to stop? I have about forty euros and a small flat."])


@pytest.fixture
def campaign(actors):
    """Two long conversations, each with one empty reply (the first reply of one, the second of the other)."""
    version = published_version(actors.policy)
    campaign = services.campaign_create(user=actors.admin, name="Long talks", spec_version=version, overlap=2)
    rows = [{"prompt": conversation(f"FINAL-{n}."), "response_a": f"Buy a 1000/6000 combination stone ({n}).",
             "response_b": f"Start with a honing rod ({n})."} for n in (1, 2)]
    services.items_import(campaign=campaign, text="\n".join(json.dumps(r) for r in rows), fmt="jsonl")
    for n, item in enumerate(Item.objects.filter(campaign=campaign).order_by("id")):
        item.responses[n]["text"] = ""  # what an import may keep: the model said nothing
        item.save(update_fields=["responses"])
    services.campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username])
    return campaign


@pytest.fixture(params=list(VIEWPORTS))
def screen(request, browser, page_timeout):
    width, height = VIEWPORTS[request.param]
    page = new_page(browser, width, height, page_timeout)
    page.name = request.param
    yield page
    page.context.close()


# Where an element is: inside the viewport, inside every box around it that clips (scroll boxes), not covered
# by anything (the sticky decision bar), and not scrolling inside itself.
WHERE = """el => {
  const r = el.getBoundingClientRect();
  const clippedBy = [];
  for (let p = el.parentElement; p; p = p.parentElement) {
    if (!/auto|scroll|hidden/.test(getComputedStyle(p).overflowY)) continue;
    const b = p.getBoundingClientRect();
    if (r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5) clippedBy.push(p.className || p.tagName);
  }
  const points = [[r.left + 6, r.top + 6], [r.right - 6, r.top + 6], [r.left + 6, r.bottom - 6], [r.right - 6, r.bottom - 6]];
  const covered = points.filter(([x, y]) => !el.contains(document.elementFromPoint(x, y)));
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: innerWidth, height: innerHeight,
          clippedBy, covered: covered.length, ownScroll: el.scrollHeight > el.clientHeight + 1};
}"""


def assert_in_view(locator) -> None:
    where = locator.evaluate(WHERE)
    assert where["top"] >= 0 and where["bottom"] <= where["height"], where
    assert where["left"] >= 0 and where["right"] <= where["width"], where
    assert not where["clippedBy"] and not where["covered"] and not where["ownScroll"], where


def assert_conversation_shown(page: Page, root: str, final: str) -> None:
    """The last turn whole and in view, the earlier ones above it in a box that opens on the latest of them."""
    convo = page.locator(f"{root} .convo")
    last = convo.locator(".turn-last")
    expect(last).to_contain_text(final)
    expect(last.locator(".speaker")).to_contain_text("Human")
    assert_in_view(last)
    expect(convo.locator(".convo-hint")).to_have_text("↑ 12 earlier turns above")
    box = convo.locator(".convo-earlier")
    expect(box.locator(".turn")).to_have_count(12)
    expect(box.locator(".turn .speaker").first).to_have_text("Human")
    expect(box.locator(".turn .speaker").last).to_have_text("Assistant")
    assert box.evaluate("el => el.scrollHeight > el.clientHeight + 100")  # there is more above to scroll to
    latest, box_rect = box.locator(".turn").last.bounding_box(), box.bounding_box()
    box_bottom = box_rect["y"] + box_rect["height"]
    assert box_rect["y"] < latest["y"] + latest["height"] <= box_bottom + 1  # it opens on the end of the latest one
    label = box.locator(".turn").last.locator(".speaker").bounding_box()  # whose words they are stays in sight
    assert box_rect["y"] <= label["y"] and label["y"] + label["height"] <= box_bottom
    first = box.locator(".turn").first.bounding_box()
    assert first["y"] + first["height"] <= box_rect["y"]  # the start of the talk is above, scrolled away


def test_the_rater_sees_the_last_human_turn_of_a_long_conversation_and_the_empty_reply_marked(
    screen, live_server, actors, campaign
):
    page = screen
    login(page, live_server.url, actors.rater.username, RATER_PASSWORD)
    page.wait_for_load_state("load")
    for n in range(2):  # the first task as the page loads, the second as htmx swaps it in
        final = page.locator("#task .turn-last").inner_text().split("FINAL-")[1][:2]
        assert_conversation_shown(page, "#task", f"FINAL-{final}")
        expect(page.locator("#prompt-title")).to_have_text("Conversation · 13 turns")
        empty = page.locator("#task .reply .empty-reply")
        expect(empty).to_have_count(1)
        expect(empty).to_have_text(EMPTY_MARK)
        expect(empty).to_be_visible()
        screenshot(page, f"rate-conversation-{page.name}-{n}.png", full_page=False)
        assert page.evaluate(OVERFLOW)[0] <= page.evaluate(OVERFLOW)[1] + 1  # nothing wider than the screen
        before = page.locator("#task").get_attribute("data-assignment")
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        expect(page.locator("#task")).not_to_have_attribute("data-assignment", before)
    expect(page.locator("#task .all-done")).to_be_visible()


def test_the_disagreement_queue_shows_the_last_human_turn_and_the_empty_reply_marked(
    screen, live_server, actors, campaign
):
    for rater, prefer_x in [(actors.rater, -2), (actors.rater2, 2)] * 2:
        judge(campaign, rater, prefer_x=prefer_x)
    page = screen
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/agreement/")
    items = page.locator("#queue .queue-item")
    expect(items).to_have_count(2)
    item = items.first
    item.evaluate("el => el.scrollIntoView({block: 'start'})")
    assert_conversation_shown(page, f"#{item.get_attribute('id')}", "FINAL-")
    empty = item.locator(".qi-replies .empty-reply")
    expect(empty).to_have_text(EMPTY_MARK)
    expect(empty).to_be_visible()
    screenshot(page, f"queue-conversation-{page.name}.png", full_page=False)
