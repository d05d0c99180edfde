"""What the course page shows below its heading, read at once: its latest sessions and
scores with how many there are, the plan's progress, the flag decisions, the booked
appointments ahead, the medications of the day and the phase history; every session and score
of a course as its chart draws them (:func:`read_chart`, its own request); and what the
referral report shows of each course.

Through the ORM that is several queries, and building and compiling them cost as much as
running them. On PostgreSQL the same rows come in one statement, each part as JSON text
(ketacare.jsonrows), as ``courses.evaluation`` reads a course's facts; other databases take
the ORM's queries. Both give the same rows (tests/test_course_record.py compares them).

The course page reads no more for a course of 200 sessions than for one of 30: the chart of a
long course, which draws every session and score, is fetched by the page after it arrives
(courses.views.course_chart); a short course's is drawn into the page.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import attrgetter

from django.db import connection
from django.db.models import Count, Max

from accounts.models import User
from assessments.models import Assessment
from clinic.models import Appointment, AppointmentStatus
from clinic.plans import UPCOMING_SHOWN, day_bounds, plan_sessions
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
    # The latest RECENT_SESSIONS sessions, voided too, oldest first, with all of their row's
    # columns and adverse events; and how many sessions there are, voided too.
    sessions: list[SessionPoint]
    session_count: int
    # The sessions given (not voided) from the plan's first day on, and the last one's time:
    # what the plan box counts (0 and None without a plan).
    plan_done: int
    plan_last_at: datetime | None
    # The latest RECENT_SCORES scores, corrected too, oldest first, with who signed; how many
    # there are; and of those shown, the ones a correction replaced.
    scores: list[ScorePoint]
    score_count: int
    replaced: set[int]
    decisions: list[FlagDecision]  # oldest first, with who decided
    upcoming: list[Appointment]  # booked from today on, the first UPCOMING_SHOWN
    medications: list[Medication]  # taken on the day the page is read
    phase_changes: list[PhaseChange]  # oldest first, with who changed it


def read_record(course: Course, today: date, plan_starts_on: date | None = None) -> CourseRecord:
    """The record of ``course`` as the course page shows it on ``today``; ``plan_starts_on``:
    the first day of the course's plan, if it has one."""
    plan_since = day_bounds(plan_starts_on)[0] if plan_starts_on else None
    if connection.vendor == "postgresql":
        return _in_one_statement(course, today, plan_since)
    return _through_the_orm(course, today, plan_since)


def _through_the_orm(course: Course, today: date, plan_since: datetime | None) -> CourseRecord:
    since, _ = day_bounds(today)
    latest = course.sessions.order_by("-started_at", "-id").values("pk")[:RECENT_SESSIONS]
    progress = {"n": 0, "last": None}
    if plan_since is not None:
        progress = plan_sessions(TreatmentSession.objects.current().filter(
            course=course, started_at__gte=plan_since)).aggregate(n=Count("pk"),
                                                                  last=Max("started_at"))
    latest_scores = course.assessments.order_by("-administered_at", "-id").values("pk")[
        :RECENT_SCORES]
    return CourseRecord(
        sessions=session_points(course.sessions.filter(pk__in=latest)),
        session_count=course.sessions.count(),
        plan_done=progress["n"],
        plan_last_at=progress["last"],
        scores=score_points(course.assessments.filter(pk__in=latest_scores)),
        score_count=course.assessments.count(),
        replaced=set(Assessment.objects.filter(replaces__in=latest_scores)
                     .values_list("replaces_id", flat=True)),
        decisions=list(course.decisions.select_related("decided_by")),
        upcoming=list(course.appointments.booked().filter(starts_at__gte=since)
                      .order_by("starts_at", "id")[:UPCOMING_SHOWN]),
        medications=list(course.patient.medications.active_on(today)),
        phase_changes=list(course.phase_changes.select_related("changed_by")),
    )


# -- PostgreSQL: one statement --------------------------------------------------------------

