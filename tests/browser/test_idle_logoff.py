"""Automatic logoff: the clinician is warned, then sent to the login page when idle."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_an_idle_clinician_is_warned_then_logged_out(page, demo_clinic, settings):
    settings.SESSION_COOKIE_AGE = 6  # warned 3 s before the end
    log_in(page, "clinician")
    expect(page.get_by_role("heading", name=re.compile("^Today"))).to_be_visible()
    expect(page.locator("#idle-warning")).to_be_visible(timeout=6_000)
    expect(page.locator("#idle-warning")).to_contain_text("logged out in")
    expect(page.locator(".alert-info")).to_contain_text(
        "logged out after a period without activity", timeout=8_000
    )
    # The server agrees: the old session no longer opens a record.
    page.goto("/patients/")
    expect(page).to_have_url(re.compile("/accounts/login/"))


def test_staying_logged_in_renews_the_session(page, demo_clinic, settings):
    settings.SESSION_COOKIE_AGE = 6
    log_in(page, "clinician")
    expect(page.locator("#idle-warning")).to_be_visible(timeout=6_000)
    page.click("#idle-stay")
    expect(page.locator("#idle-warning")).to_be_hidden()
    page.wait_for_timeout(2_000)  # past the original end of the session
    page.goto("/patients/")
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
