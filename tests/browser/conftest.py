"""Real headless Chromium (Debian's package) driven by Playwright against the live server."""

import os
import re
import shutil

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.twofactor import DEMO_DEVICE
from demo.clinic import DEMO_PASSWORD, DEMO_TOTP_KEY, load_demo_clinic
from tests.conftest import PAGE_DATABASES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network and a root user (see the machine notes in README).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(items):
    """Browser journeys use the audit connection where there is one, as the site does."""
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.django_db(transaction=True, databases=PAGE_DATABASES))


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe, so Django's async guard is relaxed for the browser tests only.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def demo_clinic(transactional_db):
    users, _ = load_demo_clinic(wider=False)  # the stories; the wider clinic is for outcomes
    # Tests run with DEBUG off, where the demo's published key is refused: make the demo
    # users' authenticators ordinary ones (same key) for the browser journeys.
    TOTPDevice.objects.filter(name=DEMO_DEVICE).update(name="authenticator")
    return users


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, username: str) -> None:
    """Password, then (for clinicians and admins) the demo authenticator's current code."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if username in ("clinician", "admin"):
        page.wait_for_url(re.compile(r"/accounts/2fa/\?"))
        TOTPDevice.objects.filter(user__username=username).update(last_t=-1)  # reuse in tests
        page.fill("input[name=token]", f"{totp(bytes.fromhex(DEMO_TOTP_KEY)):06d}")
        page.get_by_role("button", name="Verify").click()
