"""A large import in a real browser: the upload is handed to a job and its progress bar polls until the counts show.

Headless Debian Chromium against a live server (tests/browser.py); the job runs in a background thread of
the server, as it does without a broker.
"""

import json

import pytest
from playwright.sync_api import expect

from labeling.models import Item
from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
    ADMIN_PASSWORD,
    BROWSER_MARKS,
    fixture_browser,
    fixture_desktop,
    fixture_role_groups,
    login,
    screenshot,
)
from tests.labeling.helpers import make_campaign

pytestmark = BROWSER_MARKS


@pytest.fixture
def page_timeout() -> int:
    return 15000  # the bar polls once a second until the background import ends


def test_a_large_upload_shows_a_polling_progress_bar_then_the_counts(desktop, live_server, actors, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_ASYNC_BYTES = 10_000
    settings.TRAINING_INPROCESS = "thread"
    campaign = make_campaign(actors, n_items=0)
    page = desktop
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    login(page, live_server.url, actors.admin.username, ADMIN_PASSWORD)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    lines = "\n".join(json.dumps({"prompt": f"Question {i}: " + "words " * 40, "response_a": f"yes {i}",
                                  "response_b": f"no {i}"}) for i in range(600))
    page.set_input_files("#id_file", files=[{"name": "big.jsonl", "mimeType": "application/x-ndjson",
                                            "buffer": lines.encode()}])
    page.click("#import-form button[type=submit]")

    expect(page.locator("#import-result .import-job")).to_be_attached()  # the job's element, swapped in
    expect(page.locator("#import-form [data-upload-label]")).to_have_text("Uploaded; importing in the background")
    expect(page.locator("#import-summary")).to_contain_text("600 new items · 600 tasks · 0 duplicates skipped")
    expect(page.locator("#tasks-total")).to_have_text("600")  # the progress card came along when it ended
    assert Item.objects.filter(campaign=campaign).count() == 600
    assert refused == []
    screenshot(page, "campaign-import-job.png")
