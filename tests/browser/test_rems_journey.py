"""The REMS monitoring form in the browser (SPEC §8, issue 13): an intranasal session logged
without its device lot number, the form listing it missing, the lot number given through the
session's amendment, the form printed (PDF text checked), marked submitted, and the queue
empty."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from accounts.models import User
from courses.models import TreatmentSession
from patients.models import Patient
from rems import actions
from rems.filling import forms_queryset
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def _save_session(page) -> None:
    page.click("text=Save session")
    if page.locator("#confirmations").count():  # warnings to confirm before saving (SPEC §7)
        for box in page.locator("#confirmations input[type=checkbox]").all():
            box.check()
        page.click("text=Save session")
    expect(page.locator(".alert-success")).to_contain_text("Session logged")


def test_log_an_intranasal_session_complete_its_form_print_and_submit(page, demo_clinic):
    clinician = User.objects.get(username="clinician")
    for session in forms_queryset().filter(rems_submission__isnull=True):  # the demo's others
        actions.record_submission(clinician, session, timezone.localdate(), "RC-DEMO")
    course = Patient.objects.get(record_number="DEMO-007").courses.active().get()
    log_in(page, "clinician")
    page.goto(f"/courses/{course.pk}/sessions/new/")
    start = timezone.localtime() - timedelta(hours=3)
    page.fill("input[name=started_at]", start.strftime("%Y-%m-%dT%H:%M"))
    page.select_option("select[name=route]", "intranasal")
    # The dose's hint is the route's own: no oral ranges for a nasal spray.
    expect(page.locator("#id_dose_mg_helptext")).to_have_text(
        "Intranasal esketamine: 28, 56 or 84 mg.")
    page.fill("input[name=dose_mg]", "84")
    expect(page.locator("#rems-fields")).to_be_visible()
    for name, value in [("bp_pre_systolic", "128"), ("bp_pre_diastolic", "80"),
                        ("bp_40_systolic", "142"), ("bp_40_diastolic", "88"),
                        ("bp_discharge_systolic", "126"), ("bp_discharge_diastolic", "78"),
                        ("ready_minutes", "95"),
                        ("discharged_at", (start + timedelta(minutes=125)).strftime(
                            "%Y-%m-%dT%H:%M"))]:
        page.fill(f"input[name={name}]", value)
    for name, value in [("vitals_ok_before", "true"), ("vitals_ok_completion", "true"),
                        ("sedation", "false"), ("dissociation_seen", "false"),
                        ("respiratory_depression", "false"), ("serious_adverse_event", "false")]:
        page.select_option(f"select[name={name}]", value)
    _save_session(page)
    session = TreatmentSession.objects.filter(course=course).latest("created_at")

    page.goto("/rems/")
    row = page.locator("table.rems-queue tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("1 missing")
    row.get_by_role("link").click()
    missing = page.locator(".rems-missing-list")
    expect(missing).to_have_text("Device lot number")
    missing.get_by_role("link", name="Device lot number").click()
    expect(page).to_have_url(re.compile(rf"/sessions/{session.pk}/amend/.*#id_device_lot$"))
    page.fill("input[name=device_lot]", "LOT-9Z")
    page.click("text=Sign amendment")
    if page.locator("#confirmations").count():
        for box in page.locator("#confirmations input[type=checkbox]").all():
            box.check()
        page.click("text=Sign amendment")
    page.screenshot(path="/tmp/shots-h13/journey-after-amend.png", full_page=True)
    expect(page.locator(".alert-success")).to_contain_text("Amendment signed")

    page.goto(f"/rems/{session.pk}/")
    expect(page.locator(".rems-missing-list")).to_have_count(0)
    with page.expect_download() as download:
        page.click("text=Print (PDF)")
    text = PdfReader(download.value.path()).pages[0].extract_text()
    assert "LOT-9Z" in text and "Tomas" in text and "84 mg" in text

    page.fill("input[name=confirmation]", "RC-2026-0042")
    page.click("text=Mark submitted")
    expect(page.locator(".alert-success")).to_contain_text("marked submitted")
    page.goto("/rems/")
    expect(page.locator("table.rems-queue")).to_have_count(0)
    expect(page.get_by_text("No forms here.")).to_be_visible()
