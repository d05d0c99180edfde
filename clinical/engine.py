"""The rules engine of SPEC §3 and §4 (rules revision 2): course facts in, evaluation out.

No Django, no database, no clock: :func:`evaluate` reads a :class:`~clinical.facts.CourseFacts`
and returns an :class:`Evaluation` (statuses, numbers and flags). The web app builds the facts
from the database, :mod:`clinical.jsonio` from JSON (SPEC §5). Every flag is advice for a
clinician: it says what was seen, what the guidance suggests and where the guidance comes from.

Readings of the SPEC (where it is silent or ambiguous we chose the clinically safer reading;
revision 2 wrote readings 1, 3, 4, 5, 7, 8 and 20 into the contract as they are):

1. As of. The reference time is ``as_of`` when given, else the latest session (any status) or
   assessment time. Sessions and assessments after the reference time are left out: the course is
   evaluated as it stood then. A date-only ``as_of`` in JSON means the end of that day. With no
   reference time at all (nothing dated), a medication without a stop date counts as active.
2. Stopped sessions count for nothing: not in any count, not for the current route and dose, not
   for "the first session" (the baseline/current split), and not as an optimization. They are
   kept in the facts and count for the default reference time. Revision 2: a stopped session
   still gave drug, so the rules that name stopped sessions read them: DOSE_ABOVE_STANDARD,
   ESKETAMINE_MONITORING, BP_ELEVATED, and the poorly tolerated doses (reading 25).
3. Baseline and current are split at the start of the first completed session; with no completed
   session there is no current score, so every status is insufficient_data.
4. Two assessments of one instrument at the same instant: for "current" and "latest" the higher
   total counts; for a baseline and for the RELAPSE_RISK reference the lower total counts. Both
   choices understate improvement and overstate relapse. For SUICIDAL_IDEATION the highest item
   among the latest assessments counts.
5. Trajectory: "each of the last three is lower than the one before it" means the last three
   scores fall strictly, two drops in a row (three scores suffice, as "insufficient with fewer
   than three" says). An equal score is a plateau. Without a baseline the trajectory is
   insufficient.
6. "Adequate trial on the current route" is the count of the current route's group: IV and IM
   share one count and one minimum, sublingual and oral share another, as the SPEC defines the
   minimums per group.
7. An accepted flag counts as an optimization only when it is a treatment-changing strategy of the
   optimization table (OPTIMIZATION_STRATEGIES below). Accepting NO_SIGNAL_AFTER_4,
   DISCONTINUATION_REVIEW, MAINTENANCE_PLAN, TRD_NOT_VERIFIED or a medication or safety flag is a
   review, plan or check, not an optimization, so it does not hasten a discontinuation review.
8. Lithium counts as an optimization when a lithium-class medication started on a calendar day
   after the first completed session's day and on or before the as-of day.
9. A dose change is compared on the route's own unit (mg/kg for IV and IM, mg otherwise); IV to IM
   is a route change. A missing dose differs from any dose.
10. Each code is raised at most once; when several sessions or medications qualify, the message
    lists them all.
11. Phases: the optimization flags except DOSE_REDUCTION and TRD_NOT_VERIFIED are raised only in
    induction and extended_induction. Safety, medication and monitoring flags are raised in every
    phase, "ended" included.
12. DOSE_ABOVE_STANDARD looks at every completed or stopped session of the course, not only the
    latest.
13. BP_ELEVATED: "above" is strict (140/90 itself is not raised). One flag: critical when systolic
    > 180 or diastolic > 110, else warning when systolic > 140 or diastolic > 90. It reads the
    latest session, completed or stopped, that has a pre-dose blood pressure (r2).
14. ESKETAMINE_MONITORING needs a recorded discharge time; exactly 2 h is enough observation.
15. INCREASE_FREQUENCY: the average gap of the last three completed sessions is (last − third
    last) / 2 in elapsed time; exactly 4 days is not "more than 4". Revision 2: only on
    non_response or partial_response (the same for DISCONTINUATION_REVIEW), never on
    insufficient_data.
16. DOSE_REDUCTION is raised on every route. IV/IM above 0.4 mg/kg: suggest 0.4 mg/kg; IV/IM at
    or below 0.4, intranasal below 84 mg, sublingual and oral: suggest a lower dose without a
    number. suggested_dose_mg_per_kg is set only where the SPEC names one dose (DOSE_ESCALATION's
    ladder step, DOSE_REDUCTION's 0.4); LOWER_DOSE_TRIAL gives its 0.3–0.4 range in words.
17. DOSE_ESCALATION below the ladder (e.g. 0.3 mg/kg) suggests its first step, 0.5 mg/kg.
18. ROUTE_SWITCH from IM suggests intranasal esketamine or IV; from sublingual or oral, IV ketamine
    or intranasal esketamine.
19. RELAPSE_RISK without a reference PHQ-9 (none on or before the maintenance day) is raised only
    on a PHQ-9 above 10.
20. TRD_NOT_VERIFIED counts distinct drugs (ignoring case) among the failed trials marked
    adequate, so a duplicated entry does not count twice.
21. BENZODIAZEPINE's severity is kept as written: with an adequate trial, insufficient_data is
    "otherwise", so info.
22. Calendar days (as-of day, medication activity, maintenance day, lithium start) are days in the
    clinic's time zone (EngineSettings.timezone). A naive time is read in that zone.
23. The percent reduction is not computed from a baseline of 0 (the status is insufficient_data).
24. Ordering: critical, warning, info; within a severity the SPEC table order (FlagCode order).
25. Poorly tolerated dose (r2): the route and its dose (mg/kg for IV and IM, mg otherwise) of a
    completed or stopped session up to the reference time with severe dissociation or a moderate
    or severe adverse event. A session without a dose names no dose. DOSE_ESCALATION is raised
    only when its step is below every poorly tolerated IV or IM dose (IV and IM share the mg/kg
    ladder), so a poorly tolerated dose below the current one withholds it too, as written.
    When the rule would have been raised but for this, the evaluation says so
    (``withheld``), so the clinician sees why no escalation is suggested.
26. SCORES_OVERDUE (r2), any phase but ended: a completed session and neither instrument has a
    baseline; or 3 or more completed sessions strictly after the latest assessment of either
    instrument (the latest of all assessments up to the reference time).
"""

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from operator import attrgetter
from zoneinfo import ZoneInfo

from clinical.dosing import ENHANCED_MONITORING_ABOVE, MG_PER_KG_MAX, next_ladder_step
from clinical.facts import AssessmentFact, CourseFacts, MedicationFact, SessionFact
from clinical.instruments import INSTRUMENTS
from clinical.vocab import (
    MOOD_STABILIZERS,
    Diagnosis,
    FlagSeverity,
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
    Status,
    Trajectory,
    Vocab,
)


@dataclass(frozen=True)
class EngineSettings:
    """The clinic-wide settings the rules read ("product default" values of the SPEC)."""

    madrs_remission: int = 10  # 000; esketamine trials use 12
    phq9_remission: int = 4  # 001, "< 5"
    bp_warning: tuple[int, int] = (140, 90)
    bp_critical: tuple[int, int] = (180, 110)
    timezone: ZoneInfo = ZoneInfo("America/New_York")

    def remission(self, instrument: Instrument) -> int:
        if instrument == Instrument.MADRS:
            return self.madrs_remission
        return self.phq9_remission


DEFAULTS = EngineSettings()

# The revision of the rules (SPEC "Revision 2"): stored with every evaluation, so a stored
# evaluation computed under older rules is known to be stale and is computed again.
RULES_REVISION = 2


class FlagCode(Vocab):
    """Stable flag codes, in the order of the SPEC §4 tables."""

    # Safety
    SUICIDAL_IDEATION = "SUICIDAL_IDEATION"
    BIPOLAR_NO_MOOD_STABILIZER = "BIPOLAR_NO_MOOD_STABILIZER"
    PSYCHOTIC_FEATURES = "PSYCHOTIC_FEATURES"
    DOSE_ABOVE_STANDARD = "DOSE_ABOVE_STANDARD"
    # Concurrent medications
    BENZODIAZEPINE = "BENZODIAZEPINE"
    BENZODIAZEPINE_TAKEN = "BENZODIAZEPINE_TAKEN"
    NALTREXONE_HOLD = "NALTREXONE_HOLD"
    MEMANTINE = "MEMANTINE"
    MAOI_WASHOUT = "MAOI_WASHOUT"
    LAMOTRIGINE = "LAMOTRIGINE"
    OPIOID = "OPIOID"
    # Optimization
    DOSE_ESCALATION = "DOSE_ESCALATION"
    ESKETAMINE_ESCALATION = "ESKETAMINE_ESCALATION"
    DOSE_REDUCTION = "DOSE_REDUCTION"
    LOWER_DOSE_TRIAL = "LOWER_DOSE_TRIAL"
    INFUSION_RATE = "INFUSION_RATE"
    INCREASE_FREQUENCY = "INCREASE_FREQUENCY"
    NO_SIGNAL_AFTER_4 = "NO_SIGNAL_AFTER_4"
    EXTEND_INDUCTION = "EXTEND_INDUCTION"
    ROUTE_SWITCH = "ROUTE_SWITCH"
    LITHIUM_AUGMENTATION = "LITHIUM_AUGMENTATION"
    DISCONTINUATION_REVIEW = "DISCONTINUATION_REVIEW"
    MAINTENANCE_PLAN = "MAINTENANCE_PLAN"
    TRD_NOT_VERIFIED = "TRD_NOT_VERIFIED"
    # Maintenance and monitoring
    RELAPSE_RISK = "RELAPSE_RISK"
    ESKETAMINE_MONITORING = "ESKETAMINE_MONITORING"
    BP_ELEVATED = "BP_ELEVATED"
    SCORES_OVERDUE = "SCORES_OVERDUE"  # r2

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


