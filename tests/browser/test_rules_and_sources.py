"""Flags name their sources by document title in a real browser; the Sources and Rules pages
are reached from every page, by clinicians and referring providers alike."""

import re

import pytest
from playwright.sync_api import expect

from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

FILE_NUMBER = re.compile(r"\b00[0-4]\b")


def test_clinician_reads_readable_sources_then_the_sources_page(page, demo_clinic):
    log_in(page, "clinician")
    patient = Patient.objects.get(record_number="DEMO-014")
    course = patient.courses.get()
    page.goto(f"/courses/{course.pk}/")

    overdue = page.locator('[data-flag="SCORES_OVERDUE"]')
    expect(overdue).to_be_visible()
    expect(overdue).to_contain_text(
        "Score MADRS or PHQ-9 now: the status and every outcome-based flag depend on it."
    )
    expect(overdue.get_by_role("link", name="Score MADRS")).to_be_visible()
    sources = page.locator("[data-source]")
    assert sources.count() >= 1
    for text in sources.all_inner_texts():
        assert text.startswith("Source: ") and not FILE_NUMBER.search(text), text
    expect(overdue.locator("[data-source]")).to_have_text(
        "Source: When Initial Treatment Fails: documentation requirements (baseline severity "
        "and all outcome measures)"
    )
    body = page.locator("main").inner_text()
    assert "SPEC" not in body and "§" not in body

    page.get_by_role("link", name="how flags are raised").click()
    expect(page.get_by_role("heading", name="How KetaCare reads a course")).to_be_visible()
    expect(page.locator('[data-rule="SCORES_OVERDUE"]')).to_contain_text("every phase but ended")

    page.get_by_role("navigation").get_by_role("link", name="Sources").click()
    expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible()
    cards = page.locator("[data-source]")
    expect(cards).to_have_count(5)
    expect(page.locator("#when-initial-treatment-fails h2")).to_have_text(
        "When Initial Treatment Fails: Optimization Strategies for Non-Responders"
    )
    expect(page.locator("#when-initial-treatment-fails")).to_contain_text(
        "What KetaCare takes from it"
    )
    assert not FILE_NUMBER.search(page.locator("main").inner_text())


def test_a_withheld_escalation_is_said_on_the_course_page(page, demo_clinic):
    log_in(page, "clinician")
    course = Patient.objects.get(record_number="DEMO-015").courses.get()
    page.goto(f"/courses/{course.pk}/")
    expect(page.locator("[data-withheld]")).to_contain_text(
        "Dose escalation to 0.75 mg/kg is not suggested: poorly tolerated in this course at "
        "0.75 mg/kg IV ketamine"
    )
    expect(page.locator('[data-flag="DOSE_ESCALATION"]')).to_have_count(0)


def test_referrer_reaches_the_sources_from_the_report(page, demo_clinic):
    log_in(page, "referrer1")
    page.get_by_role("link", name="Hale, Martin").click()
    source = page.locator('[data-flag="BENZODIAZEPINE"] [data-source]')
    expect(source).to_have_text(
        "Source: When Initial Treatment Fails: step 3; Treating Treatment-Resistant Depression: "
        "medications to avoid or adjust"
    )
    page.get_by_role("link", name="Sources").click()
    expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible()
    page.get_by_role("link", name="rules").first.click()
    expect(page.locator('[data-rule="DOSE_ESCALATION"]')).to_contain_text("poorly tolerated")
