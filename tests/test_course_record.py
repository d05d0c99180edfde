"""The course page's record (courses.record): PostgreSQL reads in one statement what the ORM
reads in six, row for row, and the page shows it."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments.models import Source
from clinic.models import AppointmentStatus
from clinic.plans import UPCOMING_SHOWN, day_bounds
from courses.actions import amend_session, record_session, void_session
from courses.models import FlagDecision, PhaseChange, TreatmentSession
from courses.record import (
    POINT_FIELDS,
    _in_one_statement,
    _report_in_one_statement,
    _through_the_orm,
    read_chart,
    read_record,
    read_report,
)
from courses.rows import RECENT_SCORES, RECENT_SESSIONS
from tests.conftest import sent
from tests.factories import (
    AppointmentFactory,
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    SessionFactory,
    UserFactory,
    at,
)

TODAY = date(2026, 3, 1)


@pytest.fixture
def rich_course(clinician):
    """A course with a row of every kind the page reads, and the ones it must leave out."""
    course = CourseFactory(started_on=date(2026, 2, 1))
    other = UserFactory(first_name="Ada", last_name="Quill", credentials="RN")
    for day, dose in ((2, "0.5"), (4, "0.55"), (6, "0.6"), (8, "0.75")):
        record_session(clinician, TreatmentSession(
            course=course, started_at=at(date(2026, 2, day)), route="iv", dose_mg_per_kg=dose,
            dose_mg="40.0", infusion_minutes=40, bp_pre_systolic=128, bp_pre_diastolic=80,
        ), [("nausea", "mild"), ("headache", "moderate")] if day == 4 else [])
    record_session(other, TreatmentSession(
        course=course, started_at=at(date(2026, 2, 10)), route="intranasal", dose_mg="56.0",
        status="stopped", stop_reason="blood pressure",
    ), [])
    amended = TreatmentSession.objects.get(course=course, started_at__date=date(2026, 2, 6))
    amended.infusion_minutes = 45
    amend_session(clinician, amended, read_version=amended.version, reason="timer")
    wrong = TreatmentSession.objects.get(course=course, started_at__date=date(2026, 2, 8))
    void_session(clinician, wrong, read_version=wrong.version, reason="wrong patient")
    first = AssessmentFactory(course=course, administered_at=at(date(2026, 2, 1), 8),
                              scored_by=other)
    AssessmentFactory(course=course, administered_at=first.administered_at, replaces=first,
                      items=[1] * 10, scored_by=clinician)
    AssessmentFactory(course=course, instrument="phq9", items=[1] * 9,
                      administered_at=at(date(2026, 2, 9), 8), source=Source.SELF_REPORT,
                      scored_by=None)
    for code, decision, who in (("DOSE_ESCALATION", "accepted", clinician),
                                ("MAINTENANCE_PLAN", "declined", other)):
        FlagDecision.objects.create(course=course, code=code, decision=decision, action="",
                                    reason="not yet", flag_message="seen", decided_by=who,
                                    decided_at=at(date(2026, 2, 9)))
    PhaseChange.objects.create(course=course, from_phase="induction", to_phase="maintenance",
                               effective_on=date(2026, 2, 20), changed_by=other)
    for name, started, stopped in (("lithium", date(2026, 1, 1), None),
                                   ("Bupropion", date(2026, 1, 1), TODAY),  # stops today
                                   ("zolpidem", date(2025, 1, 1), date(2026, 2, 28)),
                                   ("aripiprazole", date(2026, 3, 2), None)):  # tomorrow
        MedicationFactory(patient=course.patient, name=name, started_on=started,
                          stopped_on=stopped)
    for days in range(-1, UPCOMING_SHOWN + 2):  # yesterday's, and more than the box shows
        AppointmentFactory(course=course, starts_at=at(TODAY + timedelta(days=days), 10))
    AppointmentFactory(course=course, starts_at=at(TODAY, 11),
                       status=AppointmentStatus.CANCELLED, cancel_reason="ill")
    return course


def _as_data(record) -> list:
    """Every value the page can read from the record, signatures included."""
    def instance(obj):
        values = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
        for relation in ("decided_by", "changed_by"):
            if hasattr(obj, relation):
                values[relation] = getattr(obj, relation).signature
        return values

    return [
        [(point.values, point.events) for point in record.sessions],
        record.session_count, record.plan_done, record.plan_last_at,
        [[getattr(point, name) for name in point.__slots__] for point in record.scores],
        record.score_count, record.replaced,
        *([instance(obj) for obj in rows] for rows in (
            record.decisions, record.upcoming, record.medications, record.phase_changes)),
    ]


# The plan's count from 5 February on: the sessions of the 6th and the 10th (the 8th's is
# voided); without a plan, none.
PLAN_SINCE = day_bounds(date(2026, 2, 5))[0]


@pytest.mark.parametrize("plan_since", [PLAN_SINCE, None])
def test_postgresql_reads_in_one_statement_what_the_orm_reads(rich_course, plan_since):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's")
    with CaptureQueriesContext(connection) as queries:
        fast = _in_one_statement(rich_course, TODAY, plan_since)
    assert len(sent(queries)) == 1
    assert _as_data(fast) == _as_data(_through_the_orm(rich_course, TODAY, plan_since))
    assert (fast.plan_done, fast.plan_last_at) == (
        (2, at(date(2026, 2, 10))) if plan_since else (0, None))
    # Exact types, as the ORM gives them: the rows format doses and times from them.
    point = fast.sessions[0]
    assert point.dose_mg_per_kg == Decimal("0.500") and str(point.dose_mg) == "40.0"
    assert point.started_at.tzinfo is not None
    assert isinstance(fast.upcoming[0].dose_mg_per_kg, Decimal)


def test_a_long_course_reads_its_latest_rows_and_counts_the_rest(clinician):
    """The page reads the latest sessions and scores only, whatever the course's length."""
    course = CourseFactory(started_on=date(2025, 1, 1))
    for day in range(RECENT_SESSIONS + 6):
        SessionFactory(course=course, started_at=at(date(2025, 1, 2) + timedelta(days=day)),
                       clinician=clinician if day % 2 else UserFactory(credentials="RN"))
        AssessmentFactory(course=course, administered_at=at(date(2025, 1, 2)
                                                            + timedelta(days=day), 8))
    record = read_record(course, TODAY, plan_starts_on=date(2025, 1, 10))
    assert record.session_count == RECENT_SESSIONS + 6
    assert record.score_count == RECENT_SESSIONS + 6
    assert [p.started_at for p in record.sessions] == [
        at(date(2025, 1, 2) + timedelta(days=day)) for day in range(6, RECENT_SESSIONS + 6)]
    assert len(record.scores) == RECENT_SCORES
    # From 10 January on: the sessions of days 8 to 15 of the course.
    assert (record.plan_done, record.plan_last_at) == (
        RECENT_SESSIONS - 2, at(date(2025, 1, 2) + timedelta(days=RECENT_SESSIONS + 5)))
    if connection.vendor == "postgresql":
        since = day_bounds(date(2025, 1, 10))[0]
        assert _as_data(record) == _as_data(_through_the_orm(course, TODAY, since))