# The plan's count and last session: the sessions clinic.plans.plan_sessions counts (given, not
# voided), from the plan's first day on; tests/test_course_record.py compares it with the ORM's.
_SQL = """
SELECT
  (SELECT count(*) FROM {session} WHERE course_id = %(course)s),
  (SELECT count(*) FROM {session} s WHERE s.course_id = %(course)s
      AND s.started_at >= %(plan_since)s::timestamptz
      AND NOT EXISTS (SELECT FROM {void} v WHERE v.session_id = s.id)),
  (SELECT max(s.started_at) FROM {session} s WHERE s.course_id = %(course)s
      AND s.started_at >= %(plan_since)s::timestamptz
      AND NOT EXISTS (SELECT FROM {void} v WHERE v.session_id = s.id)),
  (SELECT coalesce(json_agg(json_build_array({session_columns},
             (SELECT coalesce(json_agg(json_build_array(e.description, e.severity)
                                       ORDER BY e.id), '[]')
                FROM {event} e WHERE e.session_id = s.id)) ORDER BY s.started_at, s.id), '[]')
     FROM (SELECT * FROM {session} WHERE course_id = %(course)s
            ORDER BY started_at DESC, id DESC LIMIT {recent_sessions}) s
     LEFT JOIN {void} v ON v.session_id = s.id LEFT JOIN {user} u ON u.id = s.clinician_id)::text,
  (SELECT count(*) FROM {assessment} WHERE course_id = %(course)s),
  (SELECT coalesce(json_agg(json_build_array({score_columns},
             EXISTS (SELECT FROM {assessment} r WHERE r.replaces_id = a.id), {score_signer})
                            ORDER BY a.administered_at, a.id), '[]')
     FROM (SELECT * FROM {assessment} WHERE course_id = %(course)s
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
# clinician "u". The chart reads sessions as points (the first POINT_FIELDS); the tables read
# their rows in full.
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


def _session_points(points: str, rows: str = "[]") -> list[SessionPoint]:
    """Sessions from the JSON of their points, in its order, and of the rows read in full
    (each with its adverse events)."""
    made = [SessionPoint(tuple(_session(values))) for values in loads(points)]
    by_id = {point.pk: point for point in made}
    for full in _session_rows(rows):
        by_id[full.pk].values, by_id[full.pk].events = full.values, full.events
    return made


def _session_rows(rows: str) -> list[SessionPoint]:
    """Sessions from the JSON of their rows read in full, in its order."""
    made = []
    for *values, events in loads(rows):
        point = SessionPoint(tuple(_session(values)))
        point.events = [tuple(event) for event in events]
        made.append(point)
    return made


def _score(values: list) -> list:
    values[_ADMINISTERED] = datetime.fromisoformat(values[_ADMINISTERED])
    return values


def _score_points(scores: str) -> list[ScorePoint]:
    """Scores from their JSON, in its order."""
    return [ScorePoint(*_score(values)) for values in loads(scores)]


def _in_one_statement(course: Course, today: date, plan_since: datetime | None) -> CourseRecord:
    since, _ = day_bounds(today)
    with connection.cursor() as cursor:
        execute(cursor, _sql(), {"course": course.pk, "patient": course.patient_id,
                                "today": today, "since": since, "plan_since": plan_since,
                                "booked": AppointmentStatus.BOOKED.value})
        (session_count, plan_done, plan_last_at, sessions, score_count, scores, decisions,
         upcoming, medications, phase_changes) = cursor.fetchone()
    shown, replaced = [], set()
    for values in loads(scores):
        # A score's columns, whether a correction replaced it, then who signed it.
        cut = len(_SCORE_FIELDS)
        point = ScorePoint(*_score(values[:cut]), *values[cut + 1:])
        shown.append(point)
        if values[cut]:
            replaced.add(point.pk)
    return CourseRecord(
        sessions=_session_rows(sessions),
        session_count=session_count,
        plan_done=plan_done,
        plan_last_at=plan_last_at,
        scores=shown,
        score_count=score_count,
        replaced=replaced,
        decisions=with_signer(FlagDecision, "decided_by", loads(decisions)),
        upcoming=[reader(Appointment)(values) for values in loads(upcoming)],
        medications=[reader(Medication)(values) for values in loads(medications)],
        phase_changes=with_signer(PhaseChange, "changed_by", loads(phase_changes)),
    )


# -- the chart: every session given and every current score -------------------------------------

@dataclass
class ChartRecord:
    sessions: list[SessionPoint]  # given (not voided), oldest first, as points
    scores: list[ScorePoint]  # current (not corrected), oldest first, without who signed


def read_chart(course: Course) -> ChartRecord:
    """What the chart of ``course`` draws."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            execute(cursor, _chart_sql(), {"course": course.pk})
            points, scores = cursor.fetchone()
        return ChartRecord(_session_points(points), _score_points(scores))
    return ChartRecord(
        session_points(TreatmentSession.objects.current().filter(course=course)),
        score_points(Assessment.objects.current().filter(course=course)),
    )


_CHART_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array({point_columns}) ORDER BY s.started_at, s.id), '[]')
     FROM {session} s LEFT JOIN {void} v ON v.session_id = s.id
    WHERE s.course_id = %(course)s AND v.id IS NULL)::text,
  (SELECT coalesce(json_agg(json_build_array({score_columns})
                            ORDER BY a.administered_at, a.id), '[]')
     FROM {assessment} a WHERE a.course_id = %(course)s
      AND NOT EXISTS (SELECT FROM {assessment} r WHERE r.replaces_id = a.id))::text
