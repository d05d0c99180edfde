"""What a patient's course report shows, built once for the page, the PDF and the export ZIP."""

from collections import defaultdict

from django.utils import timezone

from assessments.models import Assessment
from courses.evaluation import evaluation_context
from courses.models import FlagDecision, TreatmentSession
from courses.rows import score_points, session_points, session_rows
from patients.models import Patient

LATEST_SESSIONS = 10  # on the page; the PDF lists every session


def report_context(patient: Patient, latest: int | None = None) -> dict:
    """Every course of ``patient`` with its evaluation, chart, flags, decisions and sessions
    (with their vitals), and the medications taken today, in a number of queries that does not
    grow with the record: the courses, their sessions (not voided), their scores (not
    corrected), their flag decisions, the medications. ``latest``: list only each course's
    latest sessions (the chart still draws them all)."""
    courses = list(patient.courses.all())
    sessions, scores, decisions = defaultdict(list), defaultdict(list), defaultdict(list)
    for point in session_points(TreatmentSession.objects.current().filter(course__in=courses)):
        sessions[point.course_id].append(point)
    for point in score_points(Assessment.objects.current().filter(course__in=courses)):
        scores[point.course_id].append(point)
    for decision in FlagDecision.objects.filter(course__in=courses).select_related(
            "decided_by").order_by("decided_at", "id"):
        decisions[decision.course_id].append(decision)
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
    today = timezone.localdate()
    return {
        "patient": patient, "reports": reports, "age": patient.age_on(today),
        "medications": patient.medications.active_on(today),
    }