# The flags of the optimization table (SPEC §4).
OPTIMIZATION_FLAGS = frozenset(
    {
        FlagCode.DOSE_ESCALATION,
        FlagCode.ESKETAMINE_ESCALATION,
        FlagCode.DOSE_REDUCTION,
        FlagCode.LOWER_DOSE_TRIAL,
        FlagCode.INFUSION_RATE,
        FlagCode.INCREASE_FREQUENCY,
        FlagCode.NO_SIGNAL_AFTER_4,
        FlagCode.EXTEND_INDUCTION,
        FlagCode.ROUTE_SWITCH,
        FlagCode.LITHIUM_AUGMENTATION,
        FlagCode.DISCONTINUATION_REVIEW,
        FlagCode.MAINTENANCE_PLAN,
        FlagCode.TRD_NOT_VERIFIED,
    }
)
# Raised in any phase; the other optimization flags only in induction and extended induction.
ANY_PHASE_OPTIMIZATION_FLAGS = frozenset({FlagCode.DOSE_REDUCTION, FlagCode.TRD_NOT_VERIFIED})
INDUCTION_PHASES = frozenset({Phase.INDUCTION, Phase.EXTENDED_INDUCTION})
# Accepting one of these records an optimization (SPEC §3, reading 7). Accepting a review, plan
# or check (NO_SIGNAL_AFTER_4, DISCONTINUATION_REVIEW, MAINTENANCE_PLAN, TRD_NOT_VERIFIED,
# SCORES_OVERDUE) or a medication or safety flag is not an optimization.
OPTIMIZATION_STRATEGIES = OPTIMIZATION_FLAGS - {
    FlagCode.NO_SIGNAL_AFTER_4,
    FlagCode.DISCONTINUATION_REVIEW,
    FlagCode.MAINTENANCE_PLAN,
    FlagCode.TRD_NOT_VERIFIED,
}
# The flags that judge the outcome: each needs a status other than insufficient_data (r2).
OUTCOME_FLAGS = OPTIMIZATION_FLAGS - {FlagCode.TRD_NOT_VERIFIED}
# Raised in every phase but "ended".
NOT_ENDED_FLAGS = frozenset({FlagCode.SCORES_OVERDUE})

# Adequate trial (000 "what constitutes an adequate trial").
IV_IM_ADEQUATE_SESSIONS = 4
IV_IM_ADEQUATE_DOSE = Decimal("0.5")  # mg/kg
INTRANASAL_ADEQUATE_SESSIONS = 8
INTRANASAL_ADEQUATE_DOSE = Decimal(56)  # mg
ORAL_ADEQUATE_SESSIONS = 6  # sublingual and oral together

NOT_RESPONDING = frozenset({Status.NON_RESPONSE, Status.PARTIAL_RESPONSE})
RESPONDING = frozenset({Status.RESPONSE, Status.REMISSION})
SUICIDAL_ITEM = {Instrument.PHQ9: (9, 1), Instrument.MADRS: (10, 4)}  # item number, threshold


# ---------------------------------------------------------------------------------------------
# Results
#
# Frozen dataclasses, each with its own __init__ (dataclass keeps an __init__ the class
# defines): the generated one of a frozen dataclass sets every field through
# object.__setattr__, a call per field, and building the results was a tenth of an
# evaluation. These fill the instance at once; tests/clinical/test_engine_results.py checks
# that each names every field, in order, with the same defaults.

_set_attribute = object.__setattr__


@dataclass(frozen=True)
class Flag:
    code: FlagCode
    severity: FlagSeverity
    message: str
    suggestion: str
    source: str
    suggested_dose_mg_per_kg: Decimal | None = None

    def __init__(self, code, severity, message, suggestion, source,
                 suggested_dose_mg_per_kg=None):
        _set_attribute(self, "__dict__", {
            "code": code, "severity": severity, "message": message, "suggestion": suggestion,
            "source": source, "suggested_dose_mg_per_kg": suggested_dose_mg_per_kg,
        })

    def to_json(self) -> dict:
        dose = self.suggested_dose_mg_per_kg
        return {
            "code": str(self.code),
            "severity": str(self.severity),
            "message": self.message,
            "suggestion": self.suggestion,
            "source": self.source,
            "suggested_dose_mg_per_kg": None if dose is None else float(dose),
        }


@dataclass(frozen=True)
class InstrumentResult:
    instrument: Instrument
    status: Status
    baseline: int | None
    current: int | None
    percent_reduction: Fraction | None
    scores: tuple[int, ...]  # the baseline and every later score, in time order
    trajectory: Trajectory

    def __init__(self, instrument, status, baseline, current, percent_reduction, scores,
                 trajectory):
        _set_attribute(self, "__dict__", {
            "instrument": instrument, "status": status, "baseline": baseline,
            "current": current, "percent_reduction": percent_reduction, "scores": scores,
            "trajectory": trajectory,
        })

    def to_json(self) -> dict:
        return {
            "status": str(self.status),
            "baseline": self.baseline,
            "current": self.current,
            "percent_reduction": _json_percent(self.percent_reduction),
        }


@dataclass(frozen=True)
class Outcome:
    """What the outcome dashboard counts a course by (SPEC §3 read over time): the route of
    most completed sessions (a tie to the one used last) and its highest dose in the route's
    own unit, the first completed session's day, and the response: the first score of the
    primary instrument after the first completed session that reads as response or
    remission, its day, the days since the first session's day and the completed sessions
    before it. Empty before the first completed session."""

    main_route: Route | None = None
    highest_dose_mg_per_kg: Decimal | None = None  # IV and IM
    highest_dose_mg: Decimal | None = None  # the other routes
    first_session_on: date | None = None
    responded_on: date | None = None
    days_to_response: int | None = None
    sessions_to_response: int | None = None

    def __init__(self, main_route=None, highest_dose_mg_per_kg=None, highest_dose_mg=None,
                 first_session_on=None, responded_on=None, days_to_response=None,
                 sessions_to_response=None):
        _set_attribute(self, "__dict__", {
            "main_route": main_route, "highest_dose_mg_per_kg": highest_dose_mg_per_kg,
            "highest_dose_mg": highest_dose_mg, "first_session_on": first_session_on,
            "responded_on": responded_on, "days_to_response": days_to_response,
            "sessions_to_response": sessions_to_response,
        })


NO_OUTCOME = Outcome()


