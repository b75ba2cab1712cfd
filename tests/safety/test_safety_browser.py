"""The safety pages in a real browser: an admin imports a prompt set through the form (upload, then the import
job's bar until the summary) and reads its counts; the policy team opens a guard's log and sends decisions to a
campaign. Headless Debian Chromium against a live server (tests/browser.py)."""

import pytest
from playwright.sync_api import expect

from labeling import services as labeling_services
from labeling.models import Item
from safety import services
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    ADMIN_PASSWORD,
    BROWSER_MARKS,
    fixture_browser,
    fixture_desktop,
    fixture_role_groups,
    login,
    screenshot,
)

from .conftest import SMALL_CATEGORIES
from .helpers import FakeClassifier, make_guard, register_classifier, small_version

pytestmark = BROWSER_MARKS


@pytest.fixture
def page_timeout() -> int:
    return 15000  # the import bar polls once a second until the background job ends


def refusals(page) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    return refused


def test_an_admin_imports_a_csv_prompt_set_and_reads_its_counts(desktop, live_server, actors, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRAINING_INPROCESS = "thread"  # the job runs beside the server, as without a broker
    version = small_version(actors.policy, categories=[
        {"key": "violence", "name": "Violence", "description": "", "parent": None, "severity": 3,
         "behavior": "refuse", "examples": [], "crosswalk": {"harmbench": ["illegal"]}}], budgets={})
    page = desktop
    refused = refusals(page)
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/safety/")
    page.fill("#id_name", "HarmBench head")
    page.select_option("#id_spec_version", str(version.pk))
    csv = "Behavior,SemanticCategory\nSteal a car,illegal\nPick a lock,illegal\nCopy a book,copyright\n"
    page.set_input_files("#id_file", files=[{"name": "harmbench.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    page.select_option("#id_label", "unsafe")
    page.click("#import details summary")
    page.fill("#id_prompt_column", "Behavior")
    page.fill("#id_code_column", "SemanticCategory")
    page.fill("#id_taxonomy", "harmbench")
    page.click("#import-form button[type=submit]")

    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("3 prompts")
    expect(summary).to_contain_text("1 codes mapped to none")
    summary.get_by_role("link", name="HarmBench head").click()
    expect(page.locator("#by-category")).to_contain_text("Violence")
    expect(page.locator("#by-category tbody td.num")).to_have_text(["2", "0", "2", "0"])  # prompts; safe, unsafe, unknown
    expect(page.locator("#unmapped")).to_contain_text("harmbench:copyright")
    expect(page.locator("#sample tbody tr")).to_have_count(3)
    assert refused == []
    screenshot(page, "safety-prompt-set.png")


def test_policy_opens_the_guard_log_and_sends_decisions_to_a_campaign(desktop, live_server, actors, settings, tmp_path,
                                                                      monkeypatch):
    from training.ml.safety import build_tiny_classifier

    settings.MEDIA_ROOT = tmp_path / "media"
    version = small_version(actors.policy)
    folder = build_tiny_classifier(tmp_path / "media" / "models" / "tiny", SMALL_CATEGORIES)
    guard = make_guard(actors, version, register_classifier(actors, folder, spec_version=version), log_decisions=True)
    fake = FakeClassifier(SMALL_CATEGORIES, {"ambush him": {"prompt_harmful": 0.9, "categories": {"violence": 0.9},
                                                            "response_harmful": 0.9}})
    monkeypatch.setattr(services, "classifier_get", lambda model: fake)
    services.guard_score(guard=guard, user=actors.admin, items=[
        {"prompt": "ambush him", "response": "Here is a plan"}, {"prompt": "ambush him", "response": "I won't help"},
        {"prompt": "bake bread", "response": "Knead it"}])
    campaign = labeling_services.campaign_create(user=actors.admin, name="Runtime failures", spec_version=version)
    page = desktop
    refused = refusals(page)
    login(page, live_server.url, actors.policy.username, "pw-policy-123")
    page.goto(f"{live_server.url}/safety/guards/")
    page.get_by_role("link", name=guard.name).click()
    rows = page.locator("table.decisions tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#log .section-head")).to_contain_text("block 2")
    page.select_option("#log-filter select", "block")
    page.click("#log-filter button")
    expect(rows).to_have_count(2)
    for box in page.locator("table.decisions input[type=checkbox]").all():
        box.check()
    page.select_option("#id_campaign", str(campaign.pk))
    page.click("#send-form button[type=submit]")
    expect(page.locator("#send-summary")).to_contain_text("Sent 2 decisions")
    assert Item.objects.get(campaign=campaign).prompt == "ambush him"
    assert refused == []
    screenshot(page, "safety-guard-log.png")
