"""An attacker's journey: a referring provider edits URLs by hand and is refused everywhere."""

import pytest
from playwright.sync_api import expect

from assessments.models import Assessment
from courses.models import TreatmentSession
from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_a_referring_provider_editing_urls_is_refused_everywhere(page, demo_clinic):
    own = Patient.objects.filter(referring_provider__username="referrer1").first()
    other = Patient.objects.exclude(referring_provider__username="referrer1").first()
    log_in(page, "referrer1")
    expect(page.get_by_role("heading", name="Your referrals")).to_be_visible()
    for patient in (own, other):
        course = patient.courses.first()
        session = TreatmentSession.objects.filter(course=course).first()
        assessment = Assessment.objects.filter(course=course).first()
        urls = [
            "/patients/", "/patients/new/", f"/patients/{patient.pk}/",
            f"/patients/{patient.pk}/edit/", f"/patients/{patient.pk}/medications/new/",
            f"/patients/{patient.pk}/courses/new/", f"/courses/{course.pk}/",
            f"/courses/{course.pk}/sessions/new/", f"/courses/{course.pk}/phase/",
            f"/courses/{course.pk}/end/", f"/courses/{course.pk}/assessments/new/madrs/",
            f"/courses/{course.pk}/flags/TRD_NOT_VERIFIED/", "/audit/", "/audit/export.csv",
            "/day/", "/day/unbooked/", "/clinic/settings/", f"/courses/{course.pk}/plan/",
            f"/courses/{course.pk}/appointments/new/",
        ]
        urls += [f"/appointments/{a.pk}/{what}/" for a in course.appointments.all()
                 for what in ("move", "cancel")]
        if session:
            urls.append(f"/sessions/{session.pk}/")
        if assessment:
            urls += [f"/assessments/{assessment.pk}/", f"/assessments/{assessment.pk}/correct/"]
        for url in urls:
            response = page.goto(url)
            assert response.status in (403, 404), url
            assert patient.last_name not in page.content(), url
