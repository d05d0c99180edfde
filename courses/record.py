"""What the course page shows below its heading, read at once: every session and score (the
chart, the latest rows), the flag decisions, the booked appointments ahead, the medications
of the day and the phase history; and what the referral report shows of each course.

Through the ORM that is six queries (the report: four), and building and compiling them cost
as much as running them. On PostgreSQL the same rows come in one statement, each part as JSON
text (ketacare.jsonrows), as ``courses.evaluation`` reads a course's facts; other databases
take the ORM's queries. Both give the same rows (tests/test_course_record.py compares them).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import attrgetter

from django.db import connection

from accounts.models import User
from assessments.models import Assessment
from clinic.models import Appointment, AppointmentStatus
from clinic.plans import UPCOMING_SHOWN, day_bounds
from courses.models import (
    AdverseEvent,
    Course,
    FlagDecision,
    PhaseChange,
    SessionAmendment,
    SessionVoid,
    TreatmentSession,
)
from courses.rows import (
    RECENT_SCORES,
    RECENT_SESSIONS,
    ROW_FIELDS,
    SCORE_FIELDS,
    ScorePoint,
    SessionPoint,
    score_points,
    session_points,
)
from ketacare.jsonrows import SIGNER, columns, decimal, loads, reader, signer_columns, with_signer
from ketacare.prepared import execute
from patients.models import Medication


@dataclass
class CourseRecord:
    # Every session, voided too, oldest first; the latest RECENT_SESSIONS with all of their
    # row's columns and adverse events (the others may have only their POINT_FIELDS).
    sessions: list[SessionPoint]
    # Every score, corrected too, oldest first; the latest RECENT_SCORES with who signed.
    scores: list[ScorePoint]
    decisions: list[FlagDecision]  # oldest first, with who decided
    upcoming: list[Appointment]  # booked from today on, the first UPCOMING_SHOWN
    medications: list[Medication]  # taken on the day the page is read
    phase_changes: list[PhaseChange]  # oldest first, with who changed it


def read_record(course: Course, today: date) -> CourseRecord:
    """The record of ``course`` as the course page shows it on ``today``."""
    if connection.vendor == "postgresql":
        return _in_one_statement(course, today)
    return _through_the_orm(course, today)


def _through_the_orm(course: Course, today: date) -> CourseRecord:
    since, _ = day_bounds(today)
    return CourseRecord(
        sessions=session_points(course.sessions.all()),
        scores=score_points(course.assessments.all()),
        decisions=list(course.decisions.select_related("decided_by")),
        upcoming=list(course.appointments.booked().filter(starts_at__gte=since)
                      .order_by("starts_at", "id")[:UPCOMING_SHOWN]),
        medications=list(course.patient.medications.active_on(today)),
        phase_changes=list(course.phase_changes.select_related("changed_by")),
    )


# -- PostgreSQL: one statement --------------------------------------------------------------

_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array({point_columns}) ORDER BY s.started_at, s.id), '[]')
     FROM {session} s LEFT JOIN {void} v ON v.session_id = s.id
    WHERE s.course_id = %(course)s)::text,
  (SELECT coalesce(json_agg(json_build_array({session_columns},
             (SELECT coalesce(json_agg(json_build_array(e.description, e.severity)
                                       ORDER BY e.id), '[]')
                FROM {event} e WHERE e.session_id = s.id))), '[]')
     FROM (SELECT * FROM {session} WHERE course_id = %(course)s
            ORDER BY started_at DESC, id DESC LIMIT {recent_sessions}) s
     LEFT JOIN {void} v ON v.session_id = s.id LEFT JOIN {user} u ON u.id = s.clinician_id)::text,
  (SELECT coalesce(json_agg(json_build_array({score_columns})
                            ORDER BY a.administered_at, a.id), '[]')
     FROM {assessment} a WHERE a.course_id = %(course)s)::text,
  (SELECT coalesce(json_agg(json_build_array(a.id, {score_signer})), '[]')
     FROM (SELECT id, scored_by_id FROM {assessment} WHERE course_id = %(course)s
            ORDER BY administered_at DESC, id DESC LIMIT {recent_scores}) a
     LEFT JOIN {user} u ON u.id = a.scored_by_id)::text,
  (SELECT coalesce(json_agg(json_build_array({decision_columns}, {signer})
                            ORDER BY d.decided_at, d.id), '[]')
     FROM {decision} d LEFT JOIN {user} u ON u.id = d.decided_by_id
    WHERE d.course_id = %(course)s)::text,
  (SELECT coalesce(json_agg(json_build_array({appointment_columns})
                            ORDER BY b.starts_at, b.id), '[]')
     FROM (SELECT * FROM {appointment} WHERE course_id = %(course)s AND status = %(booked)s
             AND starts_at >= %(since)s ORDER BY starts_at, id LIMIT {upcoming}) b)::text,
  (SELECT coalesce(json_agg(json_build_array({medication_columns})
                            ORDER BY lower(m.name), m.started_on, m.id), '[]')
     FROM {medication} m WHERE m.patient_id = %(patient)s AND m.started_on <= %(today)s
      AND (m.stopped_on IS NULL OR m.stopped_on >= %(today)s))::text,
  (SELECT coalesce(json_agg(json_build_array({phase_columns}, {signer})
                            ORDER BY c.effective_on, c.id), '[]')
     FROM {phase} c LEFT JOIN {user} u ON u.id = c.changed_by_id
    WHERE c.course_id = %(course)s)::text
"""

