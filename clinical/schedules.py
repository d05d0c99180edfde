"""Treatment schedules of SPEC §7: when the next session of a plan is due, and when it is late.

Pure Python (no Django). A schedule is a list of steps; each step is a number of sessions
(a range, or open-ended) at an interval in days (a range: "2–3 a week" is every 2 to 4 days).
The clinic's defaults make the steps (see ``clinic.models.ClinicSettings``); a course's plan
keeps a copy of them, so changing a default later does not rewrite a plan already made.

Reading of "due" (product default, SPEC §7 "overdue is past the plan's interval"):

- the next session is due from the last session's day plus the step's shortest interval;
- it is overdue after the last session's day plus the step's longest interval; when the
  sessions done reach the step's smallest count (the guidance's "if stable" spacing, e.g.
  "every 2 weeks × 4–8"), the longest interval is that of the next step, since the
  clinician may space out from there;
- with no session on the plan yet, the first is due on the plan's first day;
- after the last session of a finite schedule the plan is complete: nothing is due.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from clinical.vocab import Phase


class Schedule(StrEnum):
    KETAMINE_INDUCTION = "ketamine_induction"
    ESKETAMINE = "esketamine"
    GRADUAL_SPACING = "gradual_spacing"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Schedule.KETAMINE_INDUCTION: "IV/IM induction",
    Schedule.ESKETAMINE: "Esketamine",
    Schedule.GRADUAL_SPACING: "Maintenance, gradual spacing",
}


def suits(schedule: str, phase: str) -> bool:
    """Whether a plan's schedule fits the course's phase. An IV/IM induction schedule stops at
    its six sessions, so a course moved to maintenance on it has no next session by the plan
    (spaced maintenance, 001: gradual spacing). The esketamine schedule runs into its own
    weekly or fortnightly maintenance and fits every phase."""
    return not (phase == Phase.MAINTENANCE and schedule == Schedule.KETAMINE_INDUCTION)


@dataclass(frozen=True)
class Step:
    label: str
    sessions_min: int | None  # None: open-ended (as many as the clinician gives)
    sessions_max: int | None
    interval_min_days: int
    interval_max_days: int

    def to_json(self) -> list:
        return [self.label, self.sessions_min, self.sessions_max, self.interval_min_days,
                self.interval_max_days]

    @classmethod
    def from_json(cls, data: list) -> "Step":
        label, smin, smax, imin, imax = data
        return cls(str(label), smin, smax, int(imin), int(imax))


def per_week_interval(per_week_min: int, per_week_max: int) -> tuple[int, int]:
    """"2–3 a week" is every 2 to 4 days: 7 // 3 and 7 / 2 rounded up."""
    return max(1, 7 // per_week_max), -(-7 // per_week_min)


@dataclass(frozen=True)
class Defaults:
    """The clinic's editable defaults (SPEC §7), each with the guidance's value."""

    # IV/IM induction: 6 sessions over 2–3 weeks, 2–3 a week (001 titration table, 000).
    induction_sessions: int = 6
    induction_per_week_min: int = 2
    induction_per_week_max: int = 3
    # Intranasal esketamine: twice weekly weeks 1–4, weekly weeks 5–8, then weekly or every
    # 2 weeks (001 esketamine table).
    esketamine_induction_weeks: int = 4
    esketamine_induction_per_week: int = 2
    esketamine_weekly_weeks: int = 4
    esketamine_later_min_weeks: int = 1
    esketamine_later_max_weeks: int = 2
    # Maintenance by gradual spacing: weekly × 4, every 2 weeks × 4–8, every 3 weeks × 4,
    # monthly × 3–6 (001 "gradual spacing protocol").
    spacing_weekly_sessions: int = 4
    spacing_biweekly_min: int = 4
    spacing_biweekly_max: int = 8
    spacing_triweekly_sessions: int = 4
    spacing_monthly_min: int = 3
    spacing_monthly_max: int = 6
    spacing_month_days: int = 28

    def steps(self, schedule: Schedule) -> list[Step]:
        if schedule == Schedule.KETAMINE_INDUCTION:
            low, high = per_week_interval(self.induction_per_week_min,
                                          self.induction_per_week_max)
            n = self.induction_sessions
            return [Step(f"{self.induction_per_week_min}–{self.induction_per_week_max} a week",
                         n, n, low, high)]
        if schedule == Schedule.ESKETAMINE:
            per_week = self.esketamine_induction_per_week
            low, high = per_week_interval(per_week, per_week)
            first = self.esketamine_induction_weeks * per_week
            weekly = self.esketamine_weekly_weeks
            return [
                Step(f"{_times(per_week)} weekly, weeks 1–{self.esketamine_induction_weeks}",
                     first, first, low, high),
                Step(f"weekly, weeks {self.esketamine_induction_weeks + 1}–"
                     f"{self.esketamine_induction_weeks + weekly}", weekly, weekly, 7, 7),
                Step(_every_weeks(self.esketamine_later_min_weeks,
                                  self.esketamine_later_max_weeks),
                     None, None, 7 * self.esketamine_later_min_weeks,
                     7 * self.esketamine_later_max_weeks),
            ]
        month = self.spacing_month_days
        return [
            Step("weekly", self.spacing_weekly_sessions, self.spacing_weekly_sessions, 7, 7),
            Step("every 2 weeks", self.spacing_biweekly_min, self.spacing_biweekly_max, 14, 14),
            Step("every 3 weeks", self.spacing_triweekly_sessions,
                 self.spacing_triweekly_sessions, 21, 21),
            Step("monthly", self.spacing_monthly_min, self.spacing_monthly_max, month, month),
        ]


def _times(n: int) -> str:
    return {1: "once", 2: "twice", 3: "three times"}.get(n, f"{n} times")


def _every_weeks(low: int, high: int) -> str:
    def every(n: int) -> str:
        return "weekly" if n == 1 else f"every {n} weeks"
    return every(low) if low == high else f"{every(low)} or {every(high)}"


def describe(steps: list[Step]) -> str:
    """The schedule in a clinician's words: "weekly × 4, every 2 weeks × 4–8, …"."""
    parts = []
    for step in steps:
        if step.sessions_max is None:
            parts.append(f"then {step.label}")
        elif step.sessions_min == step.sessions_max:
            parts.append(f"{step.label} × {step.sessions_max}")
        else:
            parts.append(f"{step.label} × {step.sessions_min}–{step.sessions_max}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Position:
    """Where a plan stands after ``done`` sessions."""

    step: Step | None  # the step the next session belongs to; None: the plan is complete
    index: int  # its index (len(steps) when complete)
    done_in_step: int  # sessions already given in that step
    remaining_in_step: int | None  # up to its largest count; None: open-ended
    longest_interval: int  # days after which the next session is overdue


def position(steps: list[Step], done: int) -> Position:
    left = done
    for index, step in enumerate(steps):
        if step.sessions_max is None or left < step.sessions_max:
            following = steps[index + 1] if index + 1 < len(steps) else None
            may_space = (following is not None and step.sessions_min is not None
                         and left >= step.sessions_min)
            longest = max(step.interval_max_days,
                          following.interval_max_days if may_space else 0)
            remaining = None if step.sessions_max is None else step.sessions_max - left
            return Position(step, index, left, remaining, longest)
        left -= step.sessions_max
    return Position(None, len(steps), 0, 0, 0)


class Due(StrEnum):
    NOT_YET = "not_yet"
    DUE = "due"
    OVERDUE = "overdue"
    COMPLETE = "complete"


@dataclass(frozen=True)
class DueState:
    state: Due
    due_on: date | None  # the first day the next session is due
    overdue_after: date | None  # the last day before it is overdue
    days_overdue: int = 0
    # Overdue by a whole interval or more: shown as danger, not only a warning.
    badly_overdue: bool = False
    step: Step | None = None


def due_state(steps: list[Step], starts_on: date, done: int, last_day: date | None,
              today: date) -> DueState:
    """When the next session of a plan is due, from the number of its sessions so far and
    the day of the last."""
    where = position(steps, done)
    if where.step is None:
        return DueState(Due.COMPLETE, None, None)
    if last_day is not None:
        last = last_day
        due_on = last + timedelta(days=where.step.interval_min_days)
        overdue_after = last + timedelta(days=where.longest_interval)
    else:
        due_on = starts_on
        overdue_after = starts_on + timedelta(days=where.longest_interval)
    if today < due_on:
        return DueState(Due.NOT_YET, due_on, overdue_after, step=where.step)
    if today <= overdue_after:
        return DueState(Due.DUE, due_on, overdue_after, step=where.step)
    late = (today - overdue_after).days
    return DueState(Due.OVERDUE, due_on, overdue_after, late,
                    badly_overdue=late >= max(1, where.longest_interval), step=where.step)


def next_open_day(day: date, weekends: bool) -> date:
    while not weekends and day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def proposed_days(steps: list[Step], starts_on: date, given: list[date], earliest: date,
                  count: int, weekends: bool = False) -> list[date]:
    """The days of the next ``count`` sessions by the plan, after the sessions ``given`` (done
    or already booked), each at the step's shortest interval and never before ``earliest``
    (today, or tomorrow when today's hours are past); weekend days move to Monday unless the
    clinic books weekends. Fewer days when the plan ends first."""
    days: list[date] = []
    sequence = sorted(given)
    for _ in range(count):
        where = position(steps, len(sequence))
        if where.step is None:
            break
        day = sequence[-1] + timedelta(days=where.step.interval_min_days) if sequence \
            else starts_on
        day = next_open_day(max(day, earliest), weekends)
        days.append(day)
        sequence.append(day)
    return days
