"""The smaller fixes of issue 12: plain choices and defaults, the patient page's current-course
card, the referrer's report (vitals, medications, print) and a PDF whose page 1 holds the
course."""

import shutil
import subprocess
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from courses.evaluation import refresh_evaluation
from patients.forms import ClassifyMedicationForm, NewPatientForm, WeightForm
from patients.models import Patient
from reports.pdf import patient_report_pdf
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
    UserFactory,
    at,
)

pytestmark = pytest.mark.django_db


def test_an_unknown_drug_has_no_class_preselected_and_one_must_be_chosen():
    field = ClassifyMedicationForm.base_fields["drug_class"]
    assert field.choices[0] == ("", "Choose the class…")
    form = ClassifyMedicationForm({"drug_class": ""})
    assert not form.is_valid()
    assert form.errors["drug_class"] == ["choose the drug's class."]


def test_the_weight_form_starts_on_today():
    assert WeightForm(patient=None)["measured_on"].value() == timezone.localdate()


def test_the_new_patient_form_names_referrers_by_their_signature():
    UserFactory(role=Role.REFERRING_PROVIDER, username="referrer9", first_name="Lee",
                last_name="Tanaka")
    labels = [label for _, label in NewPatientForm().fields["referring_provider"].choices]
    assert any(label.startswith("Lee Tanaka") for label in labels)
    assert "referrer9" not in labels


def test_sex_may_be_other_or_unknown_and_then_no_ideal_body_weight_is_guessed():
    assert [value for value, _ in Patient._meta.get_field("sex").choices] == [
        "female", "male", "other", "unknown"]
    assert PatientFactory(sex="other", height_cm=170).ideal_body_weight_kg() is None
    assert PatientFactory(sex="male", height_cm=180).ideal_body_weight_kg() is not None


def test_medications_sort_whatever_their_letter_case():
    patient = PatientFactory()
    for name in ("lamotrigine", "Bupropion", "clonazepam", "Aripiprazole"):
        MedicationFactory(patient=patient, name=name, drug_class="other")
    assert [m.name for m in patient.medications.all()] == [
        "Aripiprazole", "Bupropion", "clonazepam", "lamotrigine"]


def _course_with_flags(patient):
    course = CourseFactory(patient=patient, started_on=date(2026, 2, 1))
    for name, cls in [("clonazepam", "benzodiazepine"), ("naltrexone", "naltrexone"),
                      ("memantine", "memantine"), ("phenelzine", "maoi"),
                      ("tramadol", "opioid"), ("lamotrigine", "lamotrigine")]:
        MedicationFactory(patient=patient, name=name, drug_class=cls)
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 1), 8))
    for n in range(5):
        SessionFactory(course=course, started_at=at(date(2026, 2, 2) + timedelta(days=2 * n)),
                       bp_pre_systolic=150, bp_pre_diastolic=95, hr_pre=81, spo2_min=95)
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 12), 12),
                      items=[4, 4, 4, 4, 3, 4, 3, 4, 3, 3])
    refresh_evaluation(course)
    return course


def test_the_patient_page_shows_the_current_course_with_log_session_first(as_user, clinician):
    course = _course_with_flags(PatientFactory())
    html = as_user(clinician).get(
        reverse("patients:detail", args=[course.patient_id])).content.decode()
    card = html[html.index('id="current-course"'):html.index("</section>")]
    assert f'href="{reverse("courses:session-new", args=[course.pk])}">Log session' in card
    assert 'class="btn btn-primary"' in card and "Start course" not in html
    assert 'id="next-appointment"' in card
    assert "Naltrexone hold" in card or "NALTREXONE" in card.upper()
    assert f"Course from {course.started_on}" in html


def test_the_referrer_reads_vitals_medications_and_can_print(as_user):
    referrer = UserFactory(role=Role.REFERRING_PROVIDER)
    course = _course_with_flags(PatientFactory(referring_provider=referrer))
    html = as_user(referrer).get(
        reverse("reports:patient", args=[course.patient_id])).content.decode()
    # (a narrow table wraps vitals only after a "·": a non-breaking space before each)
    text = html.replace("\u00a0", " ")
    assert "150/95 · – · –" in text and "81 · – · –" in text and "95 %" in html
    medications = html[html.index('id="report-medications"'):]
    assert "naltrexone" in medications[:2000]
    # Print gives the PDF, which lists every session (tests/test_reports.py).
    assert "Print or download PDF" in html


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils")
def test_the_pdf_starts_the_course_on_page_1(tmp_path):
    course = _course_with_flags(PatientFactory())
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(patient_report_pdf(course.patient))
    first = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert f"Course from {course.started_on}" in first
    assert "Flags" in first
