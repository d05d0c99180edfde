"""What a patient's course report shows, built once for the page, the PDF and the export ZIP."""

from django.urls import reverse
from django.utils import timezone

from courses.evaluation import draw_chart, evaluation_context
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
    """Every course of ``patient`` with its evaluation, flags, decisions and sessions (with
    their vitals), and the medications taken today, in a number of queries that does not grow
    with the record: the courses, then the rest (courses.record.read_report: one statement on
    PostgreSQL). ``latest``: list only each course's latest sessions, and leave the charts to
    be fetched by the page (reports.views.course_chart); None: the whole report with its
    charts drawn in (the PDF)."""
    courses = _COURSES.objects(patient=patient.pk)
    for course in courses:
        course.patient = patient  # as patient.courses would give them: no query to read it
    today = timezone.localdate()
    record = read_report(patient, today, latest)
    reports = []
    for course in courses:
        shown, count = record.sessions[course.pk], record.session_counts.get(course.pk, 0)
        context = evaluation_context(course, record.decisions[course.pk])
        if latest is None:
            context["chart"] = draw_chart(course, context["evaluation"],
                                          record.scores[course.pk], shown)
        else:
            context["chart_url"] = reverse("reports:course-chart", args=[course.pk])
        reports.append({
            "course": course,
            "sessions": session_rows(shown, range(count - len(shown) + 1, count + 1)),
            "session_count": count,
            "earlier": count - len(shown),
            **context,
        })
    return {
        "patient": patient, "reports": reports, "age": patient.age_on(today),
        "medications": record.medications,
    }
