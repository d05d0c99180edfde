"""A clinician logs a session and an assessment on a demo course and sees them on the page."""

import re

import pytest
from playwright.sync_api import expect

from courses.models import TreatmentSession
from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_clinician_logs_a_session_and_a_madrs(page, demo_clinic):
    course = Patient.objects.get(record_number="DEMO-001").courses.get()
    before = TreatmentSession.objects.filter(course=course).count()

    log_in(page, "clinician")
    expect(page.get_by_role("heading", name=re.compile("^Today"))).to_be_visible()  # day sheet
    page.get_by_role("navigation").get_by_role("link", name="Patients").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    page.fill("input[name=q]", "DEMO-001")
    page.click("text=Search")
    page.click("text=Hale, Martin")
    page.get_by_role("link", name=re.compile(r"^Course from \d{4}-\d{2}-\d{2}$")).first.click()

    # Log a session: route and dose are prefilled from the last one; the mg preview shows.
    page.click("text=Log session")
    page.select_option("select[name=route]", "iv")
    page.fill("input[name=dose_mg_per_kg]", "0.6")
    expect(page.locator("#dose-preview")).to_contain_text("0.6 mg/kg × 88.0 kg")
    expect(page.locator("#dose-preview")).to_contain_text("52.8 mg")
    page.fill("input[name=infusion_minutes]", "40")
    page.select_option("select[name=dissociation]", "moderate")
    page.click("text=Save session")
    expect(page.locator(".alert-success")).to_contain_text("0.6 mg/kg (52.8 mg)")
    expect(page.locator("#sessions")).to_contain_text("0.6 mg/kg (52.8 mg)")
    assert TreatmentSession.objects.filter(course=course).count() == before + 1

    # Score a MADRS item by item; the total and band update as the clinician clicks.
    page.click("text=Score MADRS")
    for item, score in enumerate([3, 3, 2, 2, 1, 2, 2, 2, 1, 0], start=1):
        page.check(f"input[name=item_{item}][value='{score}']")
    expect(page.locator("#assessment-total")).to_have_text("18")
    expect(page.locator("#assessment-band")).to_have_text("mild")
    page.click("text=Sign MADRS")
    expect(page.locator(".alert-success")).to_contain_text("MADRS signed: 18 (mild)")
    expect(page.locator("#scores")).to_contain_text("18")
    expect(page.locator("svg.score-chart")).to_be_visible()

    # The status is current and the benzodiazepine flag is there to act on.
    expect(page.locator("#course-status")).to_have_text("Response")
    flag = page.locator("[data-flag=BENZODIAZEPINE]")
    expect(flag).to_contain_text("clonazepam is active")
    flag.get_by_role("link", name="Accept…").click()
    # Only the chosen decision's fields show: switching to decline swaps them.
    expect(page.locator("input[name=reason]")).to_be_hidden()
    page.get_by_label("Declined").check()
    expect(page.locator("input[name=reason]")).to_be_visible()
    expect(page.locator("select[name=action]")).to_be_hidden()
    page.get_by_label("Accepted").check()
    expect(page.locator("input[name=reason]")).to_be_hidden()
    page.select_option("select[name=action]", "medication_change")
    page.fill("input[name=detail]", "Clonazepam held on treatment days; taper planned")
    page.click("text=Sign decision")
    expect(page.locator(".alert-success")).to_contain_text("Flag accepted and signed")
    expect(page.locator("#optimizations")).to_contain_text("Clonazepam held on treatment days")
    expect(page.locator("[data-flag=BENZODIAZEPINE]")).to_have_class(re.compile("flag-quiet"))
