"""Shared setup for the browser tests: headless Debian Chromium driven by Playwright against a live server.

No browser is downloaded; the tests skip when /usr/bin/chromium is missing. Screenshots go to
test-artifacts/ (gitignored).

A browser test module imports what it uses; fixtures only apply in the modules that import them, so each
imports the ones it needs (the autouse ``role_groups`` always) under their ``fixture_`` names::

    from tests.browser import (  # noqa: F401  (the fixture_* are used by their fixture names)
        BROWSER_MARKS, fixture_browser, fixture_desktop, fixture_page_timeout, fixture_role_groups, login,
    )

    pytestmark = BROWSER_MARKS

The fixtures are registered under their plain names (``desktop``, ``phone``, ...), which the tests request;
the ``fixture_`` function names keep those parameters from shadowing the imports. A module may define its
own ``page_timeout`` fixture instead of importing this one.
"""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect, sync_playwright

from specloop.roles import ROLES

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ADMIN_PASSWORD = "pw-admin-123"  # set for actors.admin in tests/conftest.py
OVERFLOW = "[document.documentElement.scrollWidth, window.innerWidth]"  # equal when nothing overflows sideways

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (make chromium)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(name="role_groups", autouse=True)
def fixture_role_groups(transactional_db):
    """The live server's tests end with a flush, which also drops the role groups a data migration made.

    (Serialized rollback cannot bring them back here: while Playwright's loop runs, Django sees an async
    context and hands out other connection objects, which lack the serialized contents.)
    """
    for name in ROLES:
        Group.objects.get_or_create(name=name)


@pytest.fixture(name="browser", scope="module")
def fixture_browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(name="page_timeout")
def fixture_page_timeout() -> int:
    """Playwright's default timeout for each page, in ms; a module may override this fixture."""
    return 5000


def new_page(browser, width: int, height: int, timeout: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(timeout)
    return page


@pytest.fixture(name="desktop")
def fixture_desktop(browser, page_timeout):
    page = new_page(browser, 1280, 900, page_timeout)
    yield page
    page.context.close()


@pytest.fixture(name="phone")
def fixture_phone(browser, page_timeout):
    page = new_page(browser, 390, 844, page_timeout)
    yield page
    page.context.close()


def login(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator(".topbar .username")).to_have_text(username)


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)
