"""An evaluation in a real browser: an admin picks the kind, a prompt set and the safety classifier on the launch
form, the job runs (in-process here), and the job page shows the per-category table with its budget marks; the
phone width fits. Headless Debian Chromium against a live server (tests/browser.py)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    ADMIN_PASSWORD,
    BROWSER_MARKS,
    OVERFLOW,
    fixture_browser,
    fixture_desktop,
    fixture_role_groups,
    login,
    new_page,
    screenshot,
)
from training.models import TrainingJob

from .safety_data import learnable_rows, prompt_set, published_version, registered_classifier

pytestmark = BROWSER_MARKS


@pytest.fixture
def page_timeout() -> int:
    return 30000  # the launch runs the tiny evaluation inside the request


def test_an_admin_launches_an_evaluation_from_the_form_and_reads_the_per_category_table(
        desktop, browser, page_timeout, live_server, actors, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    version = published_version(actors.policy)
    probes = prompt_set(actors.admin, version, learnable_rows(24), name="answered probes")
    classifier = registered_classifier(actors.admin, version, name="tiny guard model")
    page = desktop
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/training/new/")

    page.check("input[name=kind][value=evaluation]")
    expect(page.locator("#export-picker")).to_be_hidden()
    page.check(f"#prompt-set-{probes.pk}")
    page.select_option("#id_safety_classifier", str(classifier.pk))
    page.check("#id_use_responses")
    page.fill("#id_name", "given replies")
    page.click("#launch-form button[type=submit]")

    expect(page.locator("h1")).to_have_text("given replies")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    table = page.locator("#eval-categories")
    expect(table.locator('tr[data-category="violence"] td').first).to_contain_text("Violence")
    expect(table.locator('tr[data-category="violence"] [data-mark]')).to_have_attribute(
        "data-mark", re.compile("over|unsure|under"))
    expect(page.locator("#eval-labels tr[data-label=safe]")).to_contain_text("over-refusal")
    expect(page.locator("#items-download")).to_be_visible()
    job = TrainingJob.objects.get(kind="evaluation")
    assert job.status == "succeeded" and job.final_metrics["by_category"]["violence"]["n"] == 12
    assert refused == []
    screenshot(page, "training-evaluation-1280.png")

    phone = new_page(browser, 390, 844, page_timeout)
    try:
        login(phone, live_server.url, actors.admin.username, ADMIN_PASSWORD)
        phone.goto(f"{live_server.url}/training/{job.pk}/")
        expect(phone.locator("#eval-categories")).to_be_visible()
        scroll_width, screen = phone.evaluate(OVERFLOW)
        screenshot(phone, "training-evaluation-390.png")
        assert scroll_width <= screen + 1, f"the evaluation page is {scroll_width}px wide on a {screen}px screen"
    finally:
        phone.context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_evaluation_compare_and_safety_model_pages_fit_the_screen(browser, page_timeout, live_server, actors,
                                                                      settings, tmp_path, width):
    from tests.rewardmodels.test_safety_model_page import safety_metrics
    from training.ml.evaluation import aggregate

    from . import page_data
    from .test_evaluation_pages import SPEC, items

    settings.MEDIA_ROOT = tmp_path / "media"
    version = published_version(actors.policy)
    probes = prompt_set(actors.admin, version, learnable_rows(8), name="spec probes")
    jobs = []
    for n, (harmful, refused) in enumerate(((4, 1), (0, 3))):
        job = page_data.job(actors.admin, [], name=f"evaluation {n}", kind=TrainingJob.EVALUATION, config={},
                            final_metrics=aggregate(items(harmful_violence=harmful, refused_safe=refused), SPEC))
        job.prompt_sets.set([probes])
        jobs.append(job)
    classifier = registered_classifier(actors.admin, version, name="tiny guard model")
    classifier.metrics = safety_metrics()
    classifier.save()
    pages = {"training-evaluation-compare": f"/training/compare/?jobs={jobs[0].pk}&jobs={jobs[1].pk}",
             "model-safety": f"/models/{classifier.pk}/", "training-new-evaluation": "/training/new/?kind=evaluation"}
    page = new_page(browser, width, 900 if width > 400 else 844, page_timeout)
    try:
        login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
        for name, path in pages.items():
            page.goto(live_server.url + path)
            expect(page.locator("h1")).to_be_visible()
            scroll_width, screen = page.evaluate(OVERFLOW)
            screenshot(page, f"{name}-{width}.png")
            assert scroll_width <= screen + 1, f"{name} is {scroll_width}px wide on a {screen}px screen"
    finally:
        page.context.close()


def test_an_admin_imports_a_prompt_set_evaluates_it_and_policy_opens_the_guard_log(
        desktop, browser, page_timeout, live_server, actors, settings, tmp_path):
    """The issue's whole walk: import through the form, launch an evaluation of the new set from the launch form,
    read its per-category table; then the policy editor opens the guard's decision log."""
    import json

    from safety import services as safety_services
    from safety.models import PromptSet

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRAINING_INPROCESS = "sync"  # the import and the evaluation run inside their requests
    version = published_version(actors.policy)
    classifier = registered_classifier(actors.admin, version, name="tiny guard model")
    guard = safety_services.guard_create(user=actors.admin, name="chat guard", safety_classifier=classifier,
                                         spec_version=version, log_decisions=True)
    safety_services.guard_score(guard=guard, user=actors.admin, items=[
        {"prompt": "how do i attack a guard", "response": "Here is how."}, {"prompt": "how do i bake bread"}])
    page = desktop
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)

    page.goto(f"{live_server.url}/safety/")
    page.fill("#id_name", "imported probes")
    page.select_option("#id_spec_version", str(version.pk))
    body = "".join(json.dumps(row) + "\n" for row in learnable_rows(16)).encode()
    page.set_input_files("#id_file", files=[{"name": "probes.jsonl", "mimeType": "application/x-ndjson",
                                            "buffer": body}])
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-summary")).to_contain_text("16 prompts")
    imported = PromptSet.objects.get(name="imported probes")
    assert imported.by_label["safe"] == 8 and imported.by_label["unsafe"] == 8

    page.goto(f"{live_server.url}/training/new/")
    page.check("input[name=kind][value=evaluation]")
    page.check(f"#prompt-set-{imported.pk}")
    page.select_option("#id_safety_classifier", str(classifier.pk))
    page.check("#id_use_responses")
    page.fill("#id_name", "imported probes, given replies")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("imported probes, given replies")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    row = page.locator('#eval-categories tr[data-category="violence"]')
    expect(row.locator("td").first).to_contain_text("Violence")
    expect(row.locator("[data-mark]")).to_have_attribute("data-mark", re.compile("over|unsure|under"))
    job = TrainingJob.objects.get(name="imported probes, given replies")
    assert job.final_metrics["by_category"]["violence"]["n"] == 8 and list(job.prompt_sets.all()) == [imported]

    page.context.clear_cookies()  # log the admin out
    login(page, live_server.url, actors.policy.username, "pw-policy-123")
    page.goto(f"{live_server.url}/safety/guards/")
    page.get_by_role("link", name="chat guard").click()
    expect(page.locator("table.decisions tbody tr")).to_have_count(2)
    expect(page.locator("table.decisions")).to_contain_text("how do i bake bread")
    assert refused == []
    screenshot(page, "safety-loop-guard-log.png")
