"""The day sheet (SPEC §7): a day's appointments in time order, each with what the clinician
needs before the patient sits down, the flags nobody has decided across the clinic, and the
courses with nothing booked. A fixed number of queries, whatever the rows and the history."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from assessments.models import Assessment
from clinic.models import Appointment
from clinic.plans import courses_without_future_appointment, day_bounds, due_class, due_of
from clinical.vocab import FlagSeverity
from courses.evaluation import flags_with_decisions
from courses.models import Course, FlagDecision, TreatmentSession
from patients.models import WeightRecord
from rems.filling import DUE_DAYS, forms_queryset

SCORES_OVERDUE = "SCORES_OVERDUE"  # the engine's flag asking for scores (SPEC §3 r2)
UNDECIDED_SHOWN = 50  # rows of undecided flags on the day sheet; the rest are counted
UNBOOKED_SHOWN = 10  # courses with nothing booked, on the day sheet; the list page has all
SEVERITY_RANK = {str(severity): severity.rank for severity in FlagSeverity}


def rems_forms_due(courses: list[Course], today: date) -> tuple[dict[int, list], dict]:
    """REMS monitoring forms not submitted (SPEC §8): per course id of ``courses``, each as its
    badge's text (due or overdue, with the due day); and the clinic's counts of forms due and
    overdue. One query whatever the rows."""
    found, counts = defaultdict(list), {"due": 0, "overdue": 0}
    ids = {course.pk for course in courses}
    for course_id, at in (
        forms_queryset().filter(rems_submission__isnull=True).values_list("course_id",
                                                                           "started_at")
    ):
        due = timezone.localdate(at) + timedelta(days=DUE_DAYS)
        state = "overdue" if due < today else "due"
        counts[state] += 1
        if course_id in ids:
            found[course_id].append(f"REMS {state} {due:%-d %b}")
    return found, counts


def open_flags(evaluation: dict | None, decisions: list[FlagDecision]) -> list[dict]:
    """The flags raised now that no decision answers (critical first, as the engine sorts)."""
    flags = flags_with_decisions(evaluation or {}, decisions)
    return [flag for flag in flags if not flag["quiet"]]


def scores_due(course: Course) -> bool:
    """Scores are due when the engine asks for them (SCORES_OVERDUE), or no MADRS or PHQ-9
    was given on or after the day of the second-to-last session (none at all with fewer than
    two sessions)."""
    codes = {flag["code"] for flag in (course.evaluation or {}).get("flags", [])}
    if SCORES_OVERDUE in codes:
        return True
    last_scored = course.last_scored_at
    if course.second_last_session_at is None:
        return last_scored is None
    return last_scored is None or (
        timezone.localdate(last_scored) < timezone.localdate(course.second_last_session_at)
    )


def _with_row_facts(courses):
    """The facts a row shows, annotated in the same query: the weight on record and its day,
    the last score's time and the second-to-last session's time."""
    weight = WeightRecord.objects.filter(patient=OuterRef("patient")).order_by("-measured_on")
    sessions = TreatmentSession.objects.current().filter(course=OuterRef("pk")).order_by(
        "-started_at")
    scored = Assessment.objects.filter(course=OuterRef("pk")).order_by().values("course")
    return courses.annotate(
        weight_kg=Subquery(weight.values("weight_kg")[:1]),
        weight_on=Subquery(weight.values("measured_on")[:1]),
        second_last_session_at=Subquery(sessions.values("started_at")[1:2]),
        last_scored_at=Subquery(scored.annotate(last=Max("administered_at")).values("last")[:1]),
    )


@dataclass(frozen=True)
class Undecided:
    """A flag no decision answers, on a course not ended."""

    course_id: int
    last_name: str
    first_name: str
    flag: dict

    @property
    def is_info(self) -> bool:
        """Info flags are suggestions: the day sheet folds them away."""
        return self.flag["severity"] == FlagSeverity.INFO


@dataclass
class Row:
    appointment: Appointment
    course: Course
    flags: list[dict]
    scores_due: bool
    weight_age_days: int | None
    rems_due: list = field(default_factory=list)

    @property
    def critical(self) -> bool:
        return any(f["severity"] == FlagSeverity.CRITICAL for f in self.flags)


def day_sheet(day: date, now: datetime) -> dict:
    """Everything the day sheet shows for ``day`` (read at ``now``)."""
    today = timezone.localdate(now)
    start, end = day_bounds(day)
    appointments = list(
        Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("course__patient", "session")
        .order_by("starts_at", "id")
    )
    # The day's courses with their row facts, and every course not ended with its flags: the
    # undecided flags of the clinic, in one query.
    day_ids = {a.course_id for a in appointments}
    courses = {
        c.pk: c for c in _with_row_facts(
            Course.objects.filter(pk__in=day_ids).select_related("patient")
        )
    } if day_ids else {}
    # Every other course not ended, for the clinic's undecided flags: only the flags of its
    # stored evaluation are read, not the whole evaluation.
    others = list(
        Course.objects.active().exclude(pk__in=day_ids)
        .values_list("pk", "patient__last_name", "patient__first_name", "evaluation__flags")
    )
    decisions = defaultdict(list)
    for decision in (
        FlagDecision.objects.filter(course__in=[*day_ids, *(row[0] for row in others)])
        .order_by("decided_at", "id").only("course_id", "code", "flag_message")
    ):
        decisions[decision.course_id].append(decision)
    rems, rems_counts = rems_forms_due(list(courses.values()), today)
    rows = []
    for appointment in appointments:
        course = courses[appointment.course_id]
        appointment.course = course
        weight_age = (today - course.weight_on).days if course.weight_on else None
        rows.append(Row(appointment, course, open_flags(course.evaluation, decisions[course.pk]),
                        scores_due(course), weight_age, rems.get(course.pk, [])))
    # Sorted as plain tuples (critical first, then by name): a clinic has thousands of flags
    # not decided; only the first UNDECIDED_SHOWN become rows.
    found = [
        (course.pk, course.patient.last_name, course.patient.first_name, course.evaluation)
        for course in courses.values() if course.is_active
    ] + [(pk, last, first, {"flags": flags or []}) for pk, last, first, flags in others]
    undecided = sorted(
        (SEVERITY_RANK.get(flag["severity"], 9), last, first, pk, index, flag)
        for pk, last, first, evaluation in found
        for index, flag in enumerate(open_flags(evaluation, decisions[pk]))
    )
    unbooked_all = courses_without_future_appointment(day_bounds(today)[0])
    unbooked = list(unbooked_all[:UNBOOKED_SHOWN])
    for course in unbooked:
        course.due = due_of(course, today)
        course.due_class = due_class(course.due)
    return {
        "day": day,
        "today": today,
        "rows": rows,
        "rems_shown": any(row.rems_due for row in rows),
        "booked": sum(1 for row in rows if row.appointment.is_booked),
        "undecided": [Undecided(pk, last, first, flag)
                      for _, last, first, pk, _, flag in undecided[:UNDECIDED_SHOWN]],
        "undecided_more": max(0, len(undecided) - UNDECIDED_SHOWN),
        "unbooked": unbooked,
        "unbooked_count": unbooked_all.count(),
        "rems_counts": rems_counts,
    }
