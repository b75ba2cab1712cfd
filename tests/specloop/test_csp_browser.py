"""The pages work under the Content-Security-Policy: headless Chromium counts violations on each main page.

Each page is opened with a listener for ``securitypolicyviolation`` events installed before any of its
scripts run, and Chromium's console is read too ("Refused to ..."); page errors count as well. Along the
way each page does its one live thing: the spec editor adds a category over htmx, the rater page takes a
judgment, the dashboards draw their charts, the job list's poll pauses while jobs are ticked, Swagger UI
renders the API, an error banner closes. Setup in tests/browser.py; screenshots go to test-artifacts/.
"""

import random

import pytest
import yaml
from playwright.sync_api import Page, expect

from labeling import services as labeling
from taxonomy.services import spec_create, spec_draft_create, spec_publish
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    ADMIN_PASSWORD,
    BROWSER_MARKS,
    fixture_browser,
    fixture_desktop,
    fixture_role_groups,
    login,
    screenshot,
)
from tests.labeling.test_dashboard_browser import _items, _judge
from tests.training import page_data
from training.models import TrainingJob

POLICY_PASSWORD = "pw-policy-123"  # tests/conftest.py
RATER_PASSWORD = "pw-rater-123"

pytestmark = BROWSER_MARKS

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile || location.pathname}:${e.lineNumber})`));
"""


@pytest.fixture
def page_timeout() -> int:
    return 10000  # charts and Swagger UI's 1 MB bundle


class Watched:
    """A page whose CSP violations, CSP console messages and script errors are collected."""

    def __init__(self, page: Page, base_url: str):
        self.page, self.base_url, self.problems = page, base_url, []
        page.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text or "htmx:evalDisallowedError" in text:
            self.problems.append(f"console: {text}")

    def open(self, path: str) -> Page:
        response = self.page.goto(self.base_url + path)
        header = response.headers.get("content-security-policy", "")
        policy = {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}
        assert policy.get("script-src") == ["'self'"], f"{path}: no strict CSP ({policy})"
        expect(self.page.locator("body")).to_be_visible()
        return self.page

    def assert_clean(self, where: str) -> None:
        events = self.page.evaluate("window.__csp || []")
        assert not events and not self.problems, f"{where}: {events + self.problems}"


@pytest.fixture
def watched(desktop, live_server) -> Watched:
    return Watched(desktop, live_server.url)


def charts_drawn(page: Page) -> int:
    """Waits until every visible chart canvas on the page has been drawn by Chart.js; returns how many."""
    canvases = [c for c in page.locator("canvas").all() if c.is_visible()]
    for canvas in canvases:
        page.wait_for_function("c => window.Chart && Chart.getChart(c) && c.clientHeight > 0 && c.clientWidth > 0",
                               arg=canvas.element_handle())
    return len(canvases)


@pytest.fixture
def spec_v2(actors, document):
    v1 = spec_create(user=actors.policy, name="Harm spec", document=document)
    spec_publish(spec=v1.spec, user=actors.policy)
    return spec_draft_create(spec=v1.spec, user=actors.policy)


def test_the_spec_pages_and_an_inline_edit_work_under_the_policy(watched, actors, spec_v2):
    page = watched.page
    login(page, watched.base_url, actors.policy.username, POLICY_PASSWORD)
    watched.open("/specs/")
    watched.assert_clean("spec list")

    watched.open(f"/specs/{spec_v2.spec_id}/v/{spec_v2.number}/")
    # Tree depth and budget bars are classes now: the child is indented, the bar has its width.
    indent = page.evaluate("['#cat-violence', '#cat-weapons'].map(s => parseFloat(getComputedStyle("
                           "document.querySelector(s)).paddingLeft))")
    assert indent[1] > indent[0]
    bar, cell = page.locator(".budgets .bar").first.evaluate("b => [b.offsetWidth, b.parentElement.clientWidth]")
    assert bar > 0.9 * (cell - 20)  # the one budget is the largest: w-100
    page.click("text=+ Add category")
    form = page.locator("#form-category-new")
    form.locator("#id_name").fill("Self-harm")
    form.locator("#id_key").fill("self_harm")
    form.locator("button[type=submit]").click()
    expect(page.locator("#cat-self_harm .cat-name")).to_have_text("Self-harm")
    screenshot(page, "csp-spec-version.png")
    watched.assert_clean("spec version page after an inline edit")

    watched.open(f"/specs/{spec_v2.spec_id}/diff/?from=1&to=2")
    watched.open(f"/specs/{spec_v2.spec_id}/history/")
    watched.assert_clean("spec diff and history")


def test_an_error_banner_shows_and_closes_under_the_policy(watched, actors, spec_v2):
    page = watched.page
    login(page, watched.base_url, actors.admin.username, ADMIN_PASSWORD)
    watched.open(f"/specs/{spec_v2.spec_id}/v/{spec_v2.number}/")
    url = f"/specs/{spec_v2.spec_id}/v/{spec_v2.number}/categories/new/"
    page.evaluate("url => htmx.ajax('POST', url, {source: document.body, swap: 'none'})", url)  # admin: no policy role
    banner = page.locator("#flash .flash.error")
    expect(banner).to_contain_text("policy role")
    banner.locator("button.close").click()
    expect(banner).to_have_count(0)
    watched.assert_clean("error banner")


@pytest.fixture
def campaign(actors, example_yaml):
    version = spec_create(user=actors.policy, name="Example spec", document=yaml.safe_load(example_yaml))
    version = spec_publish(spec=version.spec, user=actors.policy)
    campaign = labeling.campaign_create(user=actors.admin, name="Harm pairs, round 1", spec_version=version, overlap=2,
                                        guidelines="Prefer the reply that follows the spec.")
    labeling.campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username])
    labeling.items_import(campaign=campaign, text=_items(30), fmt="jsonl")
    return campaign


def test_the_rater_page_takes_a_judgment_under_the_policy(watched, actors, campaign):
    page = watched.page
    login(page, watched.base_url, actors.rater.username, RATER_PASSWORD)
    watched.open(f"/campaigns/{campaign.pk}/rate/")
    page.wait_for_load_state("load")  # the deferred key handlers are in place
    before = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#task")).not_to_have_attribute("data-assignment", before)
    assert campaign.judgments.filter(rater=actors.rater).count() == 1
    screenshot(page, "csp-rate.png")
    watched.assert_clean("rater page after a judgment")


def test_the_campaign_pages_draw_their_charts_under_the_policy(watched, actors, campaign):
    _judge(campaign, [(actors.rater, 0.1), (actors.rater2, 0.3)], random.Random(3), 20)
    page = watched.page
    login(page, watched.base_url, actors.admin.username, ADMIN_PASSWORD)
    watched.open("/campaigns/")
    watched.assert_clean("campaign list")

    watched.open(f"/campaigns/{campaign.pk}/")
    assert charts_drawn(page) >= 1
    watched.assert_clean("campaign page")

    watched.open(f"/campaigns/{campaign.pk}/agreement/")
    assert charts_drawn(page) >= 3  # fields, categories, per day
    screenshot(page, "csp-agreement.png")
    page.locator("#queue .queue-item .qi-action").first.click()  # the adjudication form, over htmx
    expect(page.locator("#queue form.adjudication-form")).to_be_visible()
    watched.assert_clean("agreement dashboard")


def test_the_training_model_and_export_pages_draw_their_charts_under_the_policy(watched, actors):
    shared = page_data.imported_export(actors.admin)
    running = page_data.job(actors.admin, [shared], status=TrainingJob.RUNNING, name="cost model, live", progress=0.3,
                            steps=3, kind=TrainingJob.COST_MODEL)
    page_data.series(running, 3)
    done = page_data.job(actors.admin, [shared], name="reward model baseline")
    page_data.series(done, 20)
    model = page_data.registered(done, [shared], name="reward model baseline")
    page = watched.page
    login(page, watched.base_url, actors.admin.username, ADMIN_PASSWORD)

    # The live list polls every 5 s, but skips its turn while jobs are ticked (no filter code in hx-trigger).
    watched.open("/training/")
    page.evaluate("""window.__polls = {skipped: 0, sent: 0};
        document.addEventListener('htmx:beforeRequest', e => {
          if (e.detail.elt.id === 'job-table') setTimeout(() => window.__polls[e.defaultPrevented ? 'skipped' : 'sent']++);
        });""")
    page.wait_for_function("() => window.__polls.sent >= 1", timeout=15_000)  # the poll runs every 5 s
    page.locator(f'#job-table input[name=jobs][value="{done.pk}"]').check()
    page.wait_for_function("() => window.__polls.skipped >= 1", timeout=15_000)  # the poll runs every 5 s
    expect(page.locator(f'#job-table input[name=jobs][value="{done.pk}"]')).to_be_checked()
    watched.assert_clean("training list")

    for path in (f"/training/{running.pk}/", f"/training/{done.pk}/", f"/training/compare/?jobs={done.pk}&jobs={running.pk}",
                 f"/models/{model.pk}/"):
        watched.open(path)
        assert charts_drawn(page) >= 1, f"no chart drew on {path}"
        watched.assert_clean(path)
    bars = page.locator(".acc-bar").evaluate_all("bars => bars.map(b => b.offsetWidth)")
    assert bars and all(width > 0 for width in bars)  # per-category accuracy bars keep their width
    screenshot(page, "csp-model.png")

    for path in ("/training/new/", "/models/", "/exports/"):
        watched.open(path)
        watched.assert_clean(path)


def test_the_api_docs_render_under_the_policy(watched, actors):
    page = watched.page
    login(page, watched.base_url, actors.rater.username, RATER_PASSWORD)
    watched.open("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SpecLoop API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    screenshot(page, "csp-api-docs.png")
    watched.assert_clean("API docs")


def test_the_login_and_lockout_pages_work_under_the_policy(watched, actors, settings):
    settings.AXES_FAILURE_LIMIT = 2
    page = watched.page
    for _ in range(2):
        watched.open("/login/")
        page.fill("#id_username", actors.rater.username)
        page.fill("#id_password", "wrong")
        page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Login locked")
    expect(page.locator(".flash.error")).to_contain_text("Try again in 15 minutes.")
    watched.assert_clean("login and lockout pages")