# A session's columns (courses.rows.ROW_FIELDS) as SQL over "s", its void "v" and its
# clinician "u". Every session is read as a point (the first POINT_FIELDS: the chart, the
# plan's count, the numbering); only the latest, which the page shows as rows, in full.
POINT_FIELDS = ROW_FIELDS[:ROW_FIELDS.index("course") + 1]
_SESSION_SQL = {
    "pk": "s.id",
    "course": "s.course_id",
    "void": "v.id",
    "amended": "EXISTS (SELECT FROM {amendment} m WHERE m.session_id = s.id)",
    **{f"clinician__{name}": f"u.{name}" for name in SIGNER},
}
_SCORE_FIELDS = SCORE_FIELDS[:SCORE_FIELDS.index("replaces_id") + 1]  # and, latest, who signed
_SCORE_SQL = {"pk": "a.id", "course": "a.course_id"}
_SCORE_SIGNER = [name.removeprefix("scored_by__") for name in SCORE_FIELDS[len(_SCORE_FIELDS):]]


@cache
def _names() -> dict:
    """The tables and column lists the statements are written with."""
    quote = connection.ops.quote_name
    tables = {"void": quote(SessionVoid._meta.db_table),
              "amendment": quote(SessionAmendment._meta.db_table)}

    def session_columns(names):
        return ", ".join(_SESSION_SQL.get(name, f"s.{quote(name)}").format(**tables)
                         for name in names)

    return dict(
        point_columns=session_columns(POINT_FIELDS),
        session_columns=session_columns(ROW_FIELDS),
        recent_sessions=int(RECENT_SESSIONS),
        score_columns=", ".join(_SCORE_SQL.get(name, f"a.{quote(name)}")
                                for name in _SCORE_FIELDS),
        recent_scores=int(RECENT_SCORES),
        score_signer=", ".join(f"u.{quote(name)}" for name in _SCORE_SIGNER),
        signer=signer_columns("u"),
        decision_columns=columns(FlagDecision, "d"),
        appointment_columns=columns(Appointment, "b"),
        medication_columns=columns(Medication, "m"),
        phase_columns=columns(PhaseChange, "c"),
        upcoming=int(UPCOMING_SHOWN),
        course=quote(Course._meta.db_table),
        session=quote(TreatmentSession._meta.db_table),
        void=tables["void"],
        event=quote(AdverseEvent._meta.db_table),
        assessment=quote(Assessment._meta.db_table),
        decision=quote(FlagDecision._meta.db_table),
        appointment=quote(Appointment._meta.db_table),
        medication=quote(Medication._meta.db_table),
        phase=quote(PhaseChange._meta.db_table),
        user=quote(User._meta.db_table),
    )


@cache
def _sql() -> str:
    return _SQL.format(**_names())


def _session(values: list) -> list:
    values[_STARTED] = datetime.fromisoformat(values[_STARTED])
    for i in (_DOSE_PER_KG, _DOSE_MG):
        if values[i] is not None:
            values[i] = decimal(values[i])
    return values


_STARTED, _DOSE_PER_KG, _DOSE_MG = (ROW_FIELDS.index(name)
                                    for name in ("started_at", "dose_mg_per_kg", "dose_mg"))
_ADMINISTERED = SCORE_FIELDS.index("administered_at")


def _session_points(points: str, rows: str) -> list[SessionPoint]:
    """Sessions from the JSON of their points, in its order, and of the rows read in full
    (each with its adverse events)."""
    made = [SessionPoint(tuple(_session(values))) for values in loads(points)]
    by_id = {point.pk: point for point in made}
    for *values, events in loads(rows):
        point = by_id[values[0]]
        point.values = tuple(_session(values))
        point.events = [tuple(event) for event in events]
    return made


def _score_points(scores: str, signed: dict | None = None) -> list[ScorePoint]:
    """Scores from their JSON, in its order; ``signed``: who signed, by score id, for those
    read with their signer."""
    made = []
    for values in loads(scores):
        values[_ADMINISTERED] = datetime.fromisoformat(values[_ADMINISTERED])
        made.append(ScorePoint(*values, *(signed or {}).get(values[0], ())))
    return made


