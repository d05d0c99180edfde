"""Between the database and the pure rules engine, one pass: read a course's facts, evaluate
them (the engine returns everything that is stored, its outcome included), and keep the
result on the course so every page shows the current word without recomputing it. What the
facts mean clinically is the engine's business (clinical/); this module only reads and stores."""

from datetime import date, datetime
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Case, IntegerField, Max, Value, When
from django.utils import timezone

from clinical.engine import RULES_REVISION, EngineSettings, Evaluation, evaluate
from clinical.facts import (
    AssessmentFact,
    CourseFacts,
    FailedTrial,
    MedicationFact,
    PatientFacts,
    SessionFact,
)
from clinical.vocab import (
    Diagnosis,
    FlagSeverity,
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
)
from courses.models import Course, Decision, FlagDecision, TreatmentSession
from ketacare.jsonrows import loads
from ketacare.prepared import execute


@cache
def engine_settings() -> EngineSettings:
    rules = settings.KETACARE_RULES
    return EngineSettings(
        madrs_remission=rules["MADRS_REMISSION"],
        phq9_remission=rules["PHQ9_REMISSION"],
        bp_warning=tuple(rules["BP_WARNING"]),
        bp_critical=tuple(rules["BP_CRITICAL"]),
        timezone=ZoneInfo(settings.TIME_ZONE),
    )


def _pair(first, second) -> tuple[int, int] | None:
    return (first, second) if first is not None and second is not None else None


def _members(vocab) -> dict:
    """Spelling -> member: a dict lookup per column value (calling the enum is ~1 µs each,
    and a 60-session course reads hundreds of them)."""
    return {member.value: member for member in vocab}


_ROUTE, _INTENSITY, _SESSION_STATUS = _members(Route), _members(Intensity), _members(SessionStatus)
_INSTRUMENT, _MED_CLASS = _members(Instrument), _members(MedClass)
_BY_RANK = tuple(Intensity)  # none, mild, moderate, severe


class _Decision(NamedTuple):
    """A flag decision as the open-flag columns read it."""

    code: str
    decision: str
    flag_message: str


class _Rows(NamedTuple):
    """What a refresh reads of a course, as plain values, oldest first where it matters:
    the patient's (diagnosis, psychotic features), failed prior trials (drug, class,
    adequate), medications (name, class, start, stop), sessions not voided (_SESSION_COLUMNS
    and the worst adverse event's rank, 0 for none), current assessments (time, instrument,
    total, items) and every flag decision."""

    patient: tuple
    trials: list
    medications: list
    sessions: list
    assessments: list
    decisions: list[_Decision]


_SESSION_COLUMNS = (
    "started_at", "route", "dose_mg_per_kg", "dose_mg", "infusion_minutes", "dissociation",
    "benzodiazepine_24h", "bp_pre_systolic", "bp_pre_diastolic", "discharged_at",
    "enhanced_monitoring", "status",
)


def _read(course: Course) -> tuple[CourseFacts, list[_Decision], datetime | None]:
    """The course's facts, its flag decisions (every one, oldest first) and when its latest
    session not voided started."""
    rows = _rows_in_one_statement(course) if connection.vendor == "postgresql" else _rows(course)
    diagnosis, psychotic_features = rows.patient
    sessions = tuple(
        SessionFact(
            at, _ROUTE[route], per_kg, mg, minutes, _INTENSITY[dissociation], _BY_RANK[worst],
            benzodiazepine, _pair(systolic, diastolic), discharged, enhanced,
            _SESSION_STATUS[status],
        )
        for (at, route, per_kg, mg, minutes, dissociation, benzodiazepine, systolic,
             diastolic, discharged, enhanced, status, worst) in rows.sessions
    )
    facts = CourseFacts(
        patient=PatientFacts(
            diagnosis=Diagnosis(diagnosis),
            psychotic_features=psychotic_features,
            # weight_kg is left out: no rule reads it, and it would cost a read per refresh.
            failed_trials=tuple(
                FailedTrial(drug, _MED_CLASS[drug_class], adequate)
                for drug, drug_class, adequate in rows.trials
            ),
        ),
        phase=Phase(course.phase),
        maintenance_started=course.maintenance_started_on,
        medications=tuple(
            MedicationFact(name, _MED_CLASS[drug_class], started, stopped)
            for name, drug_class, started, stopped in rows.medications
        ),
        sessions=sessions,
        assessments=tuple(
            AssessmentFact(at, _INSTRUMENT[instrument], total, tuple(items) if items else None)
            for at, instrument, total, items in rows.assessments
        ),
        # Accepting a flag once is enough (a later decision does not take it back).
        accepted_flags=frozenset(
            decision.code for decision in rows.decisions
            if decision.decision == Decision.ACCEPTED
        ),
    )
    last_session_at = max((session.at for session in sessions), default=None)
    return facts, rows.decisions, last_session_at


