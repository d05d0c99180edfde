"""The day sheet (SPEC §7): a day's appointments in time order, each with what the clinician
needs before the patient sits down, the flags nobody has decided across the clinic, and the
courses with nothing booked. A fixed number of queries, whatever the rows and the history."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import F, Func, IntegerField, Max, OuterRef, Subquery
from django.utils import timezone
from django.utils.text import Truncator

from assessments.models import Assessment
from clinic.models import Appointment
from clinic.plans import day_bounds, first_unbooked
from clinical.vocab import FlagSeverity, Phase, Route, choices
from courses.evaluation import flags_with_decisions
from courses.models import Course, FlagDecision, TreatmentSession
from courses.templatetags.clinical import flag_label, severity_class, status_class, status_label
from ketacare.paths import path_maker
from patients.models import WeightRecord
from rems.filling import DUE_DAYS, form_sessions

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
        form_sessions().filter(rems_submission__isnull=True).values_list("course_id",
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


def _row_facts(patient: OuterRef, course: OuterRef) -> dict:
    """The facts a row shows, as annotations of the same query: the weight on record and its
    day, the last score's time and the second-to-last session's time, of the course
    ``course`` of the patient ``patient`` (references to the outer query's columns)."""
    weight = WeightRecord.objects.filter(patient=patient).order_by("-measured_on")
    sessions = TreatmentSession.objects.current().filter(course=course).order_by("-started_at")
    scored = Assessment.objects.filter(course=course).order_by().values("course")
    return {
        "weight_kg": Subquery(weight.values("weight_kg")[:1]),
        "weight_on": Subquery(weight.values("measured_on")[:1]),
        "second_last_session_at": Subquery(sessions.values("started_at")[1:2]),
        "last_scored_at": Subquery(scored.annotate(last=Max("administered_at"))
                                   .values("last")[:1]),
    }


ROW_FACTS = ("weight_kg", "weight_on", "second_last_session_at", "last_scored_at")


@dataclass(frozen=True)
class Undecided:
    """A flag no decision answers, on a course not ended, with what its row shows."""

    course_id: int
    last_name: str
    first_name: str
    flag: dict
    url: str = ""

    @property
    def is_info(self) -> bool:
        """Info flags are suggestions: the day sheet folds them away."""
        return self.flag["severity"] == FlagSeverity.INFO


UNDECIDED_COLUMNS = ("pk", "patient__last_name", "patient__first_name", "evaluation__flags")


def courses_with_undecided_flags():
    """Courses not ended with a flag no decision answers, the most severe first, then the
    latest changed (evaluated) first: read from the columns refresh_evaluation keeps, in the
    order of a small partial index, never from every evaluation."""
    return (Course.objects.active().filter(open_flag_rank__isnull=False)
            .order_by("open_flag_rank", "-evaluated_at", "-pk"))


def first_undecided(limit: int) -> tuple[list, int]:
    """The first ``limit`` courses with undecided flags as UNDECIDED_COLUMNS, and how many
    undecided flags the clinic has in all, in one query: the rows in the order of the
    partial index, the total a subquery over the index's counts, run once."""
    total = courses_with_undecided_flags().order_by().annotate(
        total=Func(F("open_flags"), function="SUM", output_field=IntegerField())
    ).values("total")
    rows = list(courses_with_undecided_flags().annotate(total=Subquery(total))
                .values_list(*UNDECIDED_COLUMNS, "total")[:limit])
    return [row[:-1] for row in rows], (rows[0][-1] or 0 if rows else 0)


def decisions_of(course_ids) -> dict[int, list[FlagDecision]]:
    """The flag decisions of these courses, oldest first, per course id (one query)."""
    decisions = defaultdict(list)
    for decision in (
        FlagDecision.objects.filter(course__in=list(course_ids))
        .order_by("decided_at", "id").only("course_id", "code", "flag_message")
    ):
        decisions[decision.course_id].append(decision)
    return decisions


def undecided_flags(found, decisions) -> list[Undecided]:
    """The undecided flags of courses read as UNDECIDED_COLUMNS, in the order given
    (courses_with_undecided_flags): critical first, then each course in that order. The
    first N courses hold the first N flags, as each has one at its course's rank. Each
    with what its row shows worked out (no lookups while rendering)."""
    ordered = sorted(
        (SEVERITY_RANK.get(flag["severity"], 9), place, index, pk, last, first, flag)
        for place, (pk, last, first, flags) in enumerate(found)
        for index, flag in enumerate(open_flags({"flags": flags or []}, decisions[pk]))
    )
    course_path = path_maker("courses:detail")
    return [Undecided(pk, last, first, _shown(flag), course_path(pk))
            for *_, pk, last, first, flag in ordered]


def _shown(flag: dict) -> dict:
    """A flag with its label, its badge's colour and its message cut to a line."""
    return {**flag, "label": flag_label(flag["code"]),
            "css": severity_class(flag["severity"]),
            "short": Truncator(flag["message"]).chars(75)}


@dataclass
class Row:
    """An appointment of the day, with what its row shows worked out (no lookups while
    rendering)."""

    appointment: Appointment
    course: Course
    flags: list[dict]
    scores_due: bool
    weight_age_days: int | None
    rems_due: list = field(default_factory=list)
    route: str = ""
    phase: str = ""
    status: str = ""
    status_class: str = ""
    links: dict = field(default_factory=dict)

    @property
    def critical(self) -> bool:
        return any(f["severity"] == FlagSeverity.CRITICAL for f in self.flags)


ROUTES = dict(choices(Route))
PHASES = dict(choices(Phase))


def day_appointments(start: datetime, end: datetime) -> list[Appointment]:
    """The day's appointments in time order, each with its course and patient and the
    course's row facts (on the course), in one query."""
    appointments = list(
        Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("course__patient")
        .annotate(**_row_facts(OuterRef("course__patient"), OuterRef("course")))
        .order_by("starts_at", "id")
    )
    for appointment in appointments:
        for name in ROW_FACTS:
            setattr(appointment.course, name, getattr(appointment, name))
    return appointments


def _links(instruments) -> callable:
    """The links of a row: the course, logging its session, its session once done, scoring
    each instrument; one reverse() per name for the whole sheet."""
    course, log = path_maker("courses:detail"), path_maker("courses:session-new")
    session, score = path_maker("courses:session-detail"), path_maker("assessments:new", 2)

    def links(appointment: Appointment) -> dict:
        pk = appointment.course_id
        return {
            "course": course(pk), "log": f"{log(pk)}?appointment={appointment.pk}",
            "session": session(appointment.session_id) if appointment.session_id else "",
            "scores": [(definition.name, score(pk, definition.code))
                       for definition in instruments],
        }

    return links


def day_sheet(day: date, now: datetime, instruments=()) -> dict:
    """Everything the day sheet shows for ``day`` (read at ``now``): eight queries whatever
    the rows and the history."""
    today = timezone.localdate(now)
    start, end = day_bounds(day)
    appointments = day_appointments(start, end)
    # The clinic's undecided flags, critical first then the latest changed: only the flags
    # of the first UNDECIDED_SHOWN courses are read, never every course's evaluation.
    found, undecided_count = first_undecided(UNDECIDED_SHOWN)
    day_ids = {a.course_id for a in appointments}
    decisions = decisions_of([*day_ids, *(row[0] for row in found)])
    rems, rems_counts = rems_forms_due([a.course for a in appointments], today)
    links = _links(instruments)
    rows = []
    for appointment in appointments:
        course = appointment.course
        weight_age = (today - course.weight_on).days if course.weight_on else None
        status = (course.evaluation or {}).get("status")
        rows.append(Row(
            appointment, course,
            [_shown(flag) for flag in open_flags(course.evaluation, decisions[course.pk])],
            scores_due(course), weight_age, rems.get(course.pk, []),
            route=ROUTES.get(appointment.route, appointment.route),
            phase=PHASES.get(course.phase, course.phase),
            status=status_label(status) if status else "", status_class=status_class(status),
            links=links(appointment),
        ))
    undecided = undecided_flags(found, decisions)[:UNDECIDED_SHOWN]
    # Courses with nothing booked: the first few, with their plan progress, and how many in
    # all (a subquery run once), in one query.
    unbooked, unbooked_count = first_unbooked(day_bounds(today)[0], UNBOOKED_SHOWN, today)
    # Self-report emails that could not be sent after every retry (SPEC §9): invitations and
    # question-9 alerts, each until a clinician acts on its course.
    from selfreport.queries import failed_emails

    return {
        "self_report_failed": failed_emails(UNDECIDED_SHOWN),
        "day": day,
        "today": today,
        "rows": rows,
        "rems_shown": any(row.rems_due for row in rows),
        "booked": sum(1 for row in rows if row.appointment.is_booked),
        "undecided": undecided,
        "undecided_more": max(0, undecided_count - len(undecided)),
        "unbooked": unbooked,
        "unbooked_count": unbooked_count,
        "rems_counts": rems_counts,
    }
