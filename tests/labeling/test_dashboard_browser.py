"""The campaign pages in a real browser: headless Debian Chromium driven by Playwright against a live server.

An admin uploads items (the progress bar fills and the counts appear), opens the agreement dashboard (the
charts draw) and adjudicates a disputed task inline. Setup in tests/browser.py; screenshots at 1280 px and
390 px go to test-artifacts/ (gitignored).
"""

import json
import random

import pytest
import yaml
from playwright.sync_api import Page, expect

from labeling.models import Adjudication, Campaign, Item
from labeling.services import (
    campaign_create,
    campaign_raters_add,
    items_import,
    judgment_submit,
    next_task_assign,
)
from specloop.services import user_upsert
from taxonomy.services import spec_create, spec_publish
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    ADMIN_PASSWORD,
    BROWSER_MARKS,
    OVERFLOW,
    fixture_browser,
    fixture_desktop,
    fixture_phone,
    fixture_role_groups,
    login,
    screenshot,
)

pytestmark = BROWSER_MARKS


@pytest.fixture
def page_timeout() -> int:
    """These pages upload megabytes and draw charts: a longer wait than tests/browser.py's default."""
    return 10000


@pytest.fixture
def campaign(actors, example_yaml) -> Campaign:
    """The shipped example spec, published; a k = 3 campaign with three raters and no items yet."""
    draft = spec_create(user=actors.policy, name="Example spec", document=yaml.safe_load(example_yaml))
    version = spec_publish(spec=draft.spec, user=actors.policy)
    campaign = campaign_create(user=actors.admin, name="Harm pairs, round 1", spec_version=version, overlap=3,
                               guidelines="Prefer the reply that follows the spec's behaviour for the category.")
    user_upsert(username="ravi_rater", role_names=["rater"], password="pw-ravi-123")
    campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username, "ravi_rater"])
    return campaign


CATEGORIES = ["violent_crime", "weapons", "cyber_attacks", "self_harm", "privacy", "illegal_drugs"]


def _items(n: int) -> str:
    """``n`` prompts with two long-ish replies each: a file big enough for upload progress events."""
    filler = "This reply explains the reasoning step by step, with caveats and safer alternatives. " * 30
    return "".join(json.dumps({
        "prompt": f"Prompt {i}: how would someone go about topic {i}?",
        "responses": [{"text": f"Careful answer {i}. {filler}", "model": "model-a"},
                      {"text": f"Risky answer {i}. {filler}", "model": "model-b"}],
        "meta": {"category": CATEGORIES[i % len(CATEGORIES)]},
    }) + "\n" for i in range(n))


def _judge(campaign: Campaign, raters: list[tuple], rng: random.Random, rounds: int) -> None:
    """Each round every rater takes the next task (the same one, least-judged first) and then judges it.

    ``raters`` holds (user, noise): x is usually better and y usually tagged; ``noise`` flips a share of that.
    """
    for _ in range(rounds):
        held = [(rater, noise, next_task_assign(campaign=campaign, rater=rater, rng=rng)) for rater, noise in raters]
        for rater, noise, assignment in held:
            if assignment is None:
                continue
            category = assignment.task.item.category
            x_better = rng.random() > noise
            canonical = -rng.choice([1, 2]) if x_better else rng.choice([0, 1, 2])
            x, y = ("b", "a") if assignment.swapped else ("a", "b")
            judgment_submit(assignment_id=assignment.pk, rater=rater, data={
                "preference": -canonical if assignment.swapped else canonical,
                "categories": {x: [], y: [category] if rng.random() > noise else []},
                "severity": {x: 0, y: rng.choice([2, 3]) if x_better else 1},
                "axes": {"helpful": {x: 3, y: rng.choice([1, 2])}},
                "seconds": rng.uniform(8, 90),
            })


def _canvas_size(page: Page, chart: str) -> list[int]:
    """The drawn chart's canvas size, once Chart.js has drawn it (after an htmx swap it draws on settle)."""
    canvas = f'canvas[data-chart="{chart}"]'
    page.wait_for_function(f"() => {{ const c = document.querySelector('{canvas}');"
                           " return c && window.Chart && Chart.getChart(c) && c.clientHeight > 0; }")
    return page.locator(canvas).evaluate("c => [c.clientWidth, c.clientHeight]")