"""


@cache
def _chart_sql() -> str:
    return _CHART_SQL.format(**_names())


# -- the referral report: every course of a patient ------------------------------------------

@dataclass
class ReportRecord:
    """What a patient's course report shows of each course (by course id): the sessions not
    voided, oldest first (each course's latest ``latest`` only, when given) with their rows'
    columns, and how many there are; the scores not corrected, oldest first (the charts: read
    only for the whole report); the flag decisions, oldest first, with who decided; and the
    medications taken on the day the report is read."""

    sessions: dict[int, list[SessionPoint]]
    session_counts: dict[int, int]
    scores: dict[int, list[ScorePoint]]
    decisions: dict[int, list[FlagDecision]]
    medications: list[Medication]


def read_report(patient, today: date, latest: int | None = None) -> ReportRecord:
    """Every course of ``patient``; ``latest``: list only each course's latest sessions, and
    read no scores (the page's charts are fetched apart); None: the whole report, charts
    included (the PDF)."""
    if connection.vendor == "postgresql":
        return _report_in_one_statement(patient, today, latest)
    mine = {"course__patient": patient}
    sessions = _by_course(session_points(TreatmentSession.objects.current().filter(**mine)))
    counts = {pk: len(points) for pk, points in sessions.items()}
    scores = {}
    if latest is not None:  # the embedded database: the page's rows cut here
        sessions = defaultdict(list, {pk: points[-latest:] for pk, points in sessions.items()})
    else:
        scores = _by_course(score_points(Assessment.objects.current().filter(**mine)))
    return ReportRecord(
        sessions, counts, scores,
        _by_course(FlagDecision.objects.filter(**mine).select_related("decided_by")
                   .order_by("decided_at", "id")),
        list(patient.medications.active_on(today)))


_REPORT_SQL = """
SELECT
  {points},
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
  {scores},
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
# The whole report (the PDF): every session as a point, and every current score, for the
# charts.
_REPORT_POINTS = """(SELECT coalesce(json_agg(json_build_array({point_columns})), '[]')
     FROM {session} s JOIN {course} c ON c.id = s.course_id LEFT JOIN {void} v
       ON v.session_id = s.id
    WHERE c.patient_id = %(patient)s AND v.id IS NULL)::text"""
_REPORT_SCORES = """(SELECT coalesce(json_agg(json_build_array({score_columns})), '[]')
     FROM {assessment} a JOIN {course} c ON c.id = a.course_id
    WHERE c.patient_id = %(patient)s
      AND NOT EXISTS (SELECT FROM {assessment} r WHERE r.replaces_id = a.id))::text"""
# The page: how many sessions each course has given, and no scores.
_REPORT_COUNTS = """(SELECT coalesce(json_agg(json_build_array(s.course_id, s.n)), '[]')
     FROM (SELECT s.course_id, count(*) AS n FROM {session} s JOIN {course} c
             ON c.id = s.course_id
            WHERE c.patient_id = %(patient)s
              AND NOT EXISTS (SELECT FROM {void} v WHERE v.session_id = s.id)
            GROUP BY s.course_id) s)::text"""


@cache
def _report_sql(whole: bool) -> str:
    names = _names()
    return _REPORT_SQL.format(
        points=(_REPORT_POINTS if whole else _REPORT_COUNTS).format(**names),
        scores=_REPORT_SCORES.format(**names) if whole else "'[]'", **names)


def _report_in_one_statement(patient, today: date, latest: int | None) -> ReportRecord:
    whole = latest is None
    with connection.cursor() as cursor:
        execute(cursor, _report_sql(whole), {"patient": patient.pk, "today": today,
                                            "latest": latest or 2**31 - 1})
        points, rows, scores, decisions, medications = cursor.fetchone()
    # Every session and score of the patient comes unordered and is put in time order here:
    # an aggregate's ORDER BY sorts its rows apart, which cost PostgreSQL (15) more than this.
    if whole:
        sessions = _by_course(sorted(_session_points(points, rows),
                                     key=attrgetter("started_at", "pk")))
        counts = {pk: len(given) for pk, given in sessions.items()}
    else:
        sessions = _by_course(sorted(_session_rows(rows), key=attrgetter("started_at", "pk")))
        counts = dict(loads(points))
    return ReportRecord(
        sessions, counts,
        _by_course(sorted(_score_points(scores), key=attrgetter("administered_at", "pk"))),
        _by_course(with_signer(FlagDecision, "decided_by", loads(decisions))),
        [reader(Medication)(values) for values in loads(medications)])


def _by_course(items: list) -> dict[int, list]:
    grouped = defaultdict(list)
    for item in items:
        grouped[item.course_id].append(item)
    return grouped
