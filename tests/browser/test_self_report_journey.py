"""A clinician invites a patient; the patient answers on a phone (390 px) through the emailed
link, with no login; the clinician then sees the score and the suicidal-ideation flag."""

import os
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("KETACARE_SHOTS", "")  # a folder: save screenshots there
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def shot(page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=full_page)


def test_a_patient_answers_on_a_phone_and_the_clinician_sees_it(browser, live_server, page,
                                                                demo_clinic):
    course = Patient.objects.get(record_number="DEMO-005").courses.get()
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, "clinician")
    page.goto(f"/courses/{course.pk}/")
    box = page.locator("#self-report")
    box.locator("select[name=schedule]").select_option("once")
    box.get_by_role("button", name="Invite").click()
    expect(page.locator(".alert-success")).to_contain_text("Invitation being sent")
    expect(page.locator("#self-report")).to_contain_text("sent 1")
    page.locator("#self-report").scroll_into_view_if_needed()
    if SHOTS:
        page.locator("#self-report").screenshot(path=os.path.join(SHOTS, "course-box-1366.png"))
        shot(page, "course-page-1366", full_page=False)

    (message,) = mail.outbox
    link = re.search(r"https?://\S+(/r/[A-Za-z0-9_-]{43}/)", message.body)[1]

    # The patient, on a phone, with no account.
    phone = browser.new_context(base_url=live_server.url, **PHONE)
    patient = phone.new_page()
    patient.goto(link)
    expect(patient.get_by_role("heading", name="How have you been feeling?")).to_be_visible()
    assert patient.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    heights = patient.locator(".sr-option").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    )
    assert len(heights) == 40 and min(heights) >= 44  # tap targets
    shot(patient, "questionnaire-390")
    crisis = patient.locator(".sr-crisis-live")
    for item, answer in enumerate(["2", "2", "1", "2", "1", "2", "1", "0"], start=1):
        patient.locator(f"input[name=item_{item}][value='{answer}']").check()
    expect(crisis).to_be_hidden()
    patient.get_by_label("Several days").last.check()  # question 9
    expect(crisis).to_be_visible()  # at once, by CSS alone
    expect(crisis).to_contain_text("988")
    shot(patient, "questionnaire-item9-390")
    patient.get_by_label("Somewhat difficult").check()
    patient.get_by_role("button", name="Send my answers").click()
    expect(patient.get_by_role("heading", name=re.compile("Thank you"))).to_be_visible()
    expect(patient.locator(".sr-crisis-now")).to_contain_text("988")
    shot(patient, "thanks-390")
    patient.goto(link)  # the link worked once
    expect(patient.get_by_role("heading", name="This link is not available")).to_be_visible()
    phone.close()

    # The clinician sees the score, marked self-report, and the flag.
    page.reload()
    scores = page.locator("#scores")
    expect(scores).to_contain_text("12")  # 2+2+1+2+1+2+1+0+1
    expect(scores).to_contain_text("self-report")
    expect(page.locator("[data-flag=SUICIDAL_IDEATION]")).to_be_visible()
    assert any("self-report needs attention" in m.subject for m in mail.outbox)
    shot(page, "course-after-1366", full_page=False)