# The worst adverse event of each session, as a rank in the session's own row: 0 for none.
_WORST_EVENT = Max(Case(
    *(When(adverse_events__severity=level.value, then=Value(rank))
      for rank, level in enumerate(_BY_RANK) if rank),
    default=Value(0),
    output_field=IntegerField(),
))


def _rows(course: Course) -> _Rows:
    """The rows of a refresh through the ORM: six queries of only the columns read (five
    when the patient is loaded). PostgreSQL reads the same in one statement."""
    from assessments.models import Assessment  # assessments.models imports this app's models
    from patients.models import FAILED_OUTCOMES, Medication, PriorTrial

    patient = course.patient
    return _Rows(
        patient=(patient.diagnosis, patient.psychotic_features),
        trials=list(
            PriorTrial.objects.filter(patient=course.patient_id, outcome__in=FAILED_OUTCOMES)
            .order_by("id").values_list("drug", "drug_class", "adequate")
        ),
        medications=list(
            Medication.objects.filter(patient=course.patient_id)
            .values_list("name", "drug_class", "started_on", "stopped_on")
        ),
        # A voided session was entered in error: it counts for nothing (SPEC §7).
        sessions=list(
            TreatmentSession.objects.current().filter(course=course.pk)
            .annotate(worst_event=_WORST_EVENT).order_by("started_at", "id")
            .values_list(*_SESSION_COLUMNS, "worst_event")
        ),
        assessments=list(
            Assessment.objects.for_course(course).current().order_by("administered_at", "id")
            .values_list("administered_at", "instrument", "total", "items")
        ),
        decisions=[
            _Decision(*row) for row in FlagDecision.objects.filter(course=course.pk)
            .order_by("decided_at", "id").values_list("code", "decision", "flag_message")
        ],
    )


# PostgreSQL: everything a refresh reads, in one statement, each part as JSON text (parsed in
# C, times by datetime.fromisoformat, numbers as Decimal). Through the ORM the same reads
# took 9 ms for a 60-session course on the benchmark machine, nearly all of it building the
# six queries and decoding their rows in Python; this takes about 2. The same rows as _rows()
# (tests/test_evaluation.py compares them).
_ONE_STATEMENT_SQL = """
SELECT
  (SELECT json_build_array(p.diagnosis, p.psychotic_features)
     FROM {patient} p WHERE p.id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array(t.drug, t.drug_class, t.adequate)
                            ORDER BY t.id), '[]')
     FROM {trial} t WHERE t.patient_id = %(patient)s AND t.outcome = ANY(%(failed)s))::text,
  (SELECT coalesce(json_agg(json_build_array(m.name, m.drug_class, m.started_on, m.stopped_on)
                            ORDER BY lower(m.name), m.started_on, m.id), '[]')
     FROM {medication} m WHERE m.patient_id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array({session_columns}, (
             SELECT coalesce(max(CASE e.severity {ranks} END), 0)
               FROM {event} e WHERE e.session_id = s.id))
                            ORDER BY s.started_at, s.id), '[]')
     FROM {session} s WHERE s.course_id = %(course)s
      AND NOT EXISTS (SELECT FROM {void} v WHERE v.session_id = s.id))::text,
  (SELECT coalesce(json_agg(json_build_array(a.administered_at, a.instrument, a.total, a.items)
                            ORDER BY a.administered_at, a.id), '[]')
     FROM {assessment} a WHERE a.course_id = %(course)s
      AND NOT EXISTS (SELECT FROM {assessment} r WHERE r.replaces_id = a.id))::text,
  (SELECT coalesce(json_agg(json_build_array(d.code, d.decision, d.flag_message)
                            ORDER BY d.decided_at, d.id), '[]')
     FROM {decision} d WHERE d.course_id = %(course)s)::text
"""


