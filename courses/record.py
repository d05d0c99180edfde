"""What the course page shows below its heading, read at once: every session and score (the
chart, the latest rows), the flag decisions, the booked appointments ahead, the medications
of the day and the phase history.

Through the ORM that is six queries, and building and compiling them cost as much as running
them. On PostgreSQL the same rows come in one statement, each part as JSON text (parsed in C;
times by ``datetime.fromisoformat``, numbers as ``Decimal``), as ``courses.evaluation`` reads
a course's facts; other databases take the ORM's six queries. Both give the same rows
(tests/test_course_record.py compares them).
"""

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.models import Model

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
    ROW_FIELDS,
    SCORE_FIELDS,
    ScorePoint,
    SessionPoint,
    score_points,
    session_points,
)
from patients.models import Medication


@dataclass
class CourseRecord:
    sessions: list[SessionPoint]  # every one, voided too, oldest first
    scores: list[ScorePoint]  # every one, corrected too, oldest first
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

# Who signed, as much as User.signature reads, in the model's field order (Model.from_db
# takes a partial row in that order).
_SIGNER = tuple(field.attname for field in User._meta.concrete_fields
                if field.attname in {"id", "first_name", "last_name", "username", "credentials"})

_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array({session_columns},
             (SELECT coalesce(json_agg(json_build_array(e.description, e.severity)
                                       ORDER BY e.id), '[]')
                FROM {event} e WHERE e.session_id = s.id))
                            ORDER BY s.started_at, s.id), '[]')
     FROM {session} s LEFT JOIN {user} u ON u.id = s.clinician_id
    WHERE s.course_id = %(course)s)::text,
  (SELECT coalesce(json_agg(json_build_array({score_columns})
                            ORDER BY a.administered_at, a.id), '[]')
     FROM {assessment} a LEFT JOIN {user} u ON u.id = a.scored_by_id
    WHERE a.course_id = %(course)s)::text,
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

# The session columns of a row (courses.rows.ROW_FIELDS), as SQL over "s" and its clinician
# "u"; the void and whether it was amended are subqueries.
_SESSION_SQL = {
    "pk": "s.id",
    "course": "s.course_id",
    "void": "(SELECT v.id FROM {void} v WHERE v.session_id = s.id)",
    "amended": "EXISTS (SELECT FROM {amendment} m WHERE m.session_id = s.id)",
    **{f"clinician__{name}": f"u.{name}" for name in _SIGNER},
}
_SCORE_SQL = {"pk": "a.id", "course": "a.course_id",
              **{f"scored_by__{name}": f"u.{name}" for name in _SIGNER}}


def _columns(model: type[Model], alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


@cache
def _sql() -> str:
    quote = connection.ops.quote_name
    tables = {"void": quote(SessionVoid._meta.db_table),
              "amendment": quote(SessionAmendment._meta.db_table)}
    session_columns = ", ".join(
        _SESSION_SQL.get(name, f"s.{quote(name)}").format(**tables) for name in ROW_FIELDS
    )
    return _SQL.format(
        session_columns=session_columns,
        score_columns=", ".join(_SCORE_SQL.get(name, f"a.{quote(name)}")
                                for name in SCORE_FIELDS),
        signer=", ".join(f"u.{quote(name)}" for name in _SIGNER),
        decision_columns=_columns(FlagDecision, "d"),
        appointment_columns=_columns(Appointment, "b"),
        medication_columns=_columns(Medication, "m"),
        phase_columns=_columns(PhaseChange, "c"),
        upcoming=int(UPCOMING_SHOWN),
        session=quote(TreatmentSession._meta.db_table),
        event=quote(AdverseEvent._meta.db_table),
        assessment=quote(Assessment._meta.db_table),
        decision=quote(FlagDecision._meta.db_table),
        appointment=quote(Appointment._meta.db_table),
        medication=quote(Medication._meta.db_table),
        phase=quote(PhaseChange._meta.db_table),
        user=quote(User._meta.db_table),
    )


def _json(text: str):
    return json.loads(text, parse_float=Decimal)  # 0.500 mg/kg stays exact


@cache
def _reader(model: type[Model]):
    """``values -> instance`` of ``model`` from its concrete fields' JSON values, each typed
    as the ORM types it (times, days, decimals)."""
    fields = model._meta.concrete_fields
    attnames = [field.attname for field in fields]
    typed = [(i, _TYPES[kind]) for i, field in enumerate(fields)
             if (kind := field.get_internal_type()) in _TYPES]

    def read(values: list) -> Model:
        for i, kind in typed:
            if values[i] is not None:
                values[i] = kind(values[i])
        return model.from_db(connection.alias, attnames, values)

    return read


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


_TYPES = {"DateTimeField": datetime.fromisoformat, "DateField": date.fromisoformat,
          "DecimalField": _decimal, "UUIDField": uuid.UUID}


def _signer(values: list) -> User | None:
    if values[0] is None:
        return None
    return User.from_db(connection.alias, list(_SIGNER), values)


def _with_signer(model: type[Model], relation: str, rows: list) -> list:
    read, width = _reader(model), len(model._meta.concrete_fields)
    made = []
    for values in rows:
        instance = read(values[:width])
        setattr(instance, relation, _signer(values[width:]))
        made.append(instance)
    return made


_STARTED, _DOSE_PER_KG, _DOSE_MG = (ROW_FIELDS.index(name)
                                    for name in ("started_at", "dose_mg_per_kg", "dose_mg"))
_ADMINISTERED = SCORE_FIELDS.index("administered_at")


def _in_one_statement(course: Course, today: date) -> CourseRecord:
    since, _ = day_bounds(today)
    with connection.cursor() as cursor:
        cursor.execute(_sql(), {"course": course.pk, "patient": course.patient_id,
                                "today": today, "since": since,
                                "booked": AppointmentStatus.BOOKED.value})
        sessions, scores, decisions, upcoming, medications, phase_changes = cursor.fetchone()
    points = []
    for values in _json(sessions):
        *values, events = values
        values[_STARTED] = datetime.fromisoformat(values[_STARTED])
        for i in (_DOSE_PER_KG, _DOSE_MG):
            if values[i] is not None:
                values[i] = _decimal(values[i])
        point = SessionPoint(tuple(values))
        point.events = [tuple(event) for event in events]
        points.append(point)
    score_list = []
    for values in _json(scores):
        values[_ADMINISTERED] = datetime.fromisoformat(values[_ADMINISTERED])
        score_list.append(ScorePoint(*values))
    return CourseRecord(
        sessions=points,
        scores=score_list,
        decisions=_with_signer(FlagDecision, "decided_by", _json(decisions)),
        upcoming=[_reader(Appointment)(values) for values in _json(upcoming)],
        medications=[_reader(Medication)(values) for values in _json(medications)],
        phase_changes=_with_signer(PhaseChange, "changed_by", _json(phase_changes)),
    )