def test_the_chart_reads_every_session_given_and_every_current_score(rich_course):
    chart = read_chart(rich_course)
    assert [p.started_at.day for p in chart.sessions] == [2, 4, 6, 10]  # not the voided 8th
    assert [(p.total, p.is_self_report) for p in chart.scores] == [(10, False), (9, True)]
    if connection.vendor == "postgresql":
        vendor = connection.vendor
        try:
            connection.vendor = "sqlite"  # the ORM's path, on the same database
            slow = read_chart(rich_course)
        finally:
            connection.vendor = vendor
        assert [p.values[:len(POINT_FIELDS)] for p in chart.sessions] == [
            p.values[:len(POINT_FIELDS)] for p in slow.sessions]
        assert [[getattr(p, name) for name in p.__slots__ if name != "scored_by"]
                for p in chart.scores] == [
            [getattr(p, name) for name in p.__slots__ if name != "scored_by"]
            for p in slow.scores]


def test_the_record_holds_what_the_page_shows(clinician, rich_course):
    record = read_record(rich_course, TODAY)
    assert [point.route for point in record.sessions] == ["iv"] * 4 + ["intranasal"]
    assert [point.void is not None for point in record.sessions] == [False] * 3 + [True, False]
    assert [point.values[-1] for point in record.sessions] == [False, False, True, False, False]
    assert record.sessions[1].events == [("nausea", "mild"), ("headache", "moderate")]
    assert [(p.total, p.replaces_id is not None, p.is_self_report) for p in record.scores] == [
        (36, False, False), (10, True, False), (9, False, True)]
    assert (record.session_count, record.score_count) == (5, 3)
    assert record.replaced == {record.scores[0].pk}  # the first score, corrected
    assert [(d.code, d.decided_by.signature) for d in record.decisions] == [
        ("DOSE_ESCALATION", clinician.signature), ("MAINTENANCE_PLAN", "Ada Quill, RN")]
    # Booked from today on, the first UPCOMING_SHOWN; not yesterday's, not the cancelled one.
    assert [a.starts_at for a in record.upcoming] == [
        at(TODAY + timedelta(days=days), 10) for days in range(UPCOMING_SHOWN)]
    # Taken today, in the list's order (name, ignoring case): not stopped before, not later.
    assert [m.name for m in record.medications] == ["Bupropion", "lithium"]
    assert [(c.to_phase, c.changed_by.signature) for c in record.phase_changes][-1] == (
        "maintenance", "Ada Quill, RN")


