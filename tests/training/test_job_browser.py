"""The live job page in a real browser: headless Debian Chromium driven by Playwright against a live server.

An admin watches a running job (rows made by the test stand in for the worker): the progress bar, the curves
and the log tail follow as the test adds metric points and bumps the progress, without a reload; then the
admin cancels it. The training, model and export pages also fit a phone screen. Setup in tests/browser.py;
screenshots at 1280 px and 390 px go to test-artifacts/ (gitignored).
"""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

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
from training.models import JobLog, TrainingJob

from . import page_data

POLL_WAIT = 10_000  # ms: the page polls every 2 s

pytestmark = BROWSER_MARKS


@pytest.fixture
def page_timeout() -> int:
    return 10000


@pytest.fixture
def shared(actors):
    return page_data.imported_export(actors.admin)


@pytest.fixture
def running(actors, shared) -> TrainingJob:
    job = page_data.job(actors.admin, [shared], status=TrainingJob.RUNNING, name="cost model, live", progress=0.3,
                        eta_seconds=200, steps=3, kind=TrainingJob.COST_MODEL)
    page_data.series(job, 3)
    page_data.logs(job, "running on gpu-1:4242, device cuda:0; 120 pairs from 1 export(s)")
    return job


def _points(page: Page, chart: str) -> int:
    return int(page.locator(f'canvas[data-job-chart="{chart}"]').get_attribute("data-points"))


def test_an_admin_watches_a_running_job_update_and_cancels_it(desktop, live_server, actors, running):
    page = desktop
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.click(".mainnav >> text=Training")
    expect(page.locator(f'tr[data-job="{running.pk}"] .job-status')).to_have_text("running")
    page.click("text=cost model, live")
    expect(page.locator("#job-status")).to_have_text("running")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-job-chart=loss]'))")
    assert (_points(page, "loss"), _points(page, "accuracy")) == (3, 3)
    expect(page.locator("#job-progress")).to_have_attribute("value", "0.3")
    page.evaluate("window.__marker = 1")  # gone if anything below reloads the page
    screenshot(page, "job-running-1280.png")

    # The worker reports three more steps (an evaluation at step 5), a log line and progress.
    page_data.series(running, 3, start=4)
    JobLog.objects.create(job=running, message="step 5: held-out accuracy 0.7000")
    TrainingJob.objects.filter(pk=running.pk).update(progress=0.6, steps=6, eta_seconds=90, heartbeat_at=timezone.now())

    expect(page.locator("#job-progress")).to_have_attribute("value", "0.6", timeout=POLL_WAIT)
    expect(page.locator("#progress-pct")).to_have_text("60.0%")
    expect(page.locator("#job-eta")).to_have_text("1 min 30 s")
    expect(page.locator("#log-lines .log-line").last).to_contain_text("step 5: held-out accuracy 0.7000")
    expect(page.locator('canvas[data-job-chart="loss"]')).to_have_attribute("data-points", "7")  # 6 train + 1 eval
    expect(page.locator('canvas[data-job-chart="accuracy"]')).to_have_attribute("data-points", "7")
    assert page.locator("#log-lines .log-line").count() == 2  # appended, not repeated
    chart = page.evaluate("(() => { const c = Chart.getChart(document.querySelector('canvas[data-job-chart=loss]'));"
                          " return c.data.datasets.map(d => [d.label, d.data.length]); })()")
    assert chart == [["train loss", 6], ["eval loss", 1]]
    assert page.evaluate("window.__marker") == 1
    screenshot(page, "job-updated-1280.png")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-button")
    expect(page.locator("#cancel-requested")).to_be_visible()
    expect(page.locator("#cancel-button")).to_have_count(0)
    assert TrainingJob.objects.get(pk=running.pk).cancel_requested
    expect(page.locator("#log-lines .log-line").last).to_contain_text("cancel requested by ada_admin")

    # The worker stops after its step: the page shows it and stops polling.
    TrainingJob.objects.filter(pk=running.pk).update(status=TrainingJob.CANCELLED, finished_at=timezone.now())
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=POLL_WAIT)
    expect(page.locator("#job-live")).not_to_have_attribute("hx-trigger", "every 2s")
    assert page.evaluate("window.__marker") == 1
    screenshot(page, "job-cancelled-1280.png")