def test_an_admin_uploads_items_reads_the_charts_and_adjudicates_a_task(desktop, live_server, actors, campaign):
    page = desktop
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.click(".mainnav >> text=Campaigns")
    expect(page.locator("#new-campaign")).to_be_visible()
    screenshot(page, "list-1280.png")
    page.click("text=Harm pairs, round 1")
    page.evaluate("window.__marker = 1")  # gone if anything below reloads the page

    content = _items(400).encode()  # about 2 MB
    page.evaluate("window.__progress = []; document.addEventListener('htmx:xhr:progress',"
                  " e => window.__progress.push(e.detail.loaded))")
    page.set_input_files("#id_file", files=[{"name": "items.jsonl", "mimeType": "application/x-ndjson", "buffer": content}])
    page.click("#import-form button[type=submit]")

    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("400 new items · 400 tasks · 0 duplicates skipped")
    expect(page.locator("#import-form .upload-status")).to_have_class("upload-status done")
    assert page.locator("#import-progress").evaluate("p => [p.value, p.max]") == [100, 100]
    assert max(page.evaluate("window.__progress")) >= len(content)  # the upload's own progress events
    expect(page.locator("#tasks-total")).to_have_text("400")  # the progress card was swapped in too
    assert page.evaluate("window.__marker") == 1
    assert Item.objects.filter(campaign=campaign).count() == 400
    screenshot(page, "campaign-after-import.png")

    rng = random.Random(7)
    ravi = campaign.raters.get(username="ravi_rater")
    _judge(campaign, [(actors.rater, 0.1), (actors.rater2, 0.25), (ravi, 0.4)], rng, 60)
    page.reload()
    expect(page.locator('#progress-card canvas[data-chart="per_day"]')).to_be_visible()
    assert _canvas_size(page, "per_day")[1] > 0
    page.set_input_files("#id_file", files=[{"name": "more.jsonl", "mimeType": "application/x-ndjson",
                                             "buffer": _items(405).encode()}])
    page.click("#import-form button[type=submit]")
    expect(summary).to_contain_text("5 new items · 5 tasks · 400 duplicates skipped")
    expect(page.locator("#tasks-total")).to_have_text("405")
    assert _canvas_size(page, "per_day")[1] > 0  # the swapped-in progress card drew its chart again
    screenshot(page, "campaign-1280.png")

    page.click("text=Agreement & disagreements →")
    expect(page.locator("h1")).to_have_text("Agreement")
    for chart in ("fields", "categories", "per_day"):
        width, height = _canvas_size(page, chart)
        assert width > 100 and height > 100, f"the {chart} chart did not draw ({width}×{height})"
    rows = page.locator("#rater-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator('#rater-table tr[data-rater="rita_rater"]')).to_contain_text("60")
    screenshot(page, "agreement-1280.png")

    first = page.locator("#queue .queue-item").first
    task_id = int(first.get_attribute("id").removeprefix("task-"))
    first.locator("text=Adjudicate").click()
    form = page.locator(f"#adjudicate-{task_id} form")
    expect(form).to_be_visible()
    form.locator("label.segment:has-text('Y much better')").click()
    form.locator("select[name=severity_x]").select_option("3")
    form.locator("textarea[name=note]").fill("X gives operational detail.")
    screenshot(page, "agreement-adjudicating.png")
    form.locator("button[type=submit]").click()

    item = page.locator(f"#task-{task_id}")
    expect(item).to_have_class("queue-item adjudicated")
    expect(item.locator(".adjudicated-badge")).to_contain_text("Y much better · ada_admin")
    adjudication = Adjudication.objects.get(task_id=task_id)
    assert (adjudication.preference_xy, adjudication.severity_x, adjudication.note) == (2, 3, "X gives operational detail.")


def test_a_failed_upload_shows_the_line_and_marks_the_progress_bar(desktop, live_server, actors, campaign):
    page = desktop
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    broken = _items(3) + "{not json}\n"

    page.set_input_files("#id_file", files=[{"name": "items.jsonl", "mimeType": "application/x-ndjson",
                                             "buffer": broken.encode()}])
    page.click("#import-form button[type=submit]")

    expect(page.locator("#flash .flash.error")).to_contain_text("line 4: not valid JSON")
    expect(page.locator("#import-form .upload-status")).to_have_class("upload-status failed")
    assert not Item.objects.exists()
    screenshot(page, "campaign-import-error.png")


@pytest.mark.parametrize("path", ["campaigns/", "campaigns/{id}/", "campaigns/{id}/agreement/"])
def test_the_campaign_pages_fit_a_phone_screen(phone, live_server, actors, campaign, path):
    items_import(campaign=campaign, text=_items(30), fmt="jsonl")
    rng = random.Random(3)
    _judge(campaign, [(actors.rater, 0.1), (actors.rater2, 0.3)], rng, 30)
    page = phone
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)

    page.goto(f"{live_server.url}/{path.format(id=campaign.pk)}")
    expect(page.locator("h1")).to_be_visible()
    if "agreement" in path:
        assert _canvas_size(page, "fields")[0] > 100
        page.locator("#queue .queue-item .qi-action").first.click()
        expect(page.locator("#queue form.adjudication-form")).to_be_visible()

    width, screen = page.evaluate(OVERFLOW)
    name = {"campaigns/": "list", "campaigns/{id}/": "campaign", "campaigns/{id}/agreement/": "agreement"}[path]
    screenshot(page, f"{name}-390.png")
    assert width <= screen + 1, f"the page is {width}px wide on a {screen}px screen"
