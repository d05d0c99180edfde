"""What a patient's course report shows, built once for the page, the PDF and the export ZIP."""

from django.utils import timezone

from courses.evaluation import evaluation_context
from courses.models import Course
from courses.record import read_report
from courses.rows import session_rows
from ketacare.prepared import Prepared
from patients.models import Patient

LATEST_SESSIONS = 10  # on the page; the PDF lists every session

# A patient's courses, newest first (the model's order): compiled once (ketacare.prepared),
# as every report page reads them.
_COURSES = Prepared(lambda patient: Course.objects.filter(patient_id=patient), patient=int)


def report_context(patient: Patient, latest: int | None = None) -> dict:
    """Every course of ``patient`` with its evaluation, chart, flags, decisions and sessions
    (with their vitals), and the medications taken today, in a number of queries that does not
    grow with the record: the courses, then the rest (courses.record.read_report: one
    statement on PostgreSQL; through the ORM their sessions not voided, their scores not
    corrected, their flag decisions and the medications). ``latest``: list only each course's
    latest sessions (the chart still draws them all)."""
    courses = _COURSES.objects(patient=patient.pk)
    for course in courses:
        course.patient = patient  # as patient.courses would give them: no query to read it
    today = timezone.localdate()
    record = read_report(patient, today, latest)
    sessions, scores, decisions = record.sessions, record.scores, record.decisions
    reports = []
    for course in courses:
        given = sessions[course.pk]
        shown = given[-latest:] if latest else given
        reports.append({
            "course": course,
            "sessions": session_rows(shown, range(len(given) - len(shown) + 1, len(given) + 1)),
            "session_count": len(given),
            "earlier": len(given) - len(shown),
            **evaluation_context(course, decisions[course.pk], scores[course.pk], given),
        })
    return {
        "patient": patient, "reports": reports, "age": patient.age_on(today),
        "medications": record.medications,
    }
