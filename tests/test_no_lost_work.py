"""No lost work: concurrent edits are refused with the typing kept; double posts save once."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from assessments.models import Assessment
from courses.models import TreatmentSession
from tests.factories import AssessmentFactory, CourseFactory, PatientFactory, WeightFactory

pytestmark = pytest.mark.django_db


def patient_data(patient, **changes):
    data = {
        "record_number": patient.record_number, "first_name": patient.first_name,
        "last_name": patient.last_name, "date_of_birth": "1980-01-01", "sex": patient.sex,
        "height_cm": "165.0", "diagnosis": patient.diagnosis, "version": patient.version,
    }
    data.update(changes)
    return data


def test_the_second_of_two_concurrent_edits_is_refused_and_keeps_the_typing(as_user, clinician):
    patient = PatientFactory(comorbidities="")
    client = as_user(clinician)
    url = reverse("patients:edit", args=[patient.pk])
    read_by_both = patient_data(patient)  # both clinicians opened the form at version 1
    first = client.post(url, {**read_by_both, "comorbidities": "migraine"})
    assert first.status_code == 302
    second = client.post(url, {**read_by_both, "height_cm": "171.0"})
    assert second.status_code == 200
    body = second.content.decode()
    assert "Another clinician saved this patient while you were editing" in body
    assert 'value="171.0"' in body  # what the second clinician typed is still there
    assert "Comorbidities: migraine" in body  # and what the other one saved is named
    patient.refresh_from_db()
    assert (patient.comorbidities, patient.height_cm, patient.version) == (
        "migraine", Decimal("165.0"), 2
    )
    # Saving again after review goes over the version now on record.
    reviewed = second.context["form"].data.copy()
    reviewed["comorbidities"] = "migraine"
    again = client.post(url, reviewed)
    assert again.status_code == 302
    patient.refresh_from_db()
    assert (patient.height_cm, patient.comorbidities, patient.version) == (
        Decimal("171.0"), "migraine", 3
    )


def test_a_session_form_posted_twice_logs_one_session(as_user, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1))
    WeightFactory(patient=course.patient, measured_on=date(2026, 1, 1))
    client = as_user(clinician)
    url = reverse("courses:session-new", args=[course.pk])
    token = client.get(url).context["form"]["submission_token"].value()
    data = {
        "started_at": "2026-02-05T09:00", "route": "iv", "dose_mg_per_kg": "0.5",
        "weight_basis": "actual", "infusion_minutes": "40", "dissociation": "mild",
        "status": "completed", "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
        "submission_token": str(token),
    }
    assert client.post(url, data).status_code == 302
    twice = client.post(url, data, follow=True)
    assert "already saved" in twice.content.decode()
    assert TreatmentSession.objects.count() == 1
    # A fresh form has a fresh token and logs a second session (at the same time: once the
    # clinician confirms it is another session, SPEC §7).
    data["submission_token"] = str(client.get(url).context["form"]["submission_token"].value())
    client.post(url, {**data, "confirmed_recent_session": "on"})
    assert TreatmentSession.objects.count() == 2


def test_an_assessment_posted_twice_is_signed_once(as_user, clinician):
    course = CourseFactory()
    client = as_user(clinician)
    url = reverse("assessments:new", args=[course.pk, "phq9"])
    token = client.get(url).context["form"]["submission_token"].value()
    data = {f"item_{n}": "1" for n in range(1, 10)}
    data.update(administered_at="2026-02-03T10:00", submission_token=str(token))
    client.post(url, data)
    twice = client.post(url, data, follow=True)
    assert "already signed" in twice.content.decode()
    assert Assessment.objects.count() == 1


def test_a_correction_posted_twice_corrects_once(as_user, clinician):
    original = AssessmentFactory()
    client = as_user(clinician)
    url = reverse("assessments:correct", args=[original.pk])
    data = {f"item_{n}": "2" for n in range(1, 11)}
    data.update(administered_at="2026-02-03T10:00", reason="typo")
    client.post(url, data)
    client.post(url, data)
    assert Assessment.objects.count() == 2
