"""What a patient's course report shows, built once for the page, the PDF and the export ZIP."""

from django.db.models import Prefetch
from django.utils import timezone

from assessments.models import Assessment
from courses.evaluation import evaluation_context
from courses.models import TreatmentSession
from patients.models import Patient


def report_context(patient: Patient) -> dict:
    """Every course of ``patient`` with its evaluation, chart, flags, decisions and sessions
    (with their vitals), and the medications taken today, in a number of queries that does not
    grow with the record."""
    courses = patient.courses.prefetch_related(
        Prefetch("sessions", queryset=TreatmentSession.objects.current()  # not the voided
                 .prefetch_related("adverse_events")),
        Prefetch("assessments", queryset=Assessment.objects.current()),
        "decisions__decided_by",
    )
    reports = []
    for course in courses:
        sessions = list(course.sessions.all())
        reports.append({
            "course": course,
            "sessions": sessions,
            **evaluation_context(
                course, list(course.decisions.all()), list(course.assessments.all()), sessions
            ),
        })
    today = timezone.localdate()
    return {
        "patient": patient, "reports": reports, "age": patient.age_on(today),
        "medications": patient.medications.active_on(today),
    }
