"""Small builders for rules-engine tests: a course in a few words.

Days are counted from Monday 2 February 2026 in the clinic's zone (America/New_York); sessions
are at 09:00 and assessments at 10:00 unless a test says otherwise. ``run`` places the baseline
the day before the first session and the current score the day after the last one.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from clinical.catalogue import classify
from clinical.engine import Evaluation, evaluate
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
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
)

TZ = ZoneInfo("America/New_York")
DAY0 = date(2026, 2, 2)

# (baseline, current) MADRS pairs for each status.
NON = (36, 29)  # 19.4 %
PARTIAL = (32, 22)  # 31.3 %
RESPONSE = (36, 14)  # 61.1 %
REMISSION = (36, 8)


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def at(n: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.combine(day(n), time(hour, minute), tzinfo=TZ)


def iv(n: int = 0, dose: str = "0.5", **fields) -> SessionFact:
    fields.setdefault("minutes", 40)
    return SessionFact(at=at(n), route=Route.IV, dose_mg_per_kg=Decimal(dose), **fields)


def im(n: int = 0, dose: str = "0.5", **fields) -> SessionFact:
    return SessionFact(at=at(n), route=Route.IM, dose_mg_per_kg=Decimal(dose), **fields)


def nasal(n: int = 0, mg: int = 56, **fields) -> SessionFact:
    return SessionFact(at=at(n), route=Route.INTRANASAL, dose_mg=Decimal(mg), **fields)


def oral(n: int = 0, mg: int = 200, route: Route = Route.ORAL, **fields) -> SessionFact:
    return SessionFact(at=at(n), route=route, dose_mg=Decimal(mg), **fields)


def sublingual(n: int = 0, mg: int = 200, **fields) -> SessionFact:
    return oral(n, mg, Route.SUBLINGUAL, **fields)


def stopped(session: SessionFact) -> SessionFact:
    return SessionFact(**{**vars(session), "status": SessionStatus.STOPPED})


def series(count: int, make=iv, start: int = 0, every: int = 2, **fields) -> list[SessionFact]:
    """``count`` sessions, one every ``every`` days from day ``start``."""
    return [make(start + i * every, **fields) for i in range(count)]


def madrs(n: int, total: int | None = None, items=None, hour: int = 10) -> AssessmentFact:
    return _assessment(Instrument.MADRS, n, total, items, hour)


def phq9(n: int, total: int | None = None, items=None, hour: int = 10) -> AssessmentFact:
    return _assessment(Instrument.PHQ9, n, total, items, hour)


def _assessment(instrument, n, total, items, hour) -> AssessmentFact:
    if items is not None:
        items = tuple(items)
        total = sum(items)
    return AssessmentFact(at=at(n, hour), instrument=instrument, total=total, items=items)


def med(name: str, drug_class: MedClass | None = None, start: int = -300, stop: int | None = None):
    return MedicationFact(
        name=name,
        drug_class=drug_class or classify(name),
        start=day(start),
        stop=None if stop is None else day(stop),
    )


TWO_TRIALS = (
    FailedTrial("sertraline", MedClass.SSRI, True),
    FailedTrial("venlafaxine", MedClass.SNRI, True),
)


def patient(**fields) -> PatientFacts:
    fields.setdefault("diagnosis", Diagnosis.MDD)
    fields.setdefault("weight_kg", Decimal(80))
    fields.setdefault("failed_trials", TWO_TRIALS)
    return PatientFacts(**fields)


def course(
    sessions=(),
    assessments=(),
    medications=(),
    phase: Phase = Phase.INDUCTION,
    accepted=(),
    patient_fields=None,
    **fields,
) -> CourseFacts:
    return CourseFacts(
        patient=patient(**(patient_fields or {})),
        phase=phase,
        sessions=tuple(sessions),
        assessments=tuple(assessments),
        medications=tuple(medications),
        accepted_flags=frozenset(accepted),
        **fields,
    )


def scores(sessions, baseline_current, make=madrs, extra=()) -> list[AssessmentFact]:
    """A baseline the day before the first session and a current score the day after the last."""
    baseline, current = baseline_current
    first = min((s.at for s in sessions), default=at(0)).date()
    last = max((s.at for s in sessions), default=at(0)).date()
    return [
        make((first - DAY0).days - 1, baseline),
        *extra,
        make((last - DAY0).days + 1, current),
    ]


def run(sessions=(), outcome=None, assessments=(), settings=None, **fields) -> Evaluation:
    """Evaluate a course; ``outcome`` is a (baseline, current) MADRS pair such as ``NON``."""
    sessions = list(sessions)
    assessments = list(assessments)
    if outcome is not None:
        assessments = scores(sessions, outcome) + assessments
    facts = course(sessions, assessments, **fields)
    return evaluate(facts) if settings is None else evaluate(facts, settings)


def dissociated(level: str) -> dict:
    return {"dissociation": Intensity(level)}


def adverse(level: str) -> dict:
    return {"adverse_event_severity": Intensity(level)}
