"""The outcome dashboard's numbers (seed 000, takeaway 10: "track your optimization outcomes").

Courses started in a period are counted in SQL, grouped by the columns refresh_evaluation keeps
on Course (status, main route, highest dose, response day), so the page costs the same few
queries for ten courses or ten thousand. Nothing here names a patient: only counts leave.

A **responder** is a course whose status, as last evaluated, is response or remission; a
**remitter** one in remission. Rates are of the courses with a status (insufficient data, such as
no baseline or no score after the first session, is left out of the denominator and shown
apart), and a group with fewer than MIN_GROUP such courses is "too few to compare".
"""

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from functools import cached_property

from django.db import models
from django.utils.safestring import SafeString, mark_safe

from clinical.engine import OPTIMIZATION_STRATEGIES, FlagCode, round_half_away
from clinical.vocab import Route, Status
from courses.models import ActionTaken, Course, Decision, FlagDecision
from ketacare.prepared import literal, together
from ketacare.rows import escape

MIN_GROUP = 5
RESPONDING = [Status.RESPONSE, Status.REMISSION]


# -- groups ---------------------------------------------------------------------------------------


class DoseBand(models.TextChoices):
    """The highest dose reached on the course's main route, in that route's own unit."""

    IV_IM_LOW = "iv_im_low", "IV/IM under 0.5 mg/kg"
    IV_IM_STANDARD = "iv_im_standard", "IV/IM 0.5 mg/kg"
    IV_IM_ESCALATED = "iv_im_escalated", "IV/IM over 0.5 to 0.75 mg/kg"
    IV_IM_HIGH = "iv_im_high", "IV/IM over 0.75 to 1.0 mg/kg"
    INTRANASAL_28 = "intranasal_28", "Intranasal esketamine 28 mg"
    INTRANASAL_56 = "intranasal_56", "Intranasal esketamine 56 mg"
    INTRANASAL_84 = "intranasal_84", "Intranasal esketamine 84 mg"
    ORAL_LOW = "oral_low", "Sublingual/oral up to 100 mg"
    ORAL_MID = "oral_mid", "Sublingual/oral over 100 to 200 mg"
    ORAL_HIGH = "oral_high", "Sublingual/oral over 200 mg"
    NOT_RECORDED = "not_recorded", "Dose not recorded"
    NO_SESSION = "no_session", "No completed session"


def dose_band(route: str, mg_per_kg: Decimal | None, mg: Decimal | None) -> DoseBand:
    """IV and IM on the SPEC §2 limits and ladder (adequate from 0.5 mg/kg, the ladder
    0.5 → 0.6 → 0.75 → 1.0, enhanced monitoring above 0.75, nothing above 1.0); intranasal on its
    three doses; sublingual and oral on product-default bands (the SPEC sets none)."""
    if not route:
        return DoseBand.NO_SESSION
    if Route(route).weight_based:
        if mg_per_kg is None:
            return DoseBand.NOT_RECORDED
        if mg_per_kg < Decimal("0.5"):
            return DoseBand.IV_IM_LOW
        if mg_per_kg == Decimal("0.5"):
            return DoseBand.IV_IM_STANDARD
        if mg_per_kg <= Decimal("0.75"):
            return DoseBand.IV_IM_ESCALATED
        return DoseBand.IV_IM_HIGH
    if mg is None:
        return DoseBand.NOT_RECORDED
    if route == Route.INTRANASAL:
        if mg < 56:
            return DoseBand.INTRANASAL_28
        return DoseBand.INTRANASAL_56 if mg < 84 else DoseBand.INTRANASAL_84
    if mg <= 100:
        return DoseBand.ORAL_LOW
    return DoseBand.ORAL_MID if mg <= 200 else DoseBand.ORAL_HIGH


class Tried(models.TextChoices):
    """An optimization tried on a course: a flag the clinician accepted, with what was done."""

    BENZODIAZEPINE_TAPER = "benzodiazepine_taper", "Benzodiazepine held or tapered"
    ESCALATION = "escalation", "Dose escalation"
    ROUTE_SWITCH = "route_switch", "Route switch"
    EXTENSION = "extension", "Extended induction"
    AUGMENTATION = "augmentation", "Lithium augmentation"
    OTHER = "other", "Other change"  # infusion rate, frequency, lower dose, ...
    NONE = "none", "None tried (no optimization recorded)"