def _pages(actors, running, shared) -> dict[str, str]:
    done = page_data.job(actors.admin, [shared], name="reward model baseline")
    page_data.series(done, 20)
    page_data.logs(done, "queued by ada_admin", "succeeded in 300.0 s: 108 training pairs, 12 held out")
    model = page_data.registered(done, [shared], name="reward model baseline")
    cost = page_data.job(actors.admin, [page_data.campaign_export(actors)], name="cost model v1", kind="cost_model",
                         config={**page_data.CONFIG, "learning_rate": 5e-5, "sign_weight": 0.5},
                         final_metrics=page_data.metrics(0.91, kind="cost"))
    page_data.series(cost, 12, loss0=0.8)
    cost_model = page_data.registered(cost, list(cost.exports.all()), name="cost model v1", kind="cost")
    return {
        "training-list": "/training/",
        "training-new": "/training/new/",
        "job-running": f"/training/{running.pk}/",
        "job-succeeded": f"/training/{done.pk}/",
        "compare": f"/training/compare/?jobs={done.pk}&jobs={cost.pk}&jobs={running.pk}",
        "models": "/models/",
        "model-reward": f"/models/{model.pk}/",
        "model-cost": f"/models/{cost_model.pk}/",
        "exports": "/exports/",
    }


@pytest.mark.parametrize("width", [1280, 390])
def test_the_training_model_and_export_pages_fit_the_screen(browser, page_timeout, live_server, actors, running, shared,
                                                             width):
    pages = _pages(actors, running, shared)
    page = new_page(browser, width, 900 if width > 400 else 844, page_timeout)
    try:
        login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
        for name, path in pages.items():
            page.goto(live_server.url + path)
            expect(page.locator("h1")).to_be_visible()
            for canvas in page.locator("canvas").all():
                if canvas.is_visible():
                    page.wait_for_function("c => window.Chart && Chart.getChart(c) && c.clientHeight > 0", arg=canvas.element_handle())
            scroll_width, screen = page.evaluate(OVERFLOW)
            screenshot(page, f"{name}-{width}.png")
            assert scroll_width <= screen + 1, f"{name} is {scroll_width}px wide on a {screen}px screen"
    finally:
        page.context.close()


def test_an_admin_launches_a_job_from_the_form(desktop, live_server, actors, shared, monkeypatch):
    from training import services

    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)  # nothing trains here
    page = desktop
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/exports/")
    page.click(f'tr[data-export="{shared.pk}"] >> text=Train →')
    expect(page.locator(f"#export-{shared.pk}")).to_be_checked()
    page.click("details.advanced summary")
    sign_weight = page.locator('[data-setting="sign_weight"]')
    expect(sign_weight).to_be_hidden()  # a reward model does not read it
    page.check("input[name=kind][value=cost_model]")
    expect(sign_weight).to_be_visible()
    expect(page.locator("input[name=kind][value=constrained_finetune]")).to_be_disabled()
    expect(page.locator("#prompt-set-picker")).to_be_hidden()  # a cost model trains on pairs only
    page.check("input[name=kind][value=evaluation]")
    expect(page.locator("#export-picker")).to_be_hidden()
    expect(page.locator("#prompt-set-picker")).to_be_visible()
    expect(page.locator("#registry-picker")).to_be_visible()
    expect(sign_weight).to_be_hidden()
    page.check("input[name=kind][value=cost_model]")
    expect(page.locator("#export-picker")).to_be_visible()

    page.fill("#id_name", "cost from the form")
    page.fill("#id_learning_rate", "0")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("#error-learning_rate")).to_have_text("must be in (0, 1] (got 0.0)")
    expect(page.locator("input[name=kind][value=cost_model]")).to_be_checked()
    screenshot(page, "training-new-errors-1280.png")
    assert not TrainingJob.objects.exists()

    page.fill("#id_learning_rate", "3e-5")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("cost from the form")
    expect(page.locator("#job-status")).to_have_text("queued")
    job = TrainingJob.objects.get()
    assert (job.kind, job.config["learning_rate"]) == ("cost_model", 3e-5)


def test_a_bad_line_in_an_imported_file_is_named_on_the_page(desktop, live_server, actors):
    page = desktop
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/exports/")
    lines = '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a"}\n'

    page.set_input_files("#id_file", files=[{"name": "pairs.jsonl", "mimeType": "application/x-ndjson",
                                             "buffer": lines.encode()}])
    page.click("#pairs-import-form button[type=submit]")

    expect(page.locator("#import-error")).to_contain_text('line 2: a TRL line needs "prompt", "chosen" and "rejected"')
    screenshot(page, "exports-import-error-1280.png")
