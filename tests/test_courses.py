"""Starting, phasing and ending a course; the course page."""

from datetime import date

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from courses.models import Course
from tests.conftest import with_charts
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
)

pytestmark = pytest.mark.django_db


def test_it_starts_a_course_with_its_first_phase_recorded(as_user, clinician):
    patient = PatientFactory()
    response = as_user(clinician).post(
        reverse("courses:new", args=[patient.pk]),
        {"started_on": "2026-02-01", "phase": "induction", "planned_protocol": "IV × 6"},
    )
    course = Course.objects.get()
    assert response.url == reverse("courses:detail", args=[course.pk])
    assert [(c.from_phase, c.to_phase) for c in course.phase_changes.all()] == [
        ("", "induction")
    ]
    assert AuditEvent.objects.filter(action=Action.CREATE, object_type="courses.Course").exists()
    # The protocol typed at the start is said to be that, beside the plan the course follows
    # now (a route switch changes the plan, not what was planned then).
    assert "planned at the start: IV × 6" in as_user(clinician).get(response.url).content.decode()


def test_every_phase_change_is_dated_kept_and_audited(as_user, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1))
    client = as_user(clinician)
    url = reverse("courses:phase", args=[course.pk])
    refused = client.post(url, {"to_phase": "maintenance", "effective_on": "2026-01-01"})
    assert "before the course started" in str(refused.context["form"].errors["effective_on"])
    client.post(url, {"to_phase": "extended_induction", "effective_on": "2026-02-20"})
    client.post(url, {"to_phase": "maintenance", "effective_on": "2026-03-10", "note": "resp."})
    course.refresh_from_db()
    assert course.phase == "maintenance"
    assert course.maintenance_started_on == date(2026, 3, 10)
    changes = list(course.phase_changes.values_list("from_phase", "to_phase", "effective_on"))
    assert changes == [
        ("induction", "extended_induction", date(2026, 2, 20)),
        ("extended_induction", "maintenance", date(2026, 3, 10)),
    ]
    events = AuditEvent.objects.filter(action=Action.PHASE_CHANGE).order_by("id")
    assert [(e.before["phase"], e.after["phase"]) for e in events] == [
        ("induction", "extended_induction"), ("extended_induction", "maintenance")
    ]


def test_the_phase_form_refuses_an_unknown_or_unchanged_phase(as_user, clinician):
    course = CourseFactory()
    client = as_user(clinician)
    url = reverse("courses:phase", args=[course.pk])
    for phase in ("induction", "ended", "weekly"):
        response = client.post(url, {"to_phase": phase, "effective_on": "2026-02-20"})
        assert "to_phase" in response.context["form"].errors
    assert course.phase_changes.count() == 0


def test_ending_a_course_needs_a_reason_and_is_final(as_user, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1))
    client = as_user(clinician)
    url = reverse("courses:end", args=[course.pk])
    missing = client.post(url, {"ended_on": "2026-03-01"})
    assert "reason" in missing.context["form"].errors
    client.post(url, {"ended_on": "2026-03-01", "reason": "non_response", "note": "to ECT"})
    course.refresh_from_db()
    assert (course.phase, course.ended_on, course.end_reason) == (
        "ended", date(2026, 3, 1), "non_response"
    )
    assert AuditEvent.objects.get(action=Action.END).after["end_reason"] == "non_response"
    assert client.post(url, {"ended_on": "2026-03-02", "reason": "other"}).status_code == 302
    assert AuditEvent.objects.filter(action=Action.END).count() == 1


def test_the_course_page_shows_sessions_scores_chart_and_todays_medications(as_user, clinician):
    course = CourseFactory()
    SessionFactory(course=course, dose_mg_per_kg="0.5", dose_mg="40.0")
    AssessmentFactory(course=course)
    AssessmentFactory(course=course, instrument="phq9", items=[2, 2, 2, 2, 1, 1, 2, 0, 0],
                      administered_at=course.patient.created_at)
    MedicationFactory(patient=course.patient, name="sertraline", drug_class="ssri")
    MedicationFactory(patient=course.patient, name="oldpill", drug_class="other",
                      stopped_on=date(2025, 7, 1))
    client = as_user(clinician)
    body = with_charts(client, client.get(reverse("courses:detail", args=[course.pk])))
    # (a narrow table wraps a dose only between its two parts: the other spaces do not break)
    assert "0.5 mg/kg (40.0 mg)" in body.replace("\u00a0", " ")
    assert "<svg" in body and "MADRS 36 on" in body and "PHQ-9 12 on" in body
    assert "sertraline" in body and "oldpill" not in body