# The first that holds for an accepted decision: (group, flag codes or None for any flag, action
# categories). The flag names the strategy and the action category says it was carried out; a
# route change counts as a route switch whatever flag it answered. Accepting a review, a plan or
# a check (TRD_NOT_VERIFIED, MAINTENANCE_PLAN, ...) or recording only a referral, monitoring or
# "other" is not a change of treatment.
TRIED_RULES: list[tuple[Tried, list[str] | None, list[str]]] = [
    (Tried.ROUTE_SWITCH, None, [ActionTaken.ROUTE_CHANGE]),
    (Tried.BENZODIAZEPINE_TAPER, [FlagCode.BENZODIAZEPINE, FlagCode.BENZODIAZEPINE_TAKEN],
     [ActionTaken.MEDICATION_CHANGE]),
    (Tried.ESCALATION, [FlagCode.DOSE_ESCALATION, FlagCode.ESKETAMINE_ESCALATION],
     [ActionTaken.DOSE_CHANGE]),
    (Tried.EXTENSION, [FlagCode.EXTEND_INDUCTION], [ActionTaken.SCHEDULE_CHANGE]),
    (Tried.AUGMENTATION, [FlagCode.LITHIUM_AUGMENTATION], [ActionTaken.MEDICATION_CHANGE]),
    (Tried.OTHER, sorted(OPTIMIZATION_STRATEGIES),  # the engine's list (SPEC §3)
     [ActionTaken.DOSE_CHANGE, ActionTaken.INFUSION_RATE, ActionTaken.MEDICATION_CHANGE,
      ActionTaken.SCHEDULE_CHANGE]),
]


# -- the SQL ------------------------------------------------------------------------------------
# Three statements, built once at import; only the period is a parameter. Plain SQL rather than
# querysets: the page must cost little more than a bare page (its benchmark: p95 within 3× of
# one, over 8,000 courses), and building and compiling these querysets cost as much as running
# them. Each reads covering indexes only (see Course.Meta.indexes and FlagDecision's).


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(literal(str(value)) for value in values)})"


COURSES = Course._meta.db_table
PERIOD = "started_on >= %s AND started_on <= %s"

# 1. Courses by status, main route and highest dose: a few hundred rows whatever the number of
# courses, from which the status counts, the totals and the route and dose groups are summed.
GROUPED_SQL = (
    "SELECT status, main_route, highest_dose_mg_per_kg, highest_dose_mg, optimized, COUNT(*) "
    f"FROM {COURSES} WHERE {PERIOD} "
    "GROUP BY status, main_route, highest_dose_mg_per_kg, highest_dose_mg, optimized"
)

# 3. Days and sessions to response, as counts of each (route, days, sessions): medians are not a
# portable SQL aggregate, and these rows are few whatever the number of courses.
RESPONDED_SQL = (
    "SELECT main_route, days_to_response, sessions_to_response, COUNT(*) "
    f"FROM {COURSES} WHERE days_to_response IS NOT NULL AND {PERIOD} "
    "GROUP BY main_route, days_to_response, sessions_to_response"
)


def _tried_sql() -> str:
    """2. By optimization tried: each group's courses, each counted once however many
    decisions it has. ("None tried" is not here: it is the courses with no optimization
    recorded, counted by the first statement.)"""
    whens = []
    for group, codes, actions in TRIED_RULES:
        conditions = [_in("d.action", actions)]
        if codes is not None:
            conditions.append(_in("d.code", codes))
        whens.append(f"WHEN {' AND '.join(conditions)} THEN {literal(group)}")
    counts = ", ".join([
        "COUNT(DISTINCT course_id)",
        f"COUNT(DISTINCT CASE WHEN status <> {literal(Status.INSUFFICIENT_DATA)} "
        "THEN course_id END)",
        f"COUNT(DISTINCT CASE WHEN {_in('status', RESPONDING)} THEN course_id END)",
        f"COUNT(DISTINCT CASE WHEN status = {literal(Status.REMISSION)} THEN course_id END)",
    ])
    return (
        "WITH decided AS ("
        f"SELECT d.course_id, c.status, CASE {' '.join(whens)} END AS tried "
        f"FROM {FlagDecision._meta.db_table} d INNER JOIN {COURSES} c ON c.id = d.course_id "
        f"WHERE d.decision = {literal(Decision.ACCEPTED)} "
        "AND c.started_on >= %s AND c.started_on <= %s) "
        f"SELECT tried, {counts} FROM decided WHERE tried IS NOT NULL GROUP BY tried"
    )


TRIED_SQL = _tried_sql()