@cache
def _one_statement_sql() -> str:
    from assessments.models import Assessment
    from courses.models import AdverseEvent, SessionVoid
    from patients.models import Medication, Patient, PriorTrial

    quote = connection.ops.quote_name
    return _ONE_STATEMENT_SQL.format(
        patient=quote(Patient._meta.db_table),
        trial=quote(PriorTrial._meta.db_table),
        medication=quote(Medication._meta.db_table),
        session=quote(TreatmentSession._meta.db_table),
        session_columns=", ".join(f"s.{quote(column)}" for column in _SESSION_COLUMNS),
        event=quote(AdverseEvent._meta.db_table),
        ranks=" ".join(
            f"WHEN '{level.value}' THEN {rank}" for rank, level in enumerate(_BY_RANK) if rank
        ),
        void=quote(SessionVoid._meta.db_table),
        assessment=quote(Assessment._meta.db_table),
        decision=quote(FlagDecision._meta.db_table),
    )


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _rows_in_one_statement(course: Course) -> _Rows:
    from patients.models import FAILED_OUTCOMES

    params = {"patient": course.patient_id, "course": course.pk,
              "failed": [str(outcome) for outcome in FAILED_OUTCOMES]}
    with connection.cursor() as cursor:
        execute(cursor, _one_statement_sql(), params)
        patient, trials, medications, sessions, assessments, decisions = cursor.fetchone()
    # Times come as ISO 8601 in the connection's zone (UTC, as Django sets it).
    moment = datetime.fromisoformat
    for session in (sessions := loads(sessions)):
        session[0] = moment(session[0])
        if session[9] is not None:
            session[9] = moment(session[9])
    for assessment in (assessments := loads(assessments)):
        assessment[0] = moment(assessment[0])
    return _Rows(
        patient=tuple(loads(patient)),
        trials=[tuple(trial) for trial in loads(trials)],
        medications=[(name, drug_class, _day(started), _day(stopped))
                     for name, drug_class, started, stopped in loads(medications)],
        sessions=[tuple(session) for session in sessions],
        assessments=[tuple(assessment) for assessment in assessments],
        decisions=[_Decision(*decision) for decision in loads(decisions)],
    )


def course_facts(course: Course) -> CourseFacts:
    """Everything the engine reads about ``course``, in a fixed number of queries."""
    return _read(course)[0]


def as_stored(evaluation: Evaluation) -> dict:
    """The SPEC §5 JSON plus what the pages show beside it."""
    data = evaluation.to_json()
    data["rules_revision"] = RULES_REVISION
    data["optimizations"] = list(evaluation.optimizations)
    data["withheld"] = list(evaluation.withheld)
    data["trajectory_scores"] = {
        str(code): list(result.scores) for code, result in evaluation.instruments.items()
    }
    return data


def outcome_fields(evaluation: Evaluation) -> dict:
    """The Course columns the outcome dashboard counts by, as the engine returns them (pure:
    the backfill migration calls it too)."""
    outcome = evaluation.outcome
    return {
        "status": str(evaluation.status),
        "main_route": "" if outcome.main_route is None else str(outcome.main_route),
        "highest_dose_mg_per_kg": outcome.highest_dose_mg_per_kg,
        "highest_dose_mg": outcome.highest_dose_mg,
        "first_session_on": outcome.first_session_on,
        "responded_on": outcome.responded_on,
        "days_to_response": outcome.days_to_response,
        "sessions_to_response": outcome.sessions_to_response,
        "optimized": evaluation.optimization_recorded,
    }


def evaluation_fields(course: Course) -> dict:
    """Every Course column an evaluation sets, computed and not saved (a bulk fill can
    bulk_update them all): the facts read once, the engine run once, its result stored."""
    facts, decisions, last_session_at = _read(course)
    evaluation = evaluate(facts, engine_settings())
    stored = as_stored(evaluation)
    return {
        "evaluation": stored,
        "evaluated_at": timezone.now(),
        "rules_revision": RULES_REVISION,
        **outcome_fields(evaluation),
        **open_flag_fields(stored, decisions),
        "last_session_at": last_session_at,
    }


def open_flag_fields(evaluation: dict | None, decisions) -> dict:
    """The Course columns of the flags raised now that no decision answers (``decisions``
    oldest first): their number and the rank of the most severe (None when there is none).
    The one place they are computed (refresh, reevaluate, the migration that added them)."""
    ranks = [
        FlagSeverity(flag["severity"]).rank
        for flag in flags_with_decisions(evaluation or {}, decisions) if not flag["quiet"]
    ]
    return {"open_flags": len(ranks), "open_flag_rank": min(ranks, default=None)}


def is_current(course: Course) -> bool:
    """The stored evaluation exists and was computed under the current rules revision."""
    return course.evaluation is not None and course.rules_revision == RULES_REVISION