def _in_one_statement(course: Course, today: date) -> CourseRecord:
    since, _ = day_bounds(today)
    with connection.cursor() as cursor:
        execute(cursor, _sql(), {"course": course.pk, "patient": course.patient_id,
                                "today": today, "since": since,
                                "booked": AppointmentStatus.BOOKED.value})
        (points, latest, scores, signers, decisions, upcoming, medications,
         phase_changes) = cursor.fetchone()
    signed = {pk: tuple(names) for pk, *names in loads(signers)}
    return CourseRecord(
        sessions=_session_points(points, latest),
        scores=_score_points(scores, signed),
        decisions=with_signer(FlagDecision, "decided_by", loads(decisions)),
        upcoming=[reader(Appointment)(values) for values in loads(upcoming)],
        medications=[reader(Medication)(values) for values in loads(medications)],
        phase_changes=with_signer(PhaseChange, "changed_by", loads(phase_changes)),
    )


# -- the referral report: every course of a patient ------------------------------------------

@dataclass
class ReportRecord:
    """What a patient's course report shows of each course (by course id): the sessions not
    voided, oldest first, the latest ``latest`` of them with their rows' columns; the scores
    not corrected, oldest first (the chart); the flag decisions, oldest first, with who
    decided; and the medications taken on the day the report is read."""

    sessions: dict[int, list[SessionPoint]]
    scores: dict[int, list[ScorePoint]]
    decisions: dict[int, list[FlagDecision]]
    medications: list[Medication]


def read_report(patient, today: date, latest: int | None = None) -> ReportRecord:
    """Every course of ``patient``; ``latest``: how many of each course's latest sessions are
    read in full (None: all)."""
    if connection.vendor == "postgresql":
        return _report_in_one_statement(patient, today, latest)
    mine = {"course__patient": patient}
    return ReportRecord(
        _by_course(session_points(TreatmentSession.objects.current().filter(**mine))),
        _by_course(score_points(Assessment.objects.current().filter(**mine))),
        _by_course(FlagDecision.objects.filter(**mine).select_related("decided_by")
                   .order_by("decided_at", "id")),
        list(patient.medications.active_on(today)))


_REPORT_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array({point_columns})), '[]')
     FROM {session} s JOIN {course} c ON c.id = s.course_id LEFT JOIN {void} v
       ON v.session_id = s.id
    WHERE c.patient_id = %(patient)s AND v.id IS NULL)::text,
  (SELECT coalesce(json_agg(json_build_array({session_columns},
             (SELECT coalesce(json_agg(json_build_array(e.description, e.severity)
                                       ORDER BY e.id), '[]')
                FROM {event} e WHERE e.session_id = s.id))), '[]')
     FROM (SELECT s.*, row_number() OVER (PARTITION BY s.course_id
                                          ORDER BY s.started_at DESC, s.id DESC) AS latest
             FROM {session} s JOIN {course} c ON c.id = s.course_id
            WHERE c.patient_id = %(patient)s
              AND NOT EXISTS (SELECT FROM {void} v WHERE v.session_id = s.id)) s
     LEFT JOIN {void} v ON v.session_id = s.id LEFT JOIN {user} u ON u.id = s.clinician_id
    WHERE s.latest <= %(latest)s)::text,
  (SELECT coalesce(json_agg(json_build_array({score_columns})), '[]')
     FROM {assessment} a JOIN {course} c ON c.id = a.course_id
    WHERE c.patient_id = %(patient)s
      AND NOT EXISTS (SELECT FROM {assessment} r WHERE r.replaces_id = a.id))::text,
  (SELECT coalesce(json_agg(json_build_array({decision_columns}, {signer})
                            ORDER BY d.decided_at, d.id), '[]')
     FROM {decision} d JOIN {course} c ON c.id = d.course_id
     LEFT JOIN {user} u ON u.id = d.decided_by_id
    WHERE c.patient_id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array({medication_columns})
                            ORDER BY lower(m.name), m.started_on, m.id), '[]')
     FROM {medication} m WHERE m.patient_id = %(patient)s AND m.started_on <= %(today)s
      AND (m.stopped_on IS NULL OR m.stopped_on >= %(today)s))::text
"""


@cache
def _report_sql() -> str:
    return _REPORT_SQL.format(**_names())


def _report_in_one_statement(patient, today: date, latest: int | None) -> ReportRecord:
    with connection.cursor() as cursor:
        execute(cursor, _report_sql(), {"patient": patient.pk, "today": today,
                                       "latest": latest or 2**31 - 1})
        points, rows, scores, decisions, medications = cursor.fetchone()
    # Every session and score of the patient comes unordered and is put in time order here:
    # an aggregate's ORDER BY sorts its rows apart, which cost PostgreSQL (15) more than this.
    return ReportRecord(
        _by_course(sorted(_session_points(points, rows), key=attrgetter("started_at", "pk"))),
        _by_course(sorted(_score_points(scores), key=attrgetter("administered_at", "pk"))),
        _by_course(with_signer(FlagDecision, "decided_by", loads(decisions))),
        [reader(Medication)(values) for values in loads(medications)])


def _by_course(items: list) -> dict[int, list]:
    grouped = defaultdict(list)
    for item in items:
        grouped[item.course_id].append(item)
    return grouped