def test_the_course_page_shows_the_record(as_user, clinician, rich_course):
    page = as_user(clinician).get(reverse("courses:detail", args=[rich_course.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    # Read today, after every appointment and with only lithium still taken.
    for text in ("nausea (mild); headache (moderate)", "Ada Quill, RN", "voided", "amended",
                 "lithium", "Maintenance"):
        assert text in html, text


# -- the referral report ----------------------------------------------------------------------

def _report_data(record) -> list:
    def decision(obj):
        return ({f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields},
                obj.decided_by.signature)

    return [
        {course: [(p.values, p.events) for p in points]
         for course, points in record.sessions.items()},
        record.session_counts,
        {course: [[getattr(p, name) for name in p.__slots__ if name != "scored_by"]
                  for p in points] for course, points in record.scores.items()},
        {course: [decision(d) for d in decisions]
         for course, decisions in record.decisions.items()},
        [m.pk for m in record.medications],
    ]


@pytest.mark.parametrize("latest", [2, None])
def test_the_report_reads_in_one_statement_what_the_orm_reads(rich_course, latest):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's")
    patient = rich_course.patient
    earlier = CourseFactory(patient=patient, started_on=date(2025, 6, 1),
                            ended_on=date(2025, 12, 1), end_reason="completed", phase="ended")
    # Entered latest first (PostgreSQL then gives them in that order unless sorted), and two
    # scores at the same instant (the id decides).
    for day in reversed(range(4)):
        SessionFactory(course=earlier, started_at=at(date(2025, 6, 2) + timedelta(days=day)))
        for instrument, total in [("phq9", 12 - day), ("madrs", 30 - day)]:
            AssessmentFactory(course=earlier, instrument=instrument, total=total, items=None,
                              administered_at=at(date(2025, 6, 2) + timedelta(days=day), 11))
    with CaptureQueriesContext(connection) as queries:
        fast = _report_in_one_statement(patient, TODAY, latest)
    assert len(sent(queries)) == 1
    connection_vendor = connection.vendor
    try:
        connection.vendor = "sqlite"  # the ORM's path, on the same database
        slow = read_report(patient, TODAY, latest)
    finally:
        connection.vendor = connection_vendor
    assert _report_data(fast) == _report_data(slow)
    # Voided sessions and corrected scores are not in the report; the page (latest) lists
    # each course's latest sessions and reads no scores (its charts are fetched apart).
    assert fast.session_counts == {rich_course.pk: 4, earlier.pk: 4}
    assert [p.started_at.day for p in fast.sessions[earlier.pk]] == [2, 3, 4, 5][-(latest or 4):]
    if latest:
        assert fast.scores == {}
    else:
        assert [p.total for p in fast.scores[rich_course.pk]] == [10, 9]
        assert [p.total for p in fast.scores[earlier.pk]] == [12, 30, 11, 29, 10, 28, 9, 27]
