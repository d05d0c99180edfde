"""From the day sheet a clinician logs the session of an appointment (which then shows as
done), scores a MADRS for it with the keyboard only, and sees both on the course."""

import re

import pytest
from playwright.sync_api import expect

from clinic.models import Appointment
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_clinician_works_through_an_appointment_from_the_day_sheet(page, demo_clinic):
    # DEMO-007: intranasal esketamine 56 mg, booked today by the demo.
    appointment = Appointment.objects.filter(
        course__patient__record_number="DEMO-007", status="booked"
    ).order_by("starts_at").first()

    log_in(page, "clinician")
    expect(page.get_by_role("heading", name=re.compile("^Today"))).to_be_visible()
    row = page.locator(f"tr[data-appointment='{appointment.pk}']")
    expect(row).to_contain_text("Reed, Tomas")
    expect(row).to_contain_text("56 mg")
    # A REMS form to submit opens that form; at 768 px the row fits, its REMS badges under
    # its flags rather than in a column off the screen.
    rems = row.get_by_role("link", name=re.compile("^REMS (due|overdue)")).first
    expect(rems).to_have_attribute("href", re.compile(r"^/rems/\d+/$"))
    page.set_viewport_size({"width": 768, "height": 900})
    expect(rems).to_be_visible()
    sheet = page.locator("table.day-sheet")
    assert sheet.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    page.set_viewport_size({"width": 1366, "height": 900})

    # One click logs the session: route and dose come from the appointment.
    row.get_by_role("link", name="Log session").first.click()
    expect(page.get_by_role("heading", name=re.compile("Log session"))).to_be_visible()
    expect(page.locator("select[name=route]")).to_have_value("intranasal")
    expect(page.locator("input[name=dose_mg]")).to_have_value("56")
    page.fill("input[name=bp_pre_systolic]", "128")
    page.fill("input[name=bp_pre_diastolic]", "80")
    page.click("text=Save session")
    # The demo's last session of this course was at 09:00 yesterday: run in the small hours,
    # the form asks (as it should) whether this is a separate session, less than 24 h later.
    page.wait_for_load_state()
    separate = page.get_by_label("A separate session, not the same one entered twice")
    if separate.count():
        separate.check()
        page.click("text=Save session")
    expect(page.locator(".alert-success")).to_contain_text("Session logged: 56 mg")

    # Back on the day sheet, the appointment is done and links to its session.
    page.get_by_role("navigation").get_by_role("link", name="Day sheet").click()
    row = page.locator(f"tr[data-appointment='{appointment.pk}']")
    expect(row.locator(".badge:visible", has_text="done")).to_have_count(1)
    expect(row.get_by_role("link", name="Log session")).to_have_count(0)
    appointment.refresh_from_db()
    assert appointment.status == "done" and appointment.session_id

    # Score a MADRS from the same row, then see the course.
    row.get_by_role("link", name="Session").first.click()
    expect(page.get_by_role("heading", name=re.compile("Intranasal esketamine"))).to_be_visible()
    page.goto("/day/")
    page.locator("tr", has_text="Reed, Tomas").get_by_role("link", name="MADRS").first.click()
    # Keyboard only: the grid opens on item 1; each digit scores an item and moves on, and
    # Enter signs once the last item is scored.
    expect(page.get_by_role("heading", name=re.compile("^MADRS for"))).to_be_visible()
    expect(page.locator("input[name=item_1]").first).to_be_focused()
    # The item is focused by the markup (autofocus); the keys score only once the page's
    # script, at the end of the body, has run.
    page.wait_for_load_state("load")
    page.keyboard.type("3322122210")
    expect(page.locator("#assessment-total")).to_have_text("18")
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_contain_text("MADRS signed: 18 (mild)")
    expect(page).to_have_url(re.compile(rf"/courses/{appointment.course_id}/$"))
    expect(page.locator("#scores")).to_contain_text("18")
    expect(page.locator("#sessions")).to_contain_text("56 mg")
    expect(page.locator("#plan")).to_contain_text("Esketamine")