def current_evaluation(course: Course) -> dict:
    """The stored evaluation, computed again (and stored) first when it is missing or of older
    rules: what every reader of one course's flags goes through."""
    return course.evaluation if is_current(course) else refresh_evaluation(course)


def stale_courses():
    """Courses with no evaluation or one computed under older rules."""
    from django.db.models import Q

    return Course.objects.filter(
        Q(rules_revision__isnull=True) | Q(rules_revision__lt=RULES_REVISION)
    )


def set_evaluation(course: Course) -> list[str]:
    """Evaluate ``course`` and set (not save) the columns an evaluation sets; their names."""
    fields = evaluation_fields(course)
    for name, value in fields.items():
        setattr(course, name, value)
    return list(fields)


def refresh_evaluation(course: Course) -> dict:
    """Re-evaluate ``course`` and store the result; call it inside the changing action."""
    _store(course, set_evaluation(course))
    return course.evaluation


@cache
def _update_sql(names: tuple[str, ...]) -> tuple[str, tuple]:
    meta = Course._meta
    fields = tuple(meta.get_field(name) for name in names)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return (f"UPDATE {quote(meta.db_table)} SET {assignments} "
            f"WHERE {quote(meta.pk.column)} = %s", fields)


def _store(course: Course, names: list[str]) -> None:
    """What course.save(update_fields=names) writes, in one UPDATE whose SQL is written once:
    each value prepared by its field as save() does (JSON, times, decimals), without the
    per-save machinery, a third of the write's time (no signal is connected to Course)."""
    sql, fields = _update_sql(tuple(names))
    params = [field.get_db_prep_save(getattr(course, field.attname), connection)
              for field in fields]
    with connection.cursor() as cursor:
        execute(cursor, sql, [*params, course.pk])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")


def refresh_patient(patient) -> None:
    """A change to the patient (diagnosis, medications, trials) re-evaluates every course."""
    for course in Course.objects.filter(patient=patient).select_related("patient"):
        refresh_evaluation(course)


def raised_flag(evaluation: dict | None, code: str) -> dict | None:
    """The flag ``code`` as the stored evaluation raises it now, or None."""
    return next((f for f in (evaluation or {}).get("flags", []) if f["code"] == code), None)


def flags_with_decisions(evaluation: dict, decisions) -> list[dict]:
    """Each raised flag with its latest decision; a decided flag is shown quieter while its
    facts (its message) are those the clinician decided on."""
    latest = {decision.code: decision for decision in decisions}  # oldest first: last wins
    flags = []
    for flag in evaluation.get("flags", []):
        decision = latest.get(flag["code"])
        quiet = decision is not None and decision.flag_message == flag["message"]
        flags.append({**flag, "decision": decision, "quiet": quiet})
    # Open flags first, each group in the engine's order (critical first): the decided ones
    # fold away below them.
    return sorted(flags, key=lambda flag: flag["quiet"])


def evaluation_context(course: Course, decisions: list) -> dict:
    """What the course page and the referral report show of the rules engine's word."""
    # Never an evaluation of older rules shown as current: a stale one is computed again here
    # (the fragment keys name the revision, so no page cached under the old one is served).
    evaluation = current_evaluation(course)
    flags = flags_with_decisions(evaluation, decisions)
    return {
        "evaluation": evaluation,
        "flags": flags,
        "decided_flags": sum(1 for flag in flags if flag["quiet"]),
        "decisions": decisions,
    }


def draw_chart(course: Course, evaluation: dict, current_assessments: list, sessions=()):
    """The chart of the course's scores (``current_assessments``: not corrected), its
    ``sessions`` (given, not voided) marked with their doses, and each instrument's baseline
    from its ``evaluation``: see courses.charts."""
    from courses.charts import score_chart

    rules = engine_settings()
    return score_chart(
        current_assessments, {code: rules.remission(code) for code in Instrument},
        sessions=sessions,
        baselines={code: result.get("baseline")
                   for code, result in evaluation.get("instruments", {}).items()},
        chart_id=f"chart-{course.pk}",
    )


def most_severe_flag(evaluation: dict | None) -> dict | None:
    flags = (evaluation or {}).get("flags") or []
    return flags[0] if flags else None  # the engine sorts critical → warning → info


def critical_flags(evaluation: dict | None) -> list[dict]:
    return [
        f for f in (evaluation or {}).get("flags", []) if f["severity"] == FlagSeverity.CRITICAL
    ]
