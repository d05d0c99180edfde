"""Record integrity in the browser (SPEC §7): a confirmation before saving a critical BP, a
session amended and its discharge completed, a session voided, and a second course refused."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from courses import actions
from courses.models import Course, SessionAmendment, TreatmentSession
from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def open_course_page(page, record_number: str) -> Course:
    course = Patient.objects.get(record_number=record_number).courses.active().get()
    page.goto(f"/courses/{course.pk}/")
    return course


def test_a_critical_bp_is_saved_only_once_confirmed(page, demo_clinic):
    log_in(page, "clinician")
    course = open_course_page(page, "DEMO-001")
    before = course.sessions.count()
    page.click("text=Log session")
    page.fill("input[name=dose_mg_per_kg]", "0.5")
    page.fill("input[name=infusion_minutes]", "40")
    page.fill("input[name=bp_pre_systolic]", "185")
    page.fill("input[name=bp_pre_diastolic]", "112")
    page.fill("textarea[name=note]", "anxious on arrival")
    page.click("text=Save session")

    warning = page.locator("#confirmations")
    expect(warning).to_have_class(re.compile("alert-warning"))
    expect(warning).to_contain_text("185/112 mmHg, above the critical limit of 180/110")
    # nothing typed is lost
    expect(page.locator("input[name=bp_pre_systolic]")).to_have_value("185")
    expect(page.locator("textarea[name=note]")).to_have_value("anxious on arrival")
    assert course.sessions.count() == before

    warning.get_by_label("Blood pressure rechecked: go ahead with the session").check()
    page.click("text=Save session")
    expect(page.locator(".alert-success")).to_contain_text("Session logged")
    session = course.sessions.latest("created_at")
    assert session.confirmed_critical_bp and session.bp_pre_systolic == 185
    page.goto(f"/sessions/{session.pk}/")
    expect(page.locator("#confirmed")).to_contain_text(
        "Blood pressure above the critical limit confirmed"
    )


def test_a_session_is_amended_and_its_discharge_completed(page, demo_clinic):
    log_in(page, "clinician")
    course = open_course_page(page, "DEMO-001")
    session = course.sessions.order_by("-started_at").first()
    page.goto(f"/sessions/{session.pk}/")
    page.get_by_role("link", name="Amend").click()
    page.fill("input[name=hr_pre]", "77")
    page.fill("input[name=reason]", "heart rate typed from the wrong chart")
    page.click("text=Sign amendment")
    expect(page.locator(".alert-success")).to_contain_text("Amendment signed: heart rate before")
    history = page.locator("#amendments")
    expect(history).to_contain_text("Heart rate before")
    expect(history).to_contain_text("heart rate typed from the wrong chart")
    expect(history.locator("del")).to_have_count(1)

    page.get_by_role("link", name=re.compile("discharge", re.I)).click()
    local = timezone.localtime(session.started_at + timezone.timedelta(hours=2))
    page.fill("input[name=discharged_at]", local.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=recovery_minutes]", "95")
    page.fill("input[name=bp_discharge_systolic]", "126")
    page.fill("input[name=bp_discharge_diastolic]", "80")
    page.click("text=Sign discharge")
    expect(page.locator(".alert-success")).to_contain_text("Amendment signed")
    expect(page.locator("#session-facts")).to_contain_text("95 minutes")
    expect(page.locator("#amendments")).to_contain_text("discharge")
    assert SessionAmendment.objects.filter(session=session, kind="discharge").count() >= 3

    page.goto(f"/courses/{course.pk}/")
    expect(page.locator("#sessions")).to_contain_text("amended")


def test_a_session_entered_in_error_is_voided(page, demo_clinic):
    log_in(page, "clinician")
    course = open_course_page(page, "DEMO-001")
    session = course.sessions.order_by("-started_at").first()
    completed = course.evaluation["sessions_completed"]
    page.goto(f"/sessions/{session.pk}/")
    page.get_by_role("link", name="Void").click()
    page.click("text=Void this session")  # no reason: refused, naming it
    expect(page.locator("#id_reason")).to_have_class(re.compile("is-invalid"))
    page.fill("input[name=reason]", "logged on the wrong patient")
    page.click("text=Void this session")
    expect(page.locator("#voided")).to_contain_text("logged on the wrong patient")
    expect(page.get_by_role("link", name="Amend")).to_have_count(0)

    page.goto(f"/courses/{course.pk}/")
    row = page.locator("#sessions tr.session-voided")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("voided")
    assert row.evaluate("r => getComputedStyle(r).textDecorationLine") == "line-through"
    course.refresh_from_db()
    assert course.evaluation["sessions_completed"] == completed - 1
    assert TreatmentSession.objects.filter(pk=session.pk).exists()


def test_a_second_course_is_refused(page, demo_clinic):
    log_in(page, "clinician")
    patient = Patient.objects.get(record_number="DEMO-001")
    course = patient.courses.active().get()
    page.goto(f"/patients/{patient.pk}/courses/new/")
    notice = page.locator("#open-course")
    expect(notice).to_contain_text(f"already has an open course, started {course.started_on}")
    notice.get_by_role("link", name="Go to the open course").click()
    expect(page).to_have_url(re.compile(rf"/courses/{course.pk}/$"))

    # Two clinicians at once: the form was open before the other's course existed.
    ended = Patient.objects.get(record_number="DEMO-011")
    page.goto(f"/patients/{ended.pk}/courses/new/")
    expect(page.locator("#open-course")).to_have_count(0)
    other = Course(patient=ended, started_on=timezone.localdate())
    actions.start_course(User.objects.get(username="clinician"), other)
    page.click("text=Start course")
    expect(page.locator("#open-course")).to_contain_text("already has an open course")
    assert ended.courses.active().count() == 1