@dataclass(frozen=True)
class Evaluation:
    status: Status
    provisional: bool
    adequate_trial: bool
    primary_instrument: Instrument
    baseline: int | None
    current: int | None
    percent_reduction: Fraction | None
    sessions_completed: int
    trajectory: Trajectory
    instruments: dict[Instrument, InstrumentResult]
    flags: tuple[Flag, ...]
    optimization_recorded: bool
    optimizations: tuple[str, ...] = ()  # what counted as an optimization, in words
    as_of: datetime | None = None
    # r2: the escalations a poorly tolerated dose withheld, in words (reading 25)
    withheld: tuple[str, ...] = ()
    outcome: Outcome = NO_OUTCOME

    def __init__(self, status, provisional, adequate_trial, primary_instrument, baseline,
                 current, percent_reduction, sessions_completed, trajectory, instruments, flags,
                 optimization_recorded, optimizations=(), as_of=None, withheld=(),
                 outcome=NO_OUTCOME):
        _set_attribute(self, "__dict__", {
            "status": status, "provisional": provisional, "adequate_trial": adequate_trial,
            "primary_instrument": primary_instrument, "baseline": baseline, "current": current,
            "percent_reduction": percent_reduction, "sessions_completed": sessions_completed,
            "trajectory": trajectory, "instruments": instruments, "flags": flags,
            "optimization_recorded": optimization_recorded, "optimizations": optimizations,
            "as_of": as_of, "withheld": withheld, "outcome": outcome,
        })

    def flag(self, code: FlagCode | str) -> Flag | None:
        return next((flag for flag in self.flags if flag.code == code), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(str(flag.code) for flag in self.flags)

    def to_json(self) -> dict:
        """Exactly the output shape of SPEC §5."""
        return {
            "status": str(self.status),
            "provisional": self.provisional,
            "adequate_trial": self.adequate_trial,
            "primary_instrument": str(self.primary_instrument),
            "baseline": self.baseline,
            "current": self.current,
            "percent_reduction": _json_percent(self.percent_reduction),
            "sessions_completed": self.sessions_completed,
            "trajectory": str(self.trajectory),
            "instruments": {str(code): self.instruments[code].to_json() for code in INSTRUMENTS},
            "flags": [flag.to_json() for flag in self.flags],
        }


def round_half_away(value: Fraction, places: int = 1) -> Decimal:
    """Round exactly, half away from zero: 31.25 → 31.3, −31.25 → −31.3."""
    # floor(|n|/d × 10^places + 1/2) in whole numbers: exact, and no Fraction arithmetic.
    numerator, denominator = abs(value.numerator), value.denominator
    whole = (2 * numerator * 10**places + denominator) // (2 * denominator)
    rounded = Decimal(whole).scaleb(-places)
    return -rounded if value < 0 else rounded


def _json_percent(value: Fraction | None) -> float | None:
    return None if value is None else float(round_half_away(value))


# ---------------------------------------------------------------------------------------------
# Scores (SPEC §3)


@lru_cache(maxsize=4096)  # every (baseline, current) pair of MADRS (0-60) and PHQ-9 (0-27)
def percent_reduction(baseline: int | None, current: int | None) -> Fraction | None:
    """(baseline − current) / baseline × 100, exact; None without both scores or from 0."""
    if baseline is None or current is None or baseline == 0:
        return None
    return Fraction(100 * (baseline - current), baseline)  # one Fraction, not two


def instrument_status(baseline: int | None, current: int | None, remission: int) -> Status:
    """The first rule of SPEC §3 that holds."""
    if baseline is None or current is None or baseline <= remission:
        return Status.INSUFFICIENT_DATA
    if current <= remission:
        return Status.REMISSION
    # percent_reduction ≥ 50 (or 25), in whole numbers: (b − c) / b × 100 ≥ 50 ⇔ 2(b − c) ≥ b,
    # b > 0 here. Exact like the Fraction, and an evaluation computes this several times.
    if 2 * (baseline - current) >= baseline:
        return Status.RESPONSE
    if 4 * (baseline - current) >= baseline:
        return Status.PARTIAL_RESPONSE
    return Status.NON_RESPONSE


def responding_limit(baseline: int, remission: int) -> int:
    """The highest current score that :func:`instrument_status` reads as response or
    remission against ``baseline`` (−1 when none does: a baseline already in remission is
    insufficient data). A lower score never reads worse, so a score responds exactly when it
    is at most this (tests/clinical/test_engine_outcome.py holds the two together)."""
    if baseline <= remission:
        return -1
    # remission: current ≤ remission; response: 2(b − c) ≥ b, i.e. c ≤ b / 2.
    return max(remission, baseline // 2)


def trajectory(scores: Iterable[int]) -> Trajectory:
    """From the baseline and the later scores in time order (reading 5)."""
    if not isinstance(scores, tuple | list):
        scores = list(scores)
    if len(scores) < 3:
        return Trajectory.INSUFFICIENT
    first, second, third = scores[-3:]
    if first > second > third:
        return Trajectory.IMPROVING
    if first < second < third:
        return Trajectory.WORSENING
    return Trajectory.PLATEAU


# ---------------------------------------------------------------------------------------------
# What every rule reads


def _aware(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _session_key(session: SessionFact) -> tuple:
    # The time first; the full record breaks ties so that input order never matters.
    return (session.at, repr(session))


def _assessment_key(assessment: AssessmentFact) -> tuple:
    return (assessment.at, assessment.total, repr(assessment))


def _sort(items: list, quick: Callable, full: Callable) -> None:
    """Sort ``items`` in place by ``full``, whose last part is a repr that only breaks ties:
    sorting by ``quick`` (the same key without the repr) gives the same order unless two
    items tie on it, and a repr per item per sort was a third of the engine's time."""
    items.sort(key=quick)
    keys = [quick(item) for item in items]
    start = 0
    for end in range(1, len(items) + 1):
        if end == len(items) or keys[end] != keys[start]:
            if end - start > 1:  # a tie on the quick key: the full key orders the run
                items[start:end] = sorted(items[start:end], key=full)
            start = end


_AT = attrgetter("at")
_AT_TOTAL = attrgetter("at", "total")


def _in_time_order(items, aware: Callable, tz: ZoneInfo, quick: Callable,
                   full: Callable) -> list:
    """``items`` with aware times (``aware`` reads a naive one in the clinic's zone, reading
    22), sorted by ``full`` (see :func:`_sort`). Facts from the database are aware and come
    in time order, each at its own instant: one look at each, and neither a copy nor a sort.

    (Plain loops throughout: in Python 3.11 a loop reading attributes is specialized and beats
    map() with operator.attrgetter, which looks each attribute up by name.)"""
    previous = None
    for item in items:
        moment = item.at
        if moment.tzinfo is None or (previous is not None and not previous < moment):
            break
        previous = moment
    else:
        return items
    items = [aware(item, tz) for item in items]
    _sort(items, quick, full)
    return items


def _latest(assessments: list[AssessmentFact], *, lowest_on_tie: bool = False):
    """The latest assessment; at a tied instant the higher total (or the lower: reading 4)."""
    if not assessments:
        return None
    last = max(assessment.at for assessment in assessments)
    tied = [assessment for assessment in assessments if assessment.at == last]
    if len(tied) == 1:
        return tied[0]
    return (min if lowest_on_tie else max)(tied, key=_by_total)


def _aware_session(session: SessionFact, tz: ZoneInfo) -> SessionFact:
    discharged = session.discharged_at
    if session.at.tzinfo is not None and (discharged is None or discharged.tzinfo is not None):
        return session  # facts from the database are aware already: no copy
    return replace(session, at=_aware(session.at, tz),
                   discharged_at=_aware(discharged, tz) if discharged else None)


def _aware_assessment(assessment: AssessmentFact, tz: ZoneInfo) -> AssessmentFact:
    if assessment.at.tzinfo is not None:
        return assessment
    return replace(assessment, at=_aware(assessment.at, tz))


def _by_total(assessment: AssessmentFact) -> tuple:
    return (assessment.total, repr(assessment))


_WEIGHT_BASED = frozenset(route for route in Route if route.weight_based)
# The enum members the rules read on every evaluation, read off their classes once: in Python
# 3.11 ``Route.IV`` costs ~0.2 µs (EnumType defines __getattr__, so no fast path), more than
# most rules' own test; a member is then compared by identity.
_IV, _IM, _INTRANASAL = Route.IV, Route.IM, Route.INTRANASAL
_ROUTES = tuple(Route)
_NONE, _MILD, _MODERATE, _SEVERE = tuple(Intensity)
_COMPLETED, _STOPPED = SessionStatus.COMPLETED, SessionStatus.STOPPED
_MADRS, _PHQ9 = Instrument.MADRS, Instrument.PHQ9
_CRITICAL, _WARNING = FlagSeverity.CRITICAL, FlagSeverity.WARNING
_NON_RESPONSE, _PARTIAL_RESPONSE = Status.NON_RESPONSE, Status.PARTIAL_RESPONSE
_IMPROVING = Trajectory.IMPROVING
_MAINTENANCE = Phase.MAINTENANCE
_BIPOLAR = (Diagnosis.BIPOLAR_I, Diagnosis.BIPOLAR_II)
_BENZODIAZEPINE, _LITHIUM = MedClass.BENZODIAZEPINE, MedClass.LITHIUM


def dose_of(session: SessionFact) -> Decimal | None:
    """The dose on the route's own unit: mg/kg for IV and IM, mg for the other routes."""
    route = session.route
    return session.dose_mg_per_kg if route is _IV or route is _IM else session.dose_mg


@dataclass(frozen=True)
class TrialGroup:
    label: str
    routes: frozenset[Route]
    minimum: int
    dose_words: str


TRIAL_GROUPS = (
    TrialGroup("IV/IM", frozenset({Route.IV, Route.IM}), IV_IM_ADEQUATE_SESSIONS, "≥ 0.5 mg/kg"),
    TrialGroup(
        "intranasal", frozenset({Route.INTRANASAL}), INTRANASAL_ADEQUATE_SESSIONS, "≥ 56 mg"
    ),
    TrialGroup(
        "sublingual/oral",
        frozenset({Route.SUBLINGUAL, Route.ORAL}),
        ORAL_ADEQUATE_SESSIONS,
        "any dose",
    ),
)


_IV_IM, _NASAL, _ORAL = (group.label for group in TRIAL_GROUPS)


_GROUP_OF = {route: group for group in TRIAL_GROUPS for route in group.routes}


def trial_group(route: Route) -> TrialGroup:
    return _GROUP_OF[route]


class _once:  # noqa: N801 (read like functools.cached_property)
    """Computed on first read, then a plain attribute: functools.cached_property without its
    lock (Python 3.11 takes one on every first read, a cost in an engine run per save)."""

    def __init__(self, method: Callable):
        self.method = method
        self.__doc__ = method.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.method(instance)
        return value


@dataclass
class CourseState:
    """The derived facts of SPEC §3 that the flag rules read, each worked out once from the
    facts (:func:`course_state`), so no rule scans the facts again. Not frozen: it is built
    once per evaluation, and a frozen dataclass sets each field through object.__setattr__
    (a call each); nothing changes it after :func:`course_state`."""

    facts: CourseFacts
    settings: EngineSettings
    as_of: datetime | None
    as_of_day: date | None  # in the clinic's zone
    sessions: tuple[SessionFact, ...]  # up to the reference time, in time order
    completed: tuple[SessionFact, ...]
    active: tuple[MedicationFact, ...]  # active on the as-of day
    active_classes: set[MedClass]  # their classes
    results: dict[Instrument, InstrumentResult]
    primary: InstrumentResult
    status: Status  # the primary instrument's
    current: SessionFact | None  # the latest completed session
    current_route: Route | None  # its route
    trial_counts: dict[str, int]  # TrialGroup.label -> completed sessions at an adequate dose
    adequate_trial: bool
    adequate_on_current_route: bool  # the current route's own group (reading 6)
    at_current_dose: tuple[SessionFact, ...]  # the run at the end since route or dose changed
    optimizations: tuple[str, ...]
    outcome: Outcome
    # Each instrument's assessments up to the reference time, in time order (at a tied
    # instant the lower total first).
    madrs: tuple[AssessmentFact, ...] = ()
    phq9: tuple[AssessmentFact, ...] = ()
    # The completed sessions' doses, each on its route's own unit (dose_of), in their order.
    doses: tuple[Decimal | None, ...] = ()

    @_once
    def assessments(self) -> tuple[AssessmentFact, ...]:
        """Every assessment up to the reference time, in time order."""
        return tuple(sorted(self.madrs + self.phq9, key=_AT_TOTAL))

    @_once
    def poorly_tolerated(self) -> dict[tuple[Route, Decimal], list[SessionFact]]:
        """(route, dose) -> the completed or stopped sessions that tolerated it poorly, in
        time order (r2, reading 25). Read only where an escalation is due: on demand."""
        poorly: dict[tuple[Route, Decimal], list[SessionFact]] = {}
        for session in self.sessions:  # completed and stopped: a stopped session gave drug
            if _poorly_tolerated(session):
                dose = dose_of(session)
                if dose is not None:
                    poorly.setdefault((session.route, dose), []).append(session)
        return poorly

    @_once
    def escalation_step(self) -> Decimal | None:
        return _escalation_step(self)

    @_once
    def outcome_words(self) -> str:
        """E.g. "MADRS 36 → 29 (19.4 %) after 6 completed sessions": in most flags."""
        return _outcome(self)

    @property
    def current_dose(self) -> Decimal | None:
        return self.doses[-1] if self.completed else None

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.settings.timezone).date()

    def active_of(self, *classes: MedClass) -> list[MedicationFact]:
        if self.active_classes.isdisjoint(classes):
            return []
        return [med for med in self.active if med.drug_class in classes]


def _instrument_result(
    instrument: Instrument,
    own: tuple[AssessmentFact, ...],
    first_start: datetime | None,
    remission: int,
) -> InstrumentResult:
    """``own``: the instrument's assessments in time order, at a tied instant the lower total
    first (course_state)."""
    # Up to the start of the first completed session (baseline) and after it (current).
    split = len(own) if first_start is None else bisect_right(own, first_start, key=_AT)
    if not split:
        baseline = None
        scores: tuple[int, ...] = ()
    else:
        # The latest before, at a tied instant the lower total (reading 4): the first of the
        # last instant's run.
        first = split - 1
        last_at = own[first].at
        while first and own[first - 1].at == last_at:
            first -= 1
        baseline = own[first].total
        scores = (baseline, *[a.total for a in own[split:]])
    # The latest after, at a tied instant the higher total: the last one.
    current = own[-1].total if split < len(own) else None
    return InstrumentResult(
        instrument,
        instrument_status(baseline, current, remission),
        baseline,
        current,
        percent_reduction(baseline, current),
        scores,
        trajectory(scores),
    )




def _optimizations(
    completed: list[SessionFact],
    doses: list[Decimal | None],
    steady: bool,
    lithium: list[MedicationFact],
    accepted: Iterable[str],
    first_day: date | None,
    as_of_day: date | None,
    tz: ZoneInfo,
) -> tuple[str, ...]:
    """What counts as "an optimization is recorded" (SPEC §3), each in words; ``doses`` are
    the completed sessions' doses on their routes' own units, ``steady`` that they are of one
    route and one dose (no change to find), ``lithium`` the lithium-class medications."""
    seen = []
    if not steady:
        for index in range(1, len(completed)):
            before, after = completed[index - 1], completed[index]
            if before.route != after.route:
                on = after.at.astimezone(tz).date().isoformat()
                seen.append(f"route {_route(before.route)} → {_route(after.route)} on {on}")
            elif doses[index - 1] != doses[index]:
                on = after.at.astimezone(tz).date().isoformat()
                seen.append(f"{_route(after.route)} dose {_dose_words(before)} → "
                            f"{_dose_words(after)} on {on}")
    if accepted:
        seen += [words for code, words in _STRATEGY_WORDS if code in accepted]
    if completed and lithium:
        for med in sorted(lithium, key=lambda m: (m.start, m.name, repr(m))):
            started_later = med.start > first_day and (as_of_day is None or med.start <= as_of_day)
            if started_later:
                name = med.name if "lithium" in med.name.casefold() else f"{med.name} (lithium)"
                seen.append(f"{name} started {med.start.isoformat()}")
    return tuple(seen)


# By the flag's label, as a clinician reads it (the course page and the report name each
# flag so): these words feed the report's optimization attempts and the lithium and
# discontinuation messages, never a code.
_STRATEGY_WORDS = tuple(
    (code, f"{code.label} accepted") for code in FlagCode if code in OPTIMIZATION_STRATEGIES
)


def _course_outcome(
    completed: list[SessionFact],
    doses: list[Decimal | None],
    one_route: bool,
    highest: Decimal | None,
    first_day: date | None,
    primary: InstrumentResult,
    primary_own: list[AssessmentFact],
    settings: EngineSettings,
    tz: ZoneInfo,
) -> Outcome:
    """The course's :class:`Outcome`, from the completed sessions in time order, their doses
    (``highest`` the highest of them, when all are of ``one_route``) and the primary
    instrument's result and assessments."""
    if not completed:
        return NO_OUTCOME
    route = completed[-1].route
    if not one_route:
        # Most completed sessions, a tie to the route used last: a course just switched keeps
        # the route most of its treatment (and so its status) came from.
        routes = [s.route for s in completed]
        last_use = {r: index for index, r in enumerate(routes)}
        route = max(last_use, key=lambda r: (routes.count(r), last_use[r]))
        highest = None
        for session_route, dose in zip(routes, doses, strict=True):
            if session_route == route and dose is not None and (highest is None or dose > highest):
                highest = dose
    responded_on = days = sessions = None
    # Response: the first score of the primary instrument after the first completed session
    # that reads as response or remission against the baseline (SPEC §3); at a tied instant
    # the higher total (reading 4), the last of the instant's run in this order.
    if primary.baseline is not None:
        limit = responding_limit(primary.baseline, settings.remission(primary.instrument))
        first = completed[0].at
        later = primary_own
        for index in range(bisect_right(later, first, key=_AT), len(later)):
            assessment = later[index]
            if assessment.total > limit:
                continue
            if index + 1 < len(later) and later[index + 1].at == assessment.at:
                continue  # a higher total at the same instant counts (it is later in order)
            responded_on = assessment.at.astimezone(tz).date()
            days = (responded_on - first_day).days
            sessions = bisect_left(completed, assessment.at, key=_AT)  # those before it
            break
    weight_based = route is _IV or route is _IM
    return Outcome(
        route,
        highest if weight_based else None,  # mg/kg
        None if weight_based else highest,  # mg
        first_day,
        responded_on,
        days,
        sessions,
    )


def course_state(facts: CourseFacts, settings: EngineSettings = DEFAULTS) -> CourseState:
    """Everything the rules read, derived from the facts once."""
    tz = settings.timezone
    # Aware and in time order, as from the database (one look at each), else made so (as
    # _in_time_order does, a session's discharge time included).
    sessions = facts.sessions
    previous = None
    for session in sessions:
        moment, discharged = session.at, session.discharged_at
        if (moment.tzinfo is None or (discharged is not None and discharged.tzinfo is None)
                or (previous is not None and not previous < moment)):
            sessions = [_aware_session(s, tz) for s in sessions]
            _sort(sessions, _AT, _session_key)
            break
        previous = moment
    # Each instrument's assessments, aware and in time order as from the database (checked as
    # they are split), else made so.
    madrs: list[AssessmentFact] = []
    phq9: list[AssessmentFact] = []
    last_madrs = last_phq9 = None
    in_order = True
    for assessment in facts.assessments:
        moment = assessment.at
        if moment.tzinfo is None:
            in_order = False
        instrument = assessment.instrument
        if instrument == _MADRS:
            if last_madrs is not None and in_order and not last_madrs < moment:
                in_order = False
            last_madrs = moment
            madrs.append(assessment)
        elif instrument == _PHQ9:
            if last_phq9 is not None and in_order and not last_phq9 < moment:
                in_order = False
            last_phq9 = moment
            phq9.append(assessment)
    if not in_order:
        madrs = _in_time_order(madrs, _aware_assessment, tz, _AT_TOTAL, _assessment_key)
        phq9 = _in_time_order(phq9, _aware_assessment, tz, _AT_TOTAL, _assessment_key)
    if facts.as_of is not None:  # up to the reference time (reading 1)
        as_of = _aware(facts.as_of, tz)
        sessions = [s for s in sessions if s.at <= as_of]
        madrs = [a for a in madrs if a.at <= as_of]
        phq9 = [a for a in phq9 if a.at <= as_of]
    if facts.as_of is None:
        as_of = None
        for items in (sessions, madrs, phq9):
            if items and (as_of is None or items[-1].at > as_of):
                as_of = items[-1].at
    as_of_day = as_of.astimezone(tz).date() if as_of else None

    # The completed sessions and their doses (each on its route's own unit), the adequate-trial
    # counts, and where the run at the current dose starts: one pass.
    completed: list[SessionFact] = []
    doses: list[Decimal | None] = []
    iv_im = intranasal = oral = 0  # in TRIAL_GROUPS order
    start = 0
    route = dose = highest = None
    one_route = True
    for session in sessions:
        if session.status != _COMPLETED:
            continue
        last_route, last_dose = route, dose
        route = session.route
        if route is _IV or route is _IM:
            dose = session.dose_mg_per_kg
            if dose is not None and dose >= IV_IM_ADEQUATE_DOSE:
                iv_im += 1
        elif route is _INTRANASAL:
            dose = session.dose_mg
            if dose is not None and dose >= INTRANASAL_ADEQUATE_DOSE:
                intranasal += 1
        else:
            dose = session.dose_mg
            oral += 1
        if completed:
            if route != last_route:
                start, one_route = len(completed), False  # the route changed here
            elif dose != last_dose:
                start = len(completed)  # the dose changed here
        if dose is not None and (highest is None or dose > highest):
            highest = dose
        completed.append(session)
        doses.append(dose)
    trial_counts = {_IV_IM: iv_im, _NASAL: intranasal, _ORAL: oral}
    adequate = (iv_im >= IV_IM_ADEQUATE_SESSIONS or intranasal >= INTRANASAL_ADEQUATE_SESSIONS
                or oral >= ORAL_ADEQUATE_SESSIONS)

    first_start = completed[0].at if completed else None
    madrs_result = _instrument_result(_MADRS, madrs, first_start, settings.madrs_remission)
    phq9_result = _instrument_result(_PHQ9, phq9, first_start, settings.phq9_remission)
    has_madrs = madrs_result.baseline is not None and madrs_result.current is not None
    primary = madrs_result if has_madrs else phq9_result

    # The medications active on the as-of day (in the facts' order: no rule reads it), their
    # classes, and the lithium ones (for the optimizations): one pass.
    active: list[MedicationFact] = []
    lithium: list[MedicationFact] = []
    for med in facts.medications:
        if med.drug_class == _LITHIUM:
            lithium.append(med)
        if as_of_day is None:  # nothing dated: reading 1
            if med.stop is None:
                active.append(med)
        elif med.start <= as_of_day and (med.stop is None or med.stop >= as_of_day):
            active.append(med)

    first_day = completed[0].at.astimezone(tz).date() if completed else None
    accepted = facts.accepted_flags
    return CourseState(
        facts,
        settings,
        as_of,
        as_of_day,
        tuple(sessions),
        tuple(completed),
        tuple(active),
        {med.drug_class for med in active},
        {_MADRS: madrs_result, _PHQ9: phq9_result},
        primary,
        primary.status,
        completed[-1] if completed else None,
        route,
        trial_counts,
        adequate,
        route is not None and trial_counts[(group := _GROUP_OF[route]).label] >= group.minimum,
        tuple(completed[start:]),
        _optimizations(completed, doses, start == 0, lithium, accepted, first_day, as_of_day,
                       tz) if start or accepted or lithium else (),
        _course_outcome(completed, doses, one_route, highest, first_day, primary,
                        madrs if primary is madrs_result else phq9, settings, tz),
        tuple(madrs),
        tuple(phq9),
        tuple(doses),
    )


_SEVERE_AE_RANK = 2  # Intensity.MODERATE.rank: a moderate or severe adverse event


def _poorly_tolerated(session: SessionFact) -> bool:
    """Severe dissociation or a moderate or severe adverse event (SPEC §3, *r2*)."""
    event = session.adverse_event_severity
    return session.dissociation is _SEVERE or event is _MODERATE or event is _SEVERE


# ---------------------------------------------------------------------------------------------
# Words


def _mg_per_kg(dose: Decimal) -> str:
    text = format(dose.normalize(), "f")
    return f"{text}.0" if "." not in text else text


@lru_cache(maxsize=256)  # a clinic uses a handful of doses; 0.5 and 0.500 read alike
def _dose_text(weight_based: bool, dose: Decimal) -> str:
    if weight_based:
        return f"{_mg_per_kg(dose)} mg/kg"
    return f"{format(dose.normalize(), 'f')} mg"


def _dose_words(session: SessionFact) -> str:
    route = session.route
    weight_based = route is _IV or route is _IM
    dose = session.dose_mg_per_kg if weight_based else session.dose_mg
    if dose is None:
        return "no dose recorded"
    return _dose_text(weight_based, dose)


def _route_words(route: Route) -> str:
    label = route.label
    return label if label[:2].isupper() else label[0].lower() + label[1:]


_ROUTE_WORDS = {route: _route_words(route) for route in Route}


def _route(route: Route) -> str:
    """The label as it reads inside a sentence: IV ketamine, intranasal esketamine."""
    return _ROUTE_WORDS[route]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _percent(value: Fraction) -> str:
    return f"{round_half_away(value)} %"


def _outcome(state: CourseState) -> str:
    """The primary instrument's scores, e.g. "MADRS 36 → 29 (19.4 %) after 6 completed
    sessions"."""
    result = state.primary
    name = INSTRUMENTS[result.instrument].name
    after = f"after {_plural(len(state.completed), 'completed session')}"
    if result.baseline is None:
        return f"No {name} baseline {after}"
    if result.current is None:
        return f"{name} baseline {result.baseline}, no later score {after}"
    if result.percent_reduction is None:
        return f"{name} {result.baseline} → {result.current} {after}"
    change = _percent(result.percent_reduction)
    return f"{name} {result.baseline} → {result.current} ({change}) {after}"


_STATUS_WORDS = {status: f"status {status.label.lower()}" for status in Status}


def _status_words(state: CourseState) -> str:
    words = _STATUS_WORDS[state.status]
    return words if state.adequate_trial else f"{words} (provisional: trial not yet adequate)"


def _names(meds: list[MedicationFact]) -> str:
    names = sorted({med.name for med in meds}, key=str.casefold)
    return f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} active"


def _medication_words(meds: list[MedicationFact], drug_class: MedClass) -> str:
    """E.g. oxycodone is active (opioid); the class is left out when it is the drug's name."""
    words = _names(meds)
    if any(med.name.casefold() != drug_class.value for med in meds):
        label = drug_class.label
        words += f" ({label if label.isupper() else label.lower()})"
    return words + "."


def _stopped(session: SessionFact) -> str:
    return ", stopped early" if session.status is _STOPPED else ""


def _days(state: CourseState, sessions: Iterable[SessionFact]) -> str:
    """The session days, or "6 sessions, 2026-01-05 to 2026-01-16" for more than three."""
    days = [state.day(s.at).isoformat() for s in sessions]
    if len(days) > 3:
        return f"{len(days)} sessions, {days[0]} to {days[-1]}"
    return ", ".join(days)


def _at_current_dose(state: CourseState) -> str:
    current = state.current
    return (
        f"{_plural(len(state.at_current_dose), 'session')} at {_dose_words(current)} "
        f"{_route(current.route)}"
    )


# ---------------------------------------------------------------------------------------------
# Flags, one function each, in the SPEC §4 order


def suicidal_ideation(state: CourseState) -> Flag | None:
    seen = []
    for instrument, (item, threshold) in SUICIDAL_ITEM.items():
        own = state.madrs if instrument is _MADRS else state.phq9  # in time order
        index = len(own) - 1
        while index >= 0 and own[index].items is None:
            index -= 1
        if index < 0:
            continue
        last = own[index].at
        score = own[index].items[item - 1]
        while index > 0 and own[index - 1].at == last:  # the highest at the latest instant
            index -= 1
            if own[index].items is not None:
                score = max(score, own[index].items[item - 1])
        if score >= threshold:
            definition = INSTRUMENTS[instrument]
            label = definition.items[item - 1].label.lower()
            seen.append(
                f"{definition.name} item {item} ({label}) scored {score} on "
                f"{state.day(last).isoformat()}"
            )
    if not seen:
        return None
    return Flag(
        FlagCode.SUICIDAL_IDEATION,
        FlagSeverity.CRITICAL,
        "; ".join(seen) + ".",
        "Suicide risk assessment (C-SSRS) before the next session.",
        "001 monitoring during maintenance",
    )


def bipolar_no_mood_stabilizer(state: CourseState) -> Flag | None:
    diagnosis = state.facts.patient.diagnosis
    if diagnosis not in _BIPOLAR:
        return None
    if state.active_of(*MOOD_STABILIZERS):
        return None
    on = f" on {state.as_of_day.isoformat()}" if state.as_of_day else ""
    return Flag(
        FlagCode.BIPOLAR_NO_MOOD_STABILIZER,
        FlagSeverity.CRITICAL,
        f"Diagnosis {diagnosis.label} and no active mood stabilizer (lithium, valproate, "
        f"lamotrigine or carbamazepine){on}.",
        "Ketamine must be combined with a mood stabilizer (lithium or valproate at therapeutic "
        "levels); lower starting doses and close monitoring for mood switches.",
        "001 bipolar depression; 002",
    )


def psychotic_features(state: CourseState) -> Flag | None:
    if not state.facts.patient.psychotic_features:
        return None
    return Flag(
        FlagCode.PSYCHOTIC_FEATURES,
        FlagSeverity.CRITICAL,
        "Psychotic features are recorded.",
        "Generally contraindicated; only under specialist oversight, after psychosis has fully "
        "resolved and with antipsychotic coverage.",
        "001 depression with psychotic features",
    )


def dose_above_standard(state: CourseState) -> Flag | None:
    above = [
        s
        for s in state.sessions  # completed or stopped (r2)
        if not s.enhanced_monitoring
        and s.dose_mg_per_kg is not None
        and s.dose_mg_per_kg > ENHANCED_MONITORING_ABOVE
        and (s.route is _IV or s.route is _IM)
    ]
    if not above:
        return None
    listed = ", ".join(
        f"{state.day(s.at).isoformat()} ({_dose_words(s)} {_route(s.route)}{_stopped(s)})"
        for s in above
    )
    return Flag(
        FlagCode.DOSE_ABOVE_STANDARD,
        FlagSeverity.CRITICAL,
        f"{_plural(len(above), 'session')} above 0.75 mg/kg without enhanced "
        f"monitoring confirmed: {listed}.",
        "Enhanced cardiovascular monitoring and a 90–120 min recovery for every dose above "
        "0.75 mg/kg; confirm it on the session record.",
        "000 considerations for higher dosing; 001 dose titration protocol",
    )


MEDICATION_SOURCE = "000 step 3; 001 medications to avoid or adjust"


def benzodiazepine(state: CourseState) -> Flag | None:
    if _BENZODIAZEPINE not in state.active_classes:
        return None
    meds = state.active_of(_BENZODIAZEPINE)
    if not meds:
        return None
    warn = state.status in NOT_RESPONDING or not state.adequate_trial
    message = f"{state.outcome_words}; {_names(meds)}"
    if not state.adequate_trial:
        message += "; the trial is not yet adequate"
    return Flag(
        FlagCode.BENZODIAZEPINE,
        FlagSeverity.WARNING if warn else FlagSeverity.INFO,
        message + ".",
        "Hold on treatment days; taper if possible, with support.",
        MEDICATION_SOURCE,
    )


def benzodiazepine_taken(state: CourseState) -> Flag | None:
    taken = [s for s in state.completed if s.benzodiazepine_24h]
    if not taken:
        return None
    return Flag(
        FlagCode.BENZODIAZEPINE_TAKEN,
        FlagSeverity.WARNING,
        f"A benzodiazepine was taken in the 24 h before {_plural(len(taken), 'completed session')}"
        f": {_days(state, taken)}.",
        "It may have blunted that session; hold benzodiazepines on treatment days.",
        MEDICATION_SOURCE,
    )


def _medication_flag(code, drug_class, severity, suggestion):
    def rule(state: CourseState) -> Flag | None:
        if drug_class not in state.active_classes:
            return None
        meds = state.active_of(drug_class)
        if not meds:
            return None
        return Flag(
            code, severity, _medication_words(meds, drug_class), suggestion, MEDICATION_SOURCE
        )

    rule.__name__ = code.lower()
    rule.drug_class = drug_class  # read by _active_medication_flags
    return rule


naltrexone_hold = _medication_flag(
    FlagCode.NALTREXONE_HOLD,
    MedClass.NALTREXONE,
    FlagSeverity.WARNING,
    "Hold 72 h before each treatment.",
)
memantine = _medication_flag(
    FlagCode.MEMANTINE,
    MedClass.MEMANTINE,
    FlagSeverity.WARNING,
    "Avoid concurrent use (NMDA antagonist competition).",
)
maoi_washout = _medication_flag(
    FlagCode.MAOI_WASHOUT,
    MedClass.MAOI,
    FlagSeverity.WARNING,
    "2-week washout.",
)
lamotrigine = _medication_flag(
    FlagCode.LAMOTRIGINE,
    MedClass.LAMOTRIGINE,
    FlagSeverity.INFO,
    "Limited evidence of interaction; monitor.",
)
opioid = _medication_flag(
    FlagCode.OPIOID,
    MedClass.OPIOID,
    FlagSeverity.INFO,
    "Cross-tolerance possible; consider dose adjustment.",
)


_WORST_FIRST = tuple(reversed(Intensity))


def _worst(sessions: Iterable[SessionFact], attribute: str) -> Intensity:
    seen = set(map(attrgetter(attribute), sessions))
    return next((level for level in _WORST_FIRST if level in seen), _NONE)


def _tolerability_problems(state: CourseState) -> list[str]:
    """Severe dissociation or a moderate or severe adverse event among the sessions at the
    current dose, in words."""
    seen = []
    for s in state.at_current_dose:
        event = s.adverse_event_severity
        if s.dissociation is not _SEVERE and event is not _MODERATE and event is not _SEVERE:
            continue  # tolerated (_poorly_tolerated)
        on = state.day(s.at).isoformat()
        if s.dissociation is _SEVERE:
            seen.append(f"severe dissociation on {on}")
        if event is _MODERATE or event is _SEVERE:
            seen.append(f"a {event} adverse event on {on}")
    return seen


def _escalation_step(state: CourseState) -> Decimal | None:
    """DOSE_ESCALATION's ladder step when every condition but the course's tolerability holds
    (r2: that one is :func:`_poorly_tolerated_at_or_below`)."""
    current, dose = state.current, state.current_dose
    if current is None or (current.route is not _IV and current.route is not _IM):
        return None
    if dose is None:
        return None
    if state.status not in NOT_RESPONDING or len(state.at_current_dose) < 2:
        return None
    if dose >= MG_PER_KG_MAX or any(map(_poorly_tolerated, state.at_current_dose)):
        return None
    return next_ladder_step(dose)


def _poorly_tolerated_at_or_below(state: CourseState, step: Decimal) -> list:
    """The poorly tolerated IV/IM doses at or below ``step``: the step must be below every one
    (r2, 000 "if tolerated")."""
    return sorted(
        (route, dose)
        for route, dose in state.poorly_tolerated
        if route in _WEIGHT_BASED and dose <= step
    )


def dose_escalation(state: CourseState) -> Flag | None:
    step = state.escalation_step
    if step is None or _poorly_tolerated_at_or_below(state, step):
        return None
    suggestion = f"Increase to {_mg_per_kg(step)} mg/kg (ladder 0.5 → 0.6 → 0.75 → 1.0 mg/kg)"
    if step > ENHANCED_MONITORING_ABOVE:
        suggestion += (
            "; above 0.75 mg/kg: enhanced cardiovascular monitoring and a 90–120 min recovery"
        )
    return Flag(
        FlagCode.DOSE_ESCALATION,
        FlagSeverity.INFO,
        f"{state.outcome_words}; {_at_current_dose(state)}, without severe dissociation or a "
        f"moderate or severe adverse event.",
        suggestion + ".",
        "000 strategy 1 (dose escalation protocol); 001 dose titration protocol",
        step,
    )


ESKETAMINE_84 = (Route.INTRANASAL, Decimal(84))
_ESKETAMINE_56 = Decimal(56)


def _esketamine_escalation_due(state: CourseState) -> bool:
    """Every condition of ESKETAMINE_ESCALATION but the course's tolerability of 84 mg."""
    return (
        state.current_route is _INTRANASAL
        and state.current_dose == _ESKETAMINE_56
        and state.status in NOT_RESPONDING
    )


def esketamine_escalation(state: CourseState) -> Flag | None:
    if not _esketamine_escalation_due(state) or ESKETAMINE_84 in state.poorly_tolerated:
        return None
    return Flag(
        FlagCode.ESKETAMINE_ESCALATION,
        FlagSeverity.INFO,
        f"{state.outcome_words}; current dose intranasal esketamine 56 mg.",
        "84 mg from the next session.",
        "000 adequate trial (56 mg → 84 mg) and strategy 3",
    )


def dose_reduction(state: CourseState) -> Flag | None:
    if state.current is None or state.status not in RESPONDING:
        return None
    problems = _tolerability_problems(state)
    if not problems:
        return None
    route, dose = state.current_route, state.current_dose
    suggested = None
    if route.weight_based and dose is not None and dose > Decimal("0.4"):
        suggested = Decimal("0.4")
        suggestion = "Consider reducing to 0.4 mg/kg."
    elif route == Route.INTRANASAL and dose == Decimal(84):
        suggestion = "Consider 56 mg."
    else:
        suggestion = f"Consider a dose lower than {_dose_words(state.current)}."
    return Flag(
        FlagCode.DOSE_REDUCTION,
        FlagSeverity.INFO,
        f"{state.outcome_words}; at {_dose_words(state.current)} {_route(route)}: "
        f"{', '.join(problems)}.",
        suggestion,
        "001 dose titration protocol (excellent response with side effects)",
        suggested,
    )


def lower_dose_trial(state: CourseState) -> Flag | None:
    if state.current_route is not _IV or state.status is not _NON_RESPONSE:
        return None
    severe = [s for s in state.at_current_dose if s.dissociation is _SEVERE]
    if not severe:
        return None
    return Flag(
        FlagCode.LOWER_DOSE_TRIAL,
        FlagSeverity.INFO,
        f"{state.outcome_words}; severe dissociation at {_dose_words(state.current)} IV "
        f"({_days(state, severe)}).",
        "Trial 0.3–0.4 mg/kg with a slower infusion.",
        "000 strategy 1 (lower dosing)",
    )


def infusion_rate(state: CourseState) -> Flag | None:
    if state.current_route is not _IV or state.status not in NOT_RESPONDING:
        return None
    if len(state.completed) < 4:
        return None
    worst = _worst(state.at_current_dose, "dissociation")
    minutes = state.current.minutes
    over = f"; latest infusion over {minutes} min" if minutes is not None else ""
    if worst is _NONE or worst is _MILD:
        suggestion = "A faster infusion, over 20–30 min."
    else:
        suggestion = "A slower infusion, over 50–60 min."
    return Flag(
        FlagCode.INFUSION_RATE,
        FlagSeverity.INFO,
        f"{state.outcome_words}{over}; the most dissociation at the current dose: {worst}.",
        suggestion,
        "000 strategy 2 (infusion rate modification)",
    )


_EIGHT_DAYS = timedelta(days=8)  # the last three sessions average more than 4 days apart


def increase_frequency(state: CourseState) -> Flag | None:
    if state.status not in NOT_RESPONDING or len(state.completed) < 3:
        return None
    first, last = state.completed[-3], state.completed[-1]
    span = last.at - first.at
    if span <= _EIGHT_DAYS:
        return None
    average = Fraction(span // timedelta(microseconds=1), 2 * 86_400_000_000)  # days
    return Flag(
        FlagCode.INCREASE_FREQUENCY,
        FlagSeverity.INFO,
        f"The last three completed sessions ({_days(state, state.completed[-3:])}) are on "
        f"average {round_half_away(average)} days apart; {_status_words(state)}.",
        "2–3 treatments a week.",
        "001 troubleshooting non-response (inadequate frequency)",
    )


def no_signal_after_4(state: CourseState) -> Flag | None:
    if len(state.completed) < 4 or state.status is not _NON_RESPONSE:
        return None
    return Flag(
        FlagCode.NO_SIGNAL_AFTER_4,
        FlagSeverity.WARNING,
        f"{state.outcome_words}: non-response.",
        "Re-evaluate the diagnosis, confounders (substance use, comorbidity, sleep, "
        "psychosocial factors) and medications before going on.",
        "001 clinical takeaway 6; 000 step 2",
    )


def extend_induction(state: CourseState) -> Flag | None:
    if not 6 <= len(state.completed) <= 9:
        return None
    improving_non_response = (
        state.status is _NON_RESPONSE and state.primary.trajectory is _IMPROVING
    )
    if state.status is not _PARTIAL_RESPONSE and not improving_non_response:
        return None
    return Flag(
        FlagCode.EXTEND_INDUCTION,
        FlagSeverity.INFO,
        f"{state.outcome_words}; {_status_words(state)}, trajectory {state.primary.trajectory}.",
        "4–6 further sessions; judge the trend, not the endpoint.",
        "000 strategy 4 (extended induction); 003",
    )


def route_switch(state: CourseState) -> Flag | None:
    if state.status not in NOT_RESPONDING or not state.adequate_on_current_route:
        return None
    high = [
        s
        for s in state.completed
        if (s.route is _IV or s.route is _IM)
        and s.dose_mg_per_kg is not None
        and s.dose_mg_per_kg >= ENHANCED_MONITORING_ABOVE  # 0.75 mg/kg
    ]
    severe = [s for s in state.completed if s.dissociation is _SEVERE]
    if not high and not severe:
        return None
    route = state.current_route
    group = trial_group(route)
    seen = [
        f"adequate trial on {group.label} ({state.trial_counts[group.label]} completed sessions "
        f"at {group.dose_words})"
    ]
    if high:
        seen.append(f"0.75 mg/kg or more already given ({_days(state, high)})")
    if severe:
        seen.append(f"severe dissociation ({_days(state, severe)})")
    if route == Route.IV:
        suggestion = "Switch to intranasal esketamine 56 → 84 mg × 8 sessions, or to IM ketamine."
    elif route == Route.IM:
        suggestion = "Switch to intranasal esketamine 56 → 84 mg × 8 sessions, or to IV ketamine."
    elif route == Route.INTRANASAL:
        suggestion = "Switch to IV ketamine."
    else:
        suggestion = "Switch to IV ketamine, or to intranasal esketamine 56 → 84 mg × 8 sessions."
    return Flag(
        FlagCode.ROUTE_SWITCH,
        FlagSeverity.INFO,
        f"{state.outcome_words}; {'; '.join(seen)}.",
        suggestion,
        "000 strategy 3 (alternative routes of administration)",
    )


def lithium_augmentation(state: CourseState) -> Flag | None:
    if not state.adequate_trial or state.status not in NOT_RESPONDING:
        return None
    if not state.optimizations or _LITHIUM in state.active_classes:
        return None
    return Flag(
        FlagCode.LITHIUM_AUGMENTATION,
        FlagSeverity.INFO,
        f"{state.outcome_words}, after an adequate trial and an optimization "
        f"({'; '.join(state.optimizations)}); no active lithium.",
        "Lithium 300–600 mg/day to a level of 0.6–0.8 mEq/L, continuing ketamine; evaluate over "
        "4–6 weeks.",
        "000 strategy 5 (lithium augmentation)",
    )


def discontinuation_review(state: CourseState) -> Flag | None:
    if len(state.completed) < 10 or state.status not in NOT_RESPONDING:
        return None
    if state.primary.trajectory is _IMPROVING or not state.optimizations:
        return None
    return Flag(
        FlagCode.DISCONTINUATION_REVIEW,
        FlagSeverity.WARNING,
        f"{state.outcome_words}; {_status_words(state)}, trajectory {state.primary.trajectory}; "
        f"optimizations: {'; '.join(state.optimizations)}.",
        "Discuss discontinuation and the alternatives: ECT, TMS, VNS, an MAOI, intensive "
        "psychotherapy.",
        "000 knowing when to discontinue",
    )


def maintenance_plan(state: CourseState) -> Flag | None:
    if state.status not in RESPONDING or len(state.completed) < 4:
        return None
    return Flag(
        FlagCode.MAINTENANCE_PLAN,
        FlagSeverity.INFO,
        f"{state.outcome_words}: {state.status.label.lower()}.",
        "Plan maintenance: weekly × 4, then every 2 weeks, every 3 weeks, monthly; most "
        "responders relapse within 2 weeks without one.",
        "001 gradual spacing protocol; 002",
    )


def trd_not_verified(state: CourseState) -> Flag | None:
    drugs = set()
    for trial in state.facts.patient.failed_trials:
        if trial.adequate:
            drugs.add(trial.drug.casefold())
    if len(drugs) >= 2:
        return None
    drugs = sorted(drugs)
    recorded = f" ({', '.join(drugs)})" if drugs else ""
    return Flag(
        FlagCode.TRD_NOT_VERIFIED,
        FlagSeverity.WARNING,
        f"{_plural(len(drugs), 'failed adequate antidepressant trial')} recorded{recorded}; "
        f"treatment resistance needs at least 2.",
        "Verify treatment resistance before starting: at least 2 failed adequate trials, with "
        "dose, duration and adherence confirmed.",
        "001 verifying treatment resistance (documentation checklist)",
    )


def relapse_risk(state: CourseState) -> Flag | None:
    started = state.facts.maintenance_started
    if state.facts.phase is not _MAINTENANCE or started is None:
        return None
    phq9 = state.phq9
    latest = _latest(phq9)
    if latest is None or state.day(latest.at) <= started:
        return None
    reference = _latest([a for a in phq9 if state.day(a.at) <= started], lowest_on_tie=True)
    rising = reference is not None and latest.total >= reference.total + 2
    if not rising and latest.total <= 10:
        return None
    seen = f"PHQ-9 {latest.total} on {state.day(latest.at).isoformat()}"
    if reference is not None:
        seen += (
            f" against {reference.total} on {state.day(reference.at).isoformat()} "
            f"(+{latest.total - reference.total})"
        )
    else:
        seen += ", no PHQ-9 on or before the day maintenance started"
    if latest.total > 10:
        seen += ", above 10"
    return Flag(
        FlagCode.RELAPSE_RISK,
        FlagSeverity.WARNING,
        f"{seen}; maintenance started {started.isoformat()}.",
        "Return to more frequent dosing.",
        "001 monitoring during maintenance (relapse indicators) and PRN maintenance (PHQ-9 > 10)",
    )


_TWO_HOURS = timedelta(hours=2)  # the REMS observation


def esketamine_monitoring(state: CourseState) -> Flag | None:
    short = [
        s
        for s in state.sessions  # completed or stopped (r2)
        if s.route is _INTRANASAL
        and s.discharged_at is not None
        and s.discharged_at - s.at < _TWO_HOURS
    ]
    if not short:
        return None
    listed = ", ".join(
        f"{state.day(s.at).isoformat()} "
        f"({int((s.discharged_at - s.at).total_seconds() // 60)} min{_stopped(s)})"
        for s in short
    )
    return Flag(
        FlagCode.ESKETAMINE_MONITORING,
        FlagSeverity.WARNING,
        f"{_plural(len(short), 'intranasal session')} discharged less than 2 h after "
        f"the dose: {listed}.",
        "Observe for at least 2 hours after every esketamine dose (REMS).",
        "002 safety monitoring (esketamine REMS 2-hour observation)",
    )


def bp_elevated(state: CourseState) -> Flag | None:
    # The latest session, completed or stopped, with a pre-dose blood pressure (r2).
    for session in reversed(state.sessions):
        if session.bp_pre is not None:
            break
    else:
        return None
    systolic, diastolic = session.bp_pre
    critical_s, critical_d = state.settings.bp_critical
    warning_s, warning_d = state.settings.bp_warning
    if systolic > critical_s or diastolic > critical_d:
        severity, limit = FlagSeverity.CRITICAL, f"{critical_s}/{critical_d}"
        suggestion = "Consider holding the session; recheck and manage blood pressure first."
    elif systolic > warning_s or diastolic > warning_d:
        severity, limit = FlagSeverity.WARNING, f"{warning_s}/{warning_d}"
        suggestion = (
            "Recheck before dosing; monitor blood pressure during and for 2 h after the session."
        )
    else:
        return None
    return Flag(
        FlagCode.BP_ELEVATED,
        severity,
        f"Pre-dose blood pressure {systolic}/{diastolic} at the latest session with one "
        f"({state.day(session.at).isoformat()}{_stopped(session)}), above {limit}.",
        suggestion,
        "002 safety monitoring; product default thresholds",
    )


SCORES_OVERDUE_AFTER = 3  # completed sessions after the latest assessment


def scores_overdue(state: CourseState) -> Flag | None:
    if not state.completed:
        return None
    if state.results[_MADRS].baseline is None and state.results[_PHQ9].baseline is None:
        seen = (
            f"{_plural(len(state.completed), 'completed session')} and no baseline MADRS or "
            f"PHQ-9"
        )
    else:
        # The latest assessment of either instrument (a baseline exists, so one does), and
        # the completed sessions after it (they are in time order).
        madrs, phq9 = state.madrs, state.phq9
        latest = (madrs[-1].at if not phq9 or (madrs and madrs[-1].at > phq9[-1].at)
                  else phq9[-1].at)
        since = len(state.completed) - bisect_right(state.completed, latest, key=_AT)
        if since < SCORES_OVERDUE_AFTER:
            return None
        seen = (
            f"{_plural(since, 'completed session')} since the latest MADRS or PHQ-9 "
            f"({state.day(latest).isoformat()})"
        )
    return Flag(
        FlagCode.SCORES_OVERDUE,
        FlagSeverity.WARNING,
        seen + ".",
        "Score MADRS or PHQ-9 now: the status and every outcome-based flag depend on it.",
        "000 documentation requirements (baseline severity and all outcome measures)",
    )


@dataclass(frozen=True)
class Rule:
    code: FlagCode
    check: Callable[[CourseState], Flag | None]
    phases: frozenset[Phase] = field(default_factory=lambda: frozenset(Phase))


def _phases_for(code: FlagCode) -> frozenset[Phase]:
    if code in OPTIMIZATION_FLAGS and code not in ANY_PHASE_OPTIMIZATION_FLAGS:
        return INDUCTION_PHASES
    if code in NOT_ENDED_FLAGS:
        return frozenset(Phase) - {Phase.ENDED}
    return frozenset(Phase)


RULES: tuple[Rule, ...] = tuple(
    Rule(code, check, _phases_for(code))
    for code, check in (
        (FlagCode.SUICIDAL_IDEATION, suicidal_ideation),
        (FlagCode.BIPOLAR_NO_MOOD_STABILIZER, bipolar_no_mood_stabilizer),
        (FlagCode.PSYCHOTIC_FEATURES, psychotic_features),
        (FlagCode.DOSE_ABOVE_STANDARD, dose_above_standard),
        (FlagCode.BENZODIAZEPINE, benzodiazepine),
        (FlagCode.BENZODIAZEPINE_TAKEN, benzodiazepine_taken),
        (FlagCode.NALTREXONE_HOLD, naltrexone_hold),
        (FlagCode.MEMANTINE, memantine),
        (FlagCode.MAOI_WASHOUT, maoi_washout),
        (FlagCode.LAMOTRIGINE, lamotrigine),
        (FlagCode.OPIOID, opioid),
        (FlagCode.DOSE_ESCALATION, dose_escalation),
        (FlagCode.ESKETAMINE_ESCALATION, esketamine_escalation),
        (FlagCode.DOSE_REDUCTION, dose_reduction),
        (FlagCode.LOWER_DOSE_TRIAL, lower_dose_trial),
        (FlagCode.INFUSION_RATE, infusion_rate),
        (FlagCode.INCREASE_FREQUENCY, increase_frequency),
        (FlagCode.NO_SIGNAL_AFTER_4, no_signal_after_4),
        (FlagCode.EXTEND_INDUCTION, extend_induction),
        (FlagCode.ROUTE_SWITCH, route_switch),
        (FlagCode.LITHIUM_AUGMENTATION, lithium_augmentation),
        (FlagCode.DISCONTINUATION_REVIEW, discontinuation_review),
        (FlagCode.MAINTENANCE_PLAN, maintenance_plan),
        (FlagCode.TRD_NOT_VERIFIED, trd_not_verified),
        (FlagCode.RELAPSE_RISK, relapse_risk),
        (FlagCode.ESKETAMINE_MONITORING, esketamine_monitoring),
        (FlagCode.BP_ELEVATED, bp_elevated),
        (FlagCode.SCORES_OVERDUE, scores_overdue),
    )
)
_ORDER = {code: index for index, code in enumerate(FlagCode)}


def evaluate(facts: CourseFacts, settings: EngineSettings = DEFAULTS) -> Evaluation:
    return evaluate_state(course_state(facts, settings))


# The checks of each phase, in RULES (that is FlagCode) order: picked once, not per evaluation.
def _active_medication_flags(state: CourseState) -> tuple[Flag, ...] | None:
    """The flags of an active medication of a class (NALTREXONE_HOLD to OPIOID), read as one
    check: only the rules of the classes active are called (most courses have none)."""
    classes = state.active_classes
    if not classes:
        return None
    flags = [check(state) for check in _MEDICATION_CHECKS if check.drug_class in classes]
    return tuple(flag for flag in flags if flag is not None) or None


_MEDICATION_CHECKS = tuple(rule.check for rule in RULES if hasattr(rule.check, "drug_class"))


def _checks(phase: Phase) -> tuple[Callable, ...]:
    """The checks of ``phase`` in RULES (that is FlagCode) order, the run of the rules of an
    active medication class read as one (they are raised in every phase)."""
    checks: list[Callable] = []
    for rule in RULES:
        if phase not in rule.phases:
            continue
        if rule.check not in _MEDICATION_CHECKS:
            checks.append(rule.check)
        elif _active_medication_flags not in checks:
            checks.append(_active_medication_flags)
    return tuple(checks)


# Picked once, not per evaluation.
_CHECKS_BY_PHASE = {phase: _checks(phase) for phase in Phase}


def evaluate_state(state: CourseState) -> Evaluation:
    """The evaluation of a course state already derived (for a caller that reads the state
    too, so it is derived once)."""
    # Critical, then warning, then info (reading 24); within a severity the SPEC table order,
    # which is the order the checks run in (RULES follows FlagCode): a stable split by
    # severity instead of a sort with a key per flag.
    raised: list[Flag] = []
    for check in _CHECKS_BY_PHASE.get(state.facts.phase, ()):
        flag = check(state)
        if flag is not None:
            if flag.__class__ is tuple:  # a group of checks (_active_medication_flags)
                raised += flag
            else:
                raised.append(flag)
    critical, warning, info = [], [], []
    for flag in raised:
        severity = flag.severity
        if severity is _CRITICAL:
            critical.append(flag)
        elif severity is _WARNING:
            warning.append(flag)
        else:
            info.append(flag)
    primary = state.primary
    adequate = state.adequate_trial
    optimizations = state.optimizations
    return Evaluation(
        primary.status,
        not adequate,  # provisional
        adequate,
        primary.instrument,
        primary.baseline,
        primary.current,
        primary.percent_reduction,
        len(state.completed),
        primary.trajectory,
        state.results,
        (*critical, *warning, *info),
        bool(optimizations),
        optimizations,
        state.as_of,
        _withheld(state),
        state.outcome,
    )


def _withheld(state: CourseState) -> tuple[str, ...]:
    """The escalations the rules would suggest but for a poorly tolerated dose (r2), in words;
    only in the phases where those flags are raised."""
    if state.facts.phase not in INDUCTION_PHASES:
        return ()
    words = []
    step = state.escalation_step
    if step is not None and (blocking := _poorly_tolerated_at_or_below(state, step)):
        seen = "; ".join(_poor_words(state, dose) for dose in blocking)
        words.append(
            f"Dose escalation to {_mg_per_kg(step)} mg/kg is not suggested: poorly tolerated "
            f"in this course at {seen}."
        )
    if _esketamine_escalation_due(state) and ESKETAMINE_84 in state.poorly_tolerated:
        words.append(
            "Esketamine escalation to 84 mg is not suggested: poorly tolerated in this course "
            f"at {_poor_words(state, ESKETAMINE_84)}."
        )
    return tuple(words)


def _poor_words(state: CourseState, dose: tuple[Route, Decimal]) -> str:
    """E.g. "0.75 mg/kg IV ketamine (severe dissociation on 2026-02-04)"."""
    sessions = state.poorly_tolerated[dose]
    seen = []
    for s in sessions:
        on = f"{state.day(s.at).isoformat()}{_stopped(s)}"
        if s.dissociation is Intensity.SEVERE:
            seen.append(f"severe dissociation on {on}")
        if s.adverse_event_severity.rank >= _SEVERE_AE_RANK:
            seen.append(f"a {s.adverse_event_severity} adverse event on {on}")
    return f"{_dose_words(sessions[0])} {_route(dose[0])} ({', '.join(seen)})"