def _decimal(value) -> Decimal | None:
    """SQLite hands a decimal column back as a float or an int; PostgreSQL as a Decimal."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


# -- results --------------------------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    return f"{round_half_away(Fraction(part * 100, whole), 0)} %"


@dataclass
class Row:
    key: str
    label: str
    courses: int = 0
    evaluable: int = 0  # with a status other than insufficient data: the rates' denominator
    responders: int = 0
    remitters: int = 0

    def add(self, status: str, n: int) -> None:
        self.courses += n
        if status != Status.INSUFFICIENT_DATA:
            self.evaluable += n
        if status in RESPONDING:
            self.responders += n
        if status == Status.REMISSION:
            self.remitters += n

    @property
    def insufficient(self) -> int:
        return self.courses - self.evaluable

    @property
    def too_few(self) -> bool:
        return self.evaluable < MIN_GROUP

    def rate(self, count: int) -> Fraction | None:
        return None if self.too_few else Fraction(count, self.evaluable)

    @property
    def response_rate(self) -> Fraction | None:
        return self.rate(self.responders)

    @property
    def remission_rate(self) -> Fraction | None:
        return self.rate(self.remitters)

    def _words(self, count: int) -> str:
        if self.too_few:
            return f"{count} of {self.evaluable}: too few to compare"
        return f"{count} of {self.evaluable} ({percent(count, self.evaluable)})"

    # Read by the template once the counts are final.
    @cached_property
    def response_words(self) -> str:
        return self._words(self.responders)

    @cached_property
    def remission_words(self) -> str:
        return self._words(self.remitters)

    @property
    def html(self) -> SafeString:
        """The row's ``<tr>`` in ``outcomes/_rates.html``: written here, each text escaped (the
        template's lookups in every cell cost more than counting)."""
        line = ' class="text-body-secondary"' if self.too_few else ""
        return mark_safe(
            f"\n    <tr{line}>\n"
            f'      <th scope="row" class="fw-normal">{escape(self.label)}</th>\n'
            f'      <td class="text-end">{self.courses}</td>\n'
            f'      <td class="text-end">{self.insufficient}</td>\n'
            f"      <td>{escape(self.response_words)}</td>\n"
            f"      <td>{escape(self.remission_words)}</td>\n"
            "    </tr>\n  ")


COUNT_NAMES = ("courses", "evaluable", "responders", "remitters")


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range of some whole numbers, or too few to say."""

    n: int
    median: float | None = None
    q1: float | None = None
    q3: float | None = None

    @classmethod
    def of(cls, values: list[int]) -> "Spread":
        if len(values) < MIN_GROUP:
            return cls(len(values))
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(len(values), median, q1, q3)

    @property
    def too_few(self) -> bool:
        return self.median is None

    @property
    def words(self) -> str:
        """E.g. "median 12 (8 to 15.5)"."""
        if self.too_few:
            return "too few to compare"
        median, q1, q3 = (plain_number(v) for v in (self.median, self.q1, self.q3))
        return f"median {median} ({q1} to {q3})"


def plain_number(number: float) -> str:
    """12, 12.5: one decimal at most, no trailing zeros."""
    return f"{round(number, 1):g}"


@dataclass(frozen=True)
class TimeToResponse:
    key: str
    label: str
    days: Spread
    sessions: Spread


@dataclass(frozen=True)
class Outcomes:
    start: date
    end: date
    total: Row
    statuses: list[tuple[Status, int]]
    by_route: list[Row]
    by_dose: list[Row]
    by_tried: list[Row]
    time_to_response: list[TimeToResponse]  # all routes first, then each main route


ROUTES = [(str(route), route.label) for route in Route] + [("", "No completed session")]


def _rows(choices: Iterable[tuple[str, str]]) -> dict[str, Row]:
    return {key: Row(key, label) for key, label in choices}


def _non_empty(rows: dict[str, Row]) -> list[Row]:
    return [row for row in rows.values() if row.courses]


def outcomes(start: date, end: date) -> Outcomes:
    """Three queries, whatever the number of courses (in one round trip on PostgreSQL)."""
    period = [start, end]
    grouped, tried_rows, responded = together(
        (GROUPED_SQL, period), (TRIED_SQL, period), (RESPONDED_SQL, period))
    tried = {row[0]: row[1:] for row in tried_rows}

    total = Row("all", "All courses")
    by_status = dict.fromkeys(Status, 0)
    by_route, by_dose = _rows(ROUTES), _rows(DoseBand.choices)
    by_tried = _rows(Tried.choices)
    for status, route, mg_per_kg, mg, optimized, n in grouped:
        by_status[status] += n
        band = dose_band(route, _decimal(mg_per_kg), _decimal(mg))
        for row in (total, by_route[route], by_dose[band]):
            row.add(status, n)
        if not optimized:  # SPEC §3: no optimization recorded, however it would have been
            by_tried[Tried.NONE].add(status, n)

    # A course counts once in each group it is in and may be in several.
    for key, row in by_tried.items():
        if key != Tried.NONE:
            row.courses, row.evaluable, row.responders, row.remitters = tried.get(
                key, (0, 0, 0, 0))

    days: dict[str, list[int]] = {"all": []}
    sessions: dict[str, list[int]] = {"all": []}
    for route, day_count, session_count, n in responded:
        for key in ("all", route):
            days.setdefault(key, []).extend([day_count] * n)
            sessions.setdefault(key, []).extend([session_count] * n)
    time_to_response = [
        TimeToResponse(key, label, Spread.of(days[key]), Spread.of(sessions[key]))
        for key, label in [("all", "All routes"), *ROUTES[:-1]]
        if key in days
    ]
    return Outcomes(
        start, end, total, [(status, by_status[status]) for status in Status],
        _non_empty(by_route), _non_empty(by_dose), list(by_tried.values()), time_to_response,
    )
