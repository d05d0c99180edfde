"""Between the database and the pure rules engine: build a course's facts, evaluate them, and
keep the result on the course so every page shows the current word without recomputing it."""

from collections import Counter
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from clinical.engine import (
    RESPONDING,
    RULES_REVISION,
    CourseState,
    EngineSettings,
    Evaluation,
    course_state,
    dose_of,
    evaluate_state,
    instrument_status,
)
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
from courses.models import Course, Decision


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


def course_facts(course: Course) -> CourseFacts:
    """Everything the engine reads about ``course``, in a fixed number of queries."""
    from assessments.models import Assessment  # assessments.models imports this app's models

    patient = course.patient
    trials = patient.prior_trials.all()
    # A voided session was entered in error: it counts for nothing (SPEC §7).
    sessions = course.sessions.current().prefetch_related("adverse_events")
    assessments = Assessment.objects.for_course(course).current()
    return CourseFacts(
        patient=PatientFacts(
            diagnosis=Diagnosis(patient.diagnosis),
            psychotic_features=patient.psychotic_features,
            # weight_kg is left out: no rule reads it, and it would cost a query per refresh.
            failed_trials=tuple(
                FailedTrial(t.drug, MedClass(t.drug_class), t.adequate)
                for t in trials if t.failed
            ),
        ),
        phase=Phase(course.phase),
        maintenance_started=course.maintenance_started_on,
        medications=tuple(
            MedicationFact(m.name, MedClass(m.drug_class), m.started_on, m.stopped_on)
            for m in patient.medications.all()
        ),
        sessions=tuple(
            SessionFact(
                at=s.started_at,
                route=Route(s.route),
                dose_mg_per_kg=s.dose_mg_per_kg,
                dose_mg=s.dose_mg,
                minutes=s.infusion_minutes,
                dissociation=Intensity(s.dissociation),
                adverse_event_severity=s.worst_adverse_event,
                benzodiazepine_24h=s.benzodiazepine_24h,
                bp_pre=_pair(s.bp_pre_systolic, s.bp_pre_diastolic),
                discharged_at=s.discharged_at,
                enhanced_monitoring=s.enhanced_monitoring,
                status=SessionStatus(s.status),
            )
            for s in sessions
        ),
        assessments=tuple(
            AssessmentFact(
                a.administered_at, Instrument(a.instrument), a.total,
                tuple(a.items) if a.items else None,
            )
            for a in assessments
        ),
        accepted_flags=frozenset(
            course.decisions.filter(decision=Decision.ACCEPTED).values_list("code", flat=True)
        ),
    )


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


def outcome_fields(state: CourseState) -> dict:
    """The Course columns the outcome dashboard counts by, from the engine's reading of the
    facts (pure: the backfill migration calls it too)."""
    completed = state.completed
    fields = {
        "status": str(state.status), "main_route": "", "highest_dose_mg_per_kg": None,
        "highest_dose_mg": None, "first_session_on": None, "responded_on": None,
        "days_to_response": None, "sessions_to_response": None,
        "optimized": bool(state.optimizations),
    }
    if not completed:
        return fields
    # Most completed sessions, a tie to the route used last: a course just switched keeps the
    # route most of its treatment (and so its status) came from.
    counts = Counter(s.route for s in completed)
    last_use = {s.route: i for i, s in enumerate(completed)}
    route = max(counts, key=lambda r: (counts[r], last_use[r]))
    on_route = [s for s in completed if s.route == route]
    fields["main_route"] = str(route)
    # In the route's own unit (engine.dose_of): mg/kg for IV and IM, mg for the others.
    unit = "highest_dose_mg_per_kg" if route.weight_based else "highest_dose_mg"
    fields[unit] = max((d for s in on_route if (d := dose_of(s)) is not None), default=None)
    first = completed[0].at
    fields["first_session_on"] = first_day = state.day(first)
    # Response: the first later score on the primary instrument that the SPEC §3 rules read as
    # response or remission against the baseline; at a tied instant the higher total (reading 4).
    primary = state.primary
    remission = state.settings.remission(primary.instrument)
    later: dict[datetime, int] = {}
    for a in state.assessments:
        if a.instrument == primary.instrument and a.at > first:
            later[a.at] = max(a.total, later.get(a.at, a.total))
    for at in sorted(later):
        if instrument_status(primary.baseline, later[at], remission) in RESPONDING:
            fields["responded_on"] = day = state.day(at)
            fields["days_to_response"] = (day - first_day).days
            fields["sessions_to_response"] = sum(1 for s in completed if s.at < at)
            break
    return fields


def evaluation_fields(course: Course) -> dict:
    """Every Course column an evaluation sets, computed and not saved (a bulk fill can
    bulk_update them all)."""
    state = course_state(course_facts(course), engine_settings())
    return {
        "evaluation": as_stored(evaluate_state(state)),
        "evaluated_at": timezone.now(),
        "rules_revision": RULES_REVISION,
        **outcome_fields(state),
    }


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
    course.save(update_fields=set_evaluation(course))
    return course.evaluation


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


def evaluation_context(course: Course, decisions: list, current_assessments: list,
                       sessions=()) -> dict:
    """What the course page and the referral report show of the rules engine's word; the
    chart marks ``sessions`` (the course's, already loaded) with their doses."""
    from courses.charts import score_chart

    # Never an evaluation of older rules shown as current: a stale one is computed again here
    # (the fragment keys name the revision, so no page cached under the old one is served).
    evaluation = current_evaluation(course)
    rules = engine_settings()
    flags = flags_with_decisions(evaluation, decisions)
    return {
        "evaluation": evaluation,
        "flags": flags,
        "decided_flags": sum(1 for flag in flags if flag["quiet"]),
        "decisions": decisions,
        "chart": score_chart(
            current_assessments, {code: rules.remission(code) for code in Instrument},
            sessions=sessions,
            baselines={code: result.get("baseline")
                       for code, result in evaluation.get("instruments", {}).items()},
            chart_id=f"chart-{course.pk}",
        ),
    }


def most_severe_flag(evaluation: dict | None) -> dict | None:
    flags = (evaluation or {}).get("flags") or []
    return flags[0] if flags else None  # the engine sorts critical → warning → info


def critical_flags(evaluation: dict | None) -> list[dict]:
    return [
        f for f in (evaluation or {}).get("flags", []) if f["severity"] == FlagSeverity.CRITICAL
    ]
