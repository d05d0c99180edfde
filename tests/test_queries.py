"""The patient list and the course page cost the same number of queries for 2 rows or 40,
rendered or from the cache (ketacare.fragments).

The rows here come from factories; each batch is audited as the app's actions audit theirs,
which is what tells the cache that the data changed."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.log import record
from audit.models import Action
from courses.evaluation import refresh_evaluation
from ketacare.prepared import sends_together
from tests.conftest import audit_statements, sent
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
    at,
)

pytestmark = pytest.mark.django_db


def count_queries(client, url, rendered: bool = False) -> int:
    """Statements sent for one page, leaving out the test transaction's savepoints;
    ``rendered``: with no fragment in the cache."""
    if rendered:
        cache.clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(sent(queries))


def together(n: int) -> int:
    """Statements counted for ``n`` queries sent with ketacare.prepared.together."""
    return 1 if sends_together() else n


def test_patient_list_queries_do_not_grow_with_patients(as_user, clinician):
    client = as_user(clinician)
    def add_patients(n):
        for _ in range(n):
            course = CourseFactory(patient=PatientFactory())
            record(clinician, Action.CREATE, course, patient_id=course.patient_id)

    add_patients(2)
    few = count_queries(client, reverse("patients:list"))
    add_patients(30)
    # Rendered: session, user, data version, count, the page of patients with their courses
    # not ended (one query, joined).
    assert count_queries(client, reverse("patients:list")) == few == 5
    assert count_queries(client, reverse("patients:list") + "?page=2") == 5
    # From the cache: session, user, data version.
    assert count_queries(client, reverse("patients:list")) == 3


def test_patient_search_queries_do_not_grow_with_matches(as_user, clinician, monkeypatch):
    from patients import views

    client = as_user(clinician)
    url = reverse("patients:list") + "?q=quist"

    def add_patients(n):
        for i in range(n):
            course = CourseFactory(patient=PatientFactory(last_name=f"Quist{i}"))
            record(clinician, Action.CREATE, course, patient_id=course.patient_id)

    add_patients(2)
    few = count_queries(client, url)
    add_patients(30)
    # Session, user, data version, the ids of all the matches in name order, the page of
    # patients with their courses not ended (one query, joined).
    assert count_queries(client, url) == few == 5
    assert count_queries(client, url + "&page=2") == 5
    # Words too short for the trigram indexes: how many match, then the page, as the whole
    # list (walking the name index).
    assert count_queries(client, reverse("patients:list") + "?q=qu%20i") == 5
    # More matches than the search reads at once: those ids, how many, then the page.
    monkeypatch.setattr(views, "MATCHES_READ", 10)
    cache.clear()
    assert count_queries(client, url + "&page=2") == 6


def add_rows(course, n):
    start = course.sessions.count()
    for i in range(start, start + n):
        day = course.started_on + timedelta(days=i + 1)
        SessionFactory(course=course, started_at=at(day))
        AssessmentFactory(course=course, administered_at=at(day, 8))
        MedicationFactory(patient=course.patient, name=f"med{i}", drug_class="other")
    refresh_evaluation(course)  # as the actions do when they add rows
    record(None, Action.CREATE, course, patient_id=course.patient_id)


def test_course_page_queries_do_not_grow_with_sessions(as_user, clinician):
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 2)
    url = reverse("courses:detail", args=[course.pk])
    few = count_queries(client, url)
    add_rows(course, 30)  # more than the page shows: the rest are on the all-sessions page
    # Rendered: session, user, course+patient+plan with the versions of the record
    # (ketacare.fragments), the audit of the view, and the record (courses.record): on
    # PostgreSQL in one statement; through the ORM, the latest sessions (with their adverse
    # events, clinician and amendments), how many there are, the latest assessments (with who
    # signed them), how many there are, which of them were corrected, flag decisions,
    # medications today, phase changes, the appointments booked ahead.
    # A short course's chart is drawn into the page: every session given and every current
    # score (courses.record.read_chart), on PostgreSQL in one statement, through the ORM two.
    record = 1 if connection.vendor == "postgresql" else 9
    chart = 1 if connection.vendor == "postgresql" else 2
    assert count_queries(client, url) == few == 3 + record + chart + audit_statements()
    # From the cache (the same data): none of the record's own queries.
    assert count_queries(client, url) == 3 + audit_statements()


def test_course_chart_queries_do_not_grow_with_sessions(as_user, clinician, referrer):
    course = CourseFactory(patient=PatientFactory(referring_provider=referrer))
    add_rows(course, 2)
    urls = [(clinician, reverse("courses:chart", args=[course.pk])),
            (referrer, reverse("reports:course-chart", args=[course.pk]))]
    few = [count_queries(as_user(user), url, rendered=True) for user, url in urls]
    add_rows(course, 30)
    # Rendered: session, user, the course with the versions of its record, the audit of the
    # view, and every session given and score current (courses.record.read_chart): on
    # PostgreSQL one statement; through the ORM two.
    chart = 1 if connection.vendor == "postgresql" else 2
    assert [count_queries(as_user(user), url, rendered=True) for user, url in urls] == few == [
        3 + chart + audit_statements()] * 2


def test_referral_report_queries_do_not_grow_with_sessions(as_user, referrer):
    client = as_user(referrer)
    course = CourseFactory(patient=PatientFactory(referring_provider=referrer))
    add_rows(course, 2)
    url = reverse("reports:patient", args=[course.patient_id])
    few = count_queries(client, url)
    add_rows(course, 30)  # more than the report lists: the rest are in the chart and the PDF
    # Rendered: session, user, the referred patient with the versions of the record, the
    # audit of the view, the courses, and what they show (courses.record.read_report): on
    # PostgreSQL one statement; through the ORM the sessions given (counted as read), the flag
    # decisions, the medications today (no scores: the charts are fetched apart).
    record = 1 if connection.vendor == "postgresql" else 3
    assert count_queries(client, url) == few == 4 + record + audit_statements()


def test_all_sessions_and_all_scores_pages_queries_do_not_grow(as_user, clinician):
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 2)
    pages = [reverse("courses:sessions", args=[course.pk]),
             reverse("courses:scores", args=[course.pk])]
    few = [count_queries(client, url) for url in pages]
    add_rows(course, 40)  # two pages of each
    many = [count_queries(client, url + query) for url in pages for query in ("", "?page=2")]
    # Each: session, user, course+patient+plan, the audit of the view, the page's rows with
    # how many there are in all (sessions: adverse events, clinician, amendments joined).
    assert many == [few[0], few[0], few[1], few[1]]
    assert few == [4 + audit_statements(), 4 + audit_statements()]


def test_session_pages_queries_do_not_grow_with_amendments(as_user, clinician):
    from courses.actions import amend_session

    client = as_user(clinician)
    course = CourseFactory()
    session = SessionFactory(course=course)
    detail = reverse("courses:session-detail", args=[session.pk])
    amend = reverse("courses:session-amend", args=[session.pk])
    few = count_queries(client, detail), count_queries(client, amend)
    for hr in range(60, 80):
        session.hr_pre = hr
        amend_session(clinician, session, read_version=session.version)
    # Detail: session, user, the session with its course, patient, clinician and void, the
    # audit of the view, its adverse events, its amendments with who signed them.
    # Amend: session, user, the session, the patient's weights (the dose preview), its
    # adverse events (listed above the ones to add).
    assert (count_queries(client, detail), count_queries(client, amend)) == few
    assert few == (5 + audit_statements(), 5)
def test_patient_page_with_its_current_course_card_keeps_the_budget(as_user, clinician):
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 2)
    url = reverse("patients:detail", args=[course.patient_id])
    few = count_queries(client, url)
    add_rows(course, 10)
    # Rendered: session, user, patient with the versions of the record, the audit of the
    # view, and the record (patients.record): on PostgreSQL one statement; through the ORM
    # medications, courses, the current course's flag decisions, weights (with who recorded
    # them), trials.
    record = 1 if connection.vendor == "postgresql" else 5
    assert count_queries(client, url) == few == 3 + record + audit_statements()
    # From the cache: session, user, patient with the versions, the audit of the view.
    assert count_queries(client, url) == 3 + audit_statements()


def test_outcome_dashboard_queries_do_not_grow_with_courses(as_user, clinician, clinic_admin):
    client = as_user(clinic_admin)
    url = reverse("outcomes:dashboard") + "?started_from=2026-01-01&started_to=2026-12-31"
    add_rows(CourseFactory(), 2)
    few = count_queries(client, url)
    for _ in range(5):
        add_rows(CourseFactory(), 3)
    # Rendered: session, user, data version, the courses by status, route and dose, by
    # optimization tried, by days and sessions to response (the three together on PostgreSQL).
    assert count_queries(client, url) == few == 3 + together(3)
    # From the cache: session, user, data version.
    assert count_queries(client, url) == 3


@pytest.mark.parametrize("instrument", ["madrs", "phq9"])
def test_score_forms_cost_the_same_for_any_history(as_user, clinician, instrument):
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 2)
    url = reverse("assessments:new", args=[course.pk, instrument])
    few = count_queries(client, url)
    add_rows(course, 20)
    # Session, user, the course with its patient and plan.
    assert count_queries(client, url) == few == 3


def test_self_report_invitation_form_queries(as_user, clinician):
    client = as_user(clinician)
    course = CourseFactory(patient=PatientFactory(email="p@example.com",
                                                  self_report_consent_on=timezone.localdate()))
    add_rows(course, 5)
    # Session, user, the course with its patient and plan.
    assert count_queries(client, reverse("selfreport:plan-new", args=[course.pk])) == 3


# -- the day sheet and the booking pages (clinic app) -------------------------------------------

def add_day(clinician, n, day):
    """``n`` courses each with an appointment on ``day``, history (sessions, scores, weights,
    a flag decided) and a course with nothing booked; audited as the actions do."""
    from clinic.models import Appointment
    from courses.models import FlagDecision
    from tests.factories import WeightFactory

    for i in range(n):
        course = CourseFactory(patient=PatientFactory(diagnosis="bipolar_i"),
                               started_on=day - timedelta(days=30))
        for k in range(3):
            SessionFactory(course=course, started_at=at(day - timedelta(days=20 - k * 3)))
            AssessmentFactory(course=course, administered_at=at(day - timedelta(days=20 - k)))
            WeightFactory(patient=course.patient, measured_on=day - timedelta(days=40 + k))
        refresh_evaluation(course)
        FlagDecision.objects.create(
            course=course, code="BIPOLAR_NO_MOOD_STABILIZER", decision="declined",
            reason="r", flag_message="old", decided_by=clinician,
            decided_at=at(day - timedelta(days=2)))
        Appointment.objects.create(course=course, starts_at=at(day, 8 + i % 9, i % 60),
                                   route="iv", dose_mg_per_kg="0.5", booked_by=clinician,
                                   booked_at=at(day - timedelta(days=3)))
        CourseFactory(patient=PatientFactory())  # nothing booked
        record(clinician, Action.CREATE, course, patient_id=course.patient_id)


def test_day_sheet_queries_do_not_grow_with_rows_or_history(as_user, clinician):
    from django.utils import timezone

    client = as_user(clinician)
    today = timezone.localdate()
    add_day(clinician, 2, today)
    url = reverse("clinic:day")
    few = count_queries(client, url)
    add_day(clinician, 20, today)
    # Rendered: session, user, data version, the day's appointments with their courses,
    # patients and row facts, the first courses with undecided flags with their flags, the
    # flag decisions, the REMS forms not submitted, the first courses with nothing booked
    # with their plans, how many of those and of the undecided flags (one pass), the
    # self-report emails that could not be sent (invitations and alerts, one query). The
    # seven after the data version are sent together on PostgreSQL (ketacare.prepared).
    assert count_queries(client, url) == few == together(7) + 3
    # From the cache: session, user, data version.
    assert count_queries(client, url) == 3


def test_undecided_flags_queries_do_not_grow(as_user, clinician):
    from django.utils import timezone

    from courses.models import Course

    client = as_user(clinician)
    today = timezone.localdate()
    add_day(clinician, 2, today)
    url = reverse("clinic:undecided")
    few = count_queries(client, url), count_queries(client, url + "?page=2")
    add_day(clinician, 40, today)
    assert Course.objects.filter(open_flag_rank__isnull=False).count() > 25  # two pages
    # Session, user, how many courses, the page (with their flags), their flag decisions
    # (the three together on PostgreSQL).
    assert few == (together(3) + 2, together(3) + 2 + (1 if sends_together() else 0))
    # Page 2 did not exist yet: on PostgreSQL it was read as asked, then as the last page.
    many = count_queries(client, url), count_queries(client, url + "?page=2")
    assert many == (together(3) + 2, together(3) + 2)


def test_unbooked_list_and_booking_form_queries_do_not_grow(as_user, clinician):
    from django.utils import timezone

    from clinic import actions
    from clinic.models import Plan

    client = as_user(clinician)
    today = timezone.localdate()
    add_day(clinician, 2, today - timedelta(days=1))
    course = CourseFactory(started_on=today - timedelta(days=10))
    actions.set_plan(clinician, course, "iv", "0.5", None, "gradual_spacing", course.started_on)
    unbooked, booking = reverse("clinic:unbooked"), reverse("clinic:appointment-new",
                                                            args=[course.pk])
    few = count_queries(client, unbooked), count_queries(client, booking)
    add_day(clinician, 20, today - timedelta(days=1))
    add_rows(course, 20)
    # Unbooked: session, user, count, the page (with plans and their progress), the last two
    # together on PostgreSQL.
    # Booking: session, user, course+patient+plan, clinic settings, the usual time (latest
    # appointment, latest session), the sessions on the plan, the appointments ahead.
    assert (count_queries(client, unbooked), count_queries(client, booking)) == few == (
        together(2) + 2, 8)
    assert Plan.objects.count() == 1


def test_rems_queue_and_form_queries_do_not_grow_with_forms(as_user, clinician):
    from rems.models import Submission
    from tests.factories import IntranasalSessionFactory

    client = as_user(clinician)

    def add_forms(n):
        patient = PatientFactory(rems_enrolled_on=timezone.localdate() - timedelta(days=90))
        course = CourseFactory(patient=patient, started_on=timezone.localdate() - timedelta(
            days=60))
        for i in range(n):
            MedicationFactory(patient=patient, name=f"zolpidem{i}", drug_class="sedative_hypnotic")
            session = IntranasalSessionFactory(
                course=course, started_at=timezone.now() - timedelta(days=i + 1))
            if i % 3 == 0:
                Submission.objects.create(session=session, submitted_on=timezone.localdate(),
                                          confirmation=f"RC{i}", recorded_by=clinician,
                                          recorded_at=timezone.now())
        return session

    session = add_forms(2)
    queue, form = reverse("rems:queue"), reverse("rems:form", args=[session.pk])
    few = [count_queries(client, f"{queue}?show={which}") for which in ("todo", "all")]
    few_form = count_queries(client, form)
    session = add_forms(20)
    many = [count_queries(client, f"{queue}?show={which}") for which in ("todo", "all")]
    assert many == few and max(many) <= 12, many
    assert count_queries(client, reverse("rems:form", args=[session.pk])) == few_form <= 12


# -- logging a session: the form, the POST and the course page it leads to -------------------

def session_data(day) -> dict:
    return {
        "started_at": f"{day:%Y-%m-%d}T09:00", "route": "iv", "dose_mg_per_kg": "0.5",
        "weight_basis": "actual", "infusion_minutes": "40", "dissociation": "none",
        "status": "completed", "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
        "confirmed_old_weight": "on",
    }


def test_logging_a_session_costs_the_same_however_long_the_course(as_user, clinician,
                                                                 monkeypatch):
    from courses import actions
    from tests.factories import WeightFactory

    client = as_user(clinician)
    course = CourseFactory(started_on=timezone.localdate() - timedelta(days=200))
    WeightFactory(patient=course.patient, measured_on=course.started_on)
    AssessmentFactory(course=course, administered_at=at(course.started_on, 8))  # a chart
    refresh_evaluation(course)
    form_url = reverse("courses:session-new", args=[course.pk])
    # Queries run by the rules engine's refresh are counted apart: they are its own budget.
    evaluation = []
    refresh = actions.refresh_evaluation

    def counted(course):
        start = len(capture.captured_queries)
        try:
            return refresh(course)
        finally:
            evaluation.append(len(capture.captured_queries) - start)

    monkeypatch.setattr(actions, "refresh_evaluation", counted)

    def log_one(day):
        """(form GET, the POST without the refresh, the refresh, the page it leads to)."""
        nonlocal capture
        form = count_queries(client, form_url)
        evaluation.clear()
        with CaptureQueriesContext(connection) as capture:
            response = client.post(form_url, session_data(day))
        assert response.status_code == 302, response.content.decode()[:2000]
        posted = len(sent(capture.captured_queries))
        return form, posted - sum(evaluation), sum(evaluation), count_queries(client, response.url)

    capture = None
    few = log_one(course.started_on + timedelta(days=1))
    add_rows(course, 30)
    many = log_one(timezone.localdate() - timedelta(days=1))
    assert many == few
    # The form: session, user, course+patient+plan, then the last session (where the form
    # starts) and the patient's weights (the dose preview), together.
    # The POST: session, user, course+patient+plan, the weight in force, the patient's
    # sessions near this one (and one this very form saved), the insert, its audit, the
    # appointment it fulfils; then the refresh of the course's evaluation.
    # The course page it leads to, rendered: as test_course_page_queries_do_not_grow.
    assert few[:2] == (3 + together(2), 7 + audit_statements())
    record = 1 if connection.vendor == "postgresql" else 9
    chart = 1 if connection.vendor == "postgresql" else 2  # a short course's, in the page
    assert few[3] == 3 + record + chart + audit_statements()
    assert connection.vendor != "postgresql" or few[3] <= 12  # the budget, on the bench's database


def test_a_page_seen_again_on_the_same_connection_prepares_nothing(as_user, clinician):
    """On PostgreSQL a page's statements are prepared the first time a connection serves it
    (ketacare.prepared); the next time it runs them by name and sends no PREPARE."""
    if not sends_together():
        pytest.skip("statements are prepared on PostgreSQL's server only")
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 3)
    add_day(clinician, 2, timezone.localdate())
    urls = [reverse("courses:detail", args=[course.pk]), reverse("clinic:day"),
            reverse("patients:detail", args=[course.patient_id])]

    def prepares(url) -> list[str]:
        cache.clear()  # rendered each time, not served from the fragment cache
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return [q["sql"] for q in queries if q["sql"].startswith("PREPARE")]

    from ketacare.prepared import _prepared_names

    with connection.cursor() as cursor:  # as a new connection: none prepared yet
        cursor.execute("DEALLOCATE ALL")
        _prepared_names(cursor).clear()
    first = {url: prepares(url) for url in urls}
    assert all(first.values())  # each page prepared statements the first time
    assert {url: prepares(url) for url in urls} == {url: [] for url in urls}
