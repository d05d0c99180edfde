"""The menu marks the entry of the page being read (aria-current="page"): one entry, the
right one, for each role; pages that belong to no entry mark none."""

import re

import pytest
from django.urls import reverse

from tests.factories import AssessmentFactory, CourseFactory, SessionFactory

pytestmark = pytest.mark.django_db

CURRENT = re.compile(r'<a class="nav-link" href="[^"]*" aria-current="page">([^<]+)</a>')


def current_entries(response) -> list[str]:
    assert response.status_code == 200
    return CURRENT.findall(response.content.decode())


def test_each_clinician_page_marks_its_menu_entry(as_user, clinician):
    session = SessionFactory(course=CourseFactory(), clinician=clinician)
    course, patient = session.course, session.course.patient
    score = AssessmentFactory(course=course)
    client = as_user(clinician)
    expected = {
        reverse("clinic:day"): "Day sheet",
        reverse("clinic:unbooked"): "Day sheet",
        reverse("clinic:undecided"): "Day sheet",
        reverse("rems:queue"): "REMS",
        reverse("patients:list"): "Patients",
        reverse("patients:detail", args=[patient.pk]): "Patients",
        reverse("patients:edit", args=[patient.pk]): "Patients",
        reverse("courses:detail", args=[course.pk]): "Patients",
        reverse("courses:sessions", args=[course.pk]): "Patients",
        reverse("courses:session-new", args=[course.pk]): "Patients",
        reverse("courses:session-detail", args=[session.pk]): "Patients",
        reverse("assessments:new", args=[course.pk, "madrs"]): "Patients",
        reverse("assessments:detail", args=[score.pk]): "Patients",
        reverse("clinic:plan", args=[course.pk]): "Patients",
        reverse("outcomes:dashboard"): "Outcomes",
        reverse("guidance:rules"): "Rules",
        reverse("guidance:sources"): "Sources",
    }
    got = {url: current_entries(client.get(url)) for url in expected}
    assert got == {url: [entry] for url, entry in expected.items()}
    assert current_entries(client.get(reverse("password_change"))) == []


def test_each_admin_page_marks_its_menu_entry(as_user, clinic_admin, clinician):
    client = as_user(clinic_admin)
    expected = {
        reverse("staff-list"): "Staff",
        reverse("staff-create"): "Staff",
        reverse("staff-detail", args=[clinician.pk]): "Staff",
        reverse("staff-edit", args=[clinician.pk]): "Staff",
        reverse("clinic:settings"): "Clinic settings",
        reverse("exports:list"): "Exports",
        reverse("audit:report"): "Audit",
        reverse("patients:list"): "Patients",
    }
    got = {url: current_entries(client.get(url)) for url in expected}
    assert got == {url: [entry] for url, entry in expected.items()}


def test_a_referring_provider_sees_referrals_marked(as_user, referrer):
    course = CourseFactory(patient__referring_provider=referrer)
    client = as_user(referrer)
    for url in (reverse("reports:list"), reverse("reports:patient", args=[course.patient_id])):
        assert current_entries(client.get(url)) == ["Referrals"]
