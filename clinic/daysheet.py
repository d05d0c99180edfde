"""The day sheet (SPEC §7): a day's appointments in time order, each with what the clinician
needs before the patient sits down, the flags nobody has decided across the clinic, and the
courses with nothing booked. A fixed number of queries, whatever the rows and the history."""

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.db import connection
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.text import Truncator, add_truncation_text, calculate_truncate_chars_length

from assessments.models import Assessment
from clinic.models import Appointment, AppointmentStatus
from clinic.plans import day_bounds, unbooked_page, unbooked_rows
from clinical.vocab import FlagSeverity, Phase, Route, choices
from courses.evaluation import flags_with_decisions
from courses.models import Course, FlagDecision, TreatmentSession
from courses.templatetags.clinical import flag_label, severity_class, status_class, status_label
from ketacare.paths import path_maker
from ketacare.prepared import Prepared, literal, prepared, together
from ketacare.rows import format_row
from patients.models import Patient, WeightRecord
from rems.filling import DUE_DAYS, form_sessions

SCORES_OVERDUE = "SCORES_OVERDUE"  # the engine's flag asking for scores (SPEC §3 r2)
UNDECIDED_SHOWN = 50  # rows of undecided flags on the day sheet; the rest are counted
UNBOOKED_SHOWN = 10  # courses with nothing booked, on the day sheet; the list page has all
SEVERITY_RANK = {str(severity): severity.rank for severity in FlagSeverity}


def rems_forms_due(rows, ids: set[int], today: date) -> tuple[dict[int, list], dict]:
    """REMS monitoring forms not submitted (SPEC §8), from the rows of REMS_OPEN: per course
    id of ``ids``, each as its badge (its text, due or overdue with the due day, and the
    form's own page); and the clinic's counts of forms due and overdue."""
    found, counts = defaultdict(list), {"due": 0, "overdue": 0}
    form_path = path_maker("rems:form")
    for course_id, at, session_id in rows:
        due = timezone.localdate(at) + timedelta(days=DUE_DAYS)
        state = "overdue" if due < today else "due"
        counts[state] += 1
        if course_id in ids:
            found[course_id].append(RemsBadge(f"REMS {state} {due:%-d %b}", state,
                                              form_path(session_id)))
    return found, counts


@dataclass(frozen=True, slots=True)
class RemsBadge:
    text: str
    state: str  # "due" or "overdue"
    url: str  # the form's page


# The REMS forms not submitted, oldest first (compiled once: ketacare.prepared).
REMS_OPEN = Prepared(lambda: form_sessions().filter(rems_submission__isnull=True)
                     .values_list("course_id", "started_at", "pk"))


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
    """A flag no decision answers, on a course not ended, with what its row shows and the
    row itself (templates/clinic/_undecided_rows.html)."""

    course_id: int
    last_name: str
    first_name: str
    flag: dict
    url: str = ""
    html: SafeString = SafeString("")

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


def undecided_page(start: int, limit: int) -> Prepared:
    """Courses ``start`` to ``start + limit`` with undecided flags as UNDECIDED_COLUMNS, in
    the order of the partial index (compiled once: ketacare.prepared)."""
    return prepared(("undecided page", start, limit), lambda: courses_with_undecided_flags()
                    .values_list(*UNDECIDED_COLUMNS)[start:start + limit])


def _counts_sql() -> tuple[str, str, str]:
    courses, appointments = Course._meta.db_table, Appointment._meta.db_table
    ended, booked = literal(Phase.ENDED), literal(AppointmentStatus.BOOKED)
    # The vocabulary's constants are written in (the partial indexes name them); only the
    # time is a parameter.
    undecided = f"FROM {courses} WHERE NOT (phase = {ended}) AND open_flag_rank IS NOT NULL"
    # The courses not ended less those with a booking ahead: a count of the partial index
    # and one of the few appointments ahead, where NOT EXISTS probed the appointments once
    # for each course not ended.
    unbooked = (
        f"SELECT (SELECT COUNT(*) FROM {courses} WHERE NOT (phase = {ended})) - ("
        f"SELECT COUNT(DISTINCT a.course_id) FROM {appointments} a "
        f"JOIN {courses} c ON c.id = a.course_id "
        f"WHERE NOT (c.phase = {ended}) AND a.status = {booked} AND a.starts_at >= %s)"
    )
    return f"SELECT SUM(open_flags) {undecided}", f"SELECT COUNT(*) {undecided}", unbooked


# Counts of courses_with_undecided_flags (their flags, the courses) and of
# clinic.plans.unbooked_courses, as plain SQL: the ORM compiling an aggregate on every render
# cost more than running it.
UNDECIDED_FLAGS_SQL, UNDECIDED_COURSES_SQL, UNBOOKED_SQL = _counts_sql()
COUNTS_SQL = f"SELECT ({UNDECIDED_FLAGS_SQL}), ({UNBOOKED_SQL})"


def undecided_courses_count() -> tuple[str, list]:
    """How many courses not ended have undecided flags (courses_with_undecided_flags), as a
    statement and its parameters for ketacare.prepared.together; read from the partial index
    alone on a vacuumed table."""
    return UNDECIDED_COURSES_SQL, []


def unbooked_count(since: datetime) -> tuple[str, list]:
    """How many courses not ended have no appointment booked from ``since`` on
    (clinic.plans.unbooked_courses), as a statement and its parameters (as above)."""
    return UNBOOKED_SQL, [connection.ops.adapt_datetimefield_value(since)]


def open_course_counts(since: datetime) -> tuple[str, list]:
    """How many undecided flags the courses not ended hold, and how many courses not ended
    have no appointment booked from ``since`` on (as clinic.plans.unbooked_courses), as one
    statement and its parameters for ketacare.prepared.together. Each count reads a partial
    index alone on a vacuumed table (course_last_session_idx, course_open_flags_idx); one
    pass over the table for both would read every row. Plain SQL: the ORM compiling two
    aggregates on every render cost more than running them."""
    return COUNTS_SQL, [*undecided_courses_count()[1], *unbooked_count(since)[1]]


def page_decisions(start: int, limit: int) -> Prepared:
    """The flag decisions of the courses of :func:`undecided_page`, oldest first, read as
    :class:`Decided` (compiled once: ketacare.prepared)."""
    def build():
        page = courses_with_undecided_flags()[start:start + limit]
        return (FlagDecision.objects.filter(course__in=page.values("pk"))
                .order_by("decided_at", "id").values_list("course_id", "code", "flag_message"))

    return prepared(("page decisions", start, limit), build)


class Decided(NamedTuple):
    """What a flag's decision tells the day sheet: the flag, and the message decided on."""

    course_id: int
    code: str
    flag_message: str


def sheet_decisions(limit: int) -> Prepared:
    """The flag decisions of the courses with an appointment from ``start`` to ``end`` and of
    the first ``limit`` courses with undecided flags, oldest first, read as :class:`Decided`:
    one query of the same shape every day (compiled once: ketacare.prepared)."""
    def build(start, end):
        day = Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
        first = courses_with_undecided_flags()[:limit]
        return (FlagDecision.objects.filter(Q(course__in=day.values("course_id"))
                                            | Q(course__in=first.values("pk")))
                .order_by("decided_at", "id").values_list("course_id", "code", "flag_message"))

    return prepared(("sheet decisions", limit), build, start=datetime, end=datetime)


def decisions_by_course(rows) -> dict[int, list[Decided]]:
    """Rows of decisions (course id, code, message) per course id, in their order."""
    decisions = defaultdict(list)
    for row in rows:
        decisions[row[0]].append(Decided(*row))
    return decisions


def undecided_flags(found, decisions, limit: int | None = None) -> list[Undecided]:
    """The undecided flags of courses read as UNDECIDED_COLUMNS, in the order given
    (courses_with_undecided_flags): critical first, then each course in that order, the
    first ``limit`` of them. The first N courses hold the first N flags, as each has one at
    its course's rank. Each with what its row shows worked out (no lookups while
    rendering)."""
    ordered = sorted(
        (SEVERITY_RANK.get(flag["severity"], 9), place, index, pk, last, first, flag)
        for place, (pk, last, first, flags) in enumerate(found)
        for index, flag in enumerate(open_flags({"flags": flags or []}, decisions[pk]))
    )
    course_path = path_maker("courses:detail")
    found = []
    for *_, pk, last, first, flag in ordered[:limit]:
        flag, url = _shown(flag), course_path(pk)
        found.append(Undecided(pk, last, first, flag, url, format_row(
            UNDECIDED_ROW, css=flag["css"], severity=flag["severity"], url=url, last=last,
            first=first, label=flag["label"], message=flag["message"], short=flag["short"])))
    return found


# A row of undecided flags, written here once per row: a table of them in the template
# language cost more than the rest of the page (a lookup per cell).
UNDECIDED_ROW = (
    '<tr><td class="text-nowrap"><span class="badge text-bg-{css}">{severity}</span></td>'
    '<td class="text-nowrap"><a href="{url}">{last}, {first}</a></td>'
    '<td class="text-nowrap fw-semibold">{label}</td>'
    '<td class="small text-muted message" title="{message}">{short}</td></tr>\n'
)
SHORT = 75  # characters of a flag's message in a row


def _shown(flag: dict) -> dict:
    """A flag with its label, its badge's colour and its message cut to a line."""
    return {**flag, "label": flag_label(flag["code"]),
            "css": severity_class(flag["severity"]), "short": cut(flag["message"])}


def cut(message: str) -> str:
    """``Truncator(message).chars(SHORT)`` (tested equal), without its walk through the
    characters (in Python) when every code point of the message is a character shown: in
    NFC already and without combining marks (checked in C), as ASCII always is. Truncator
    then keeps a message of SHORT or fewer whole and cuts a longer one after as many code
    points as it counts."""
    if not (message.isascii() or (unicodedata.is_normalized("NFC", message)
                                  and not any(map(unicodedata.combining, message)))):
        return Truncator(message).chars(SHORT)
    if len(message) <= SHORT:
        return message
    return add_truncation_text(message[:calculate_truncate_chars_length(SHORT, None)])


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


APPOINTMENT_COLUMNS = (
    "pk", "course_id", "starts_at", "route", "dose_mg_per_kg", "dose_mg", "status",
    "cancel_reason", "session_id", "course__phase", "course__evaluation",
    "course__patient__last_name", "course__patient__first_name", "course__patient__record_number",
    *ROW_FACTS,
)
# The day's appointments, each with its course's row facts (compiled once: ketacare.prepared).
DAY_APPOINTMENTS = Prepared(
    lambda start, end: Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
    .annotate(**_row_facts(OuterRef("course__patient"), OuterRef("course")))
    .order_by("starts_at", "id").values_list(*APPOINTMENT_COLUMNS),
    start=datetime, end=datetime,
)


def day_appointments(rows) -> list[Appointment]:
    """The day's appointments from the rows of DAY_APPOINTMENTS (in time order), each with its
    course and patient (unsaved instances holding what the rows show) and the course's row
    facts (on the course)."""
    appointments = []
    for (pk, course_id, starts_at, route, per_kg, mg, status, cancel_reason, session_id, phase,
         evaluation, last_name, first_name, record_number, *facts) in rows:
        course = Course(pk=course_id, phase=phase, evaluation=evaluation)
        course.patient = Patient(last_name=last_name, first_name=first_name,
                                 record_number=record_number)
        for name, value in zip(ROW_FACTS, facts, strict=True):
            setattr(course, name, value)
        appointments.append(Appointment(
            pk=pk, course=course, starts_at=starts_at, route=route, dose_mg_per_kg=per_kg,
            dose_mg=mg, status=status, cancel_reason=cancel_reason, session_id=session_id))
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


def day_sheet(day: date, now: datetime, instruments=(), book: bool = False) -> dict:
    """Everything the day sheet shows for ``day`` (read at ``now``): seven queries whatever
    the rows and the history, sent together (one round trip on PostgreSQL). ``book``: with
    the buttons to book courses with nothing booked (for clinicians)."""
    from selfreport.queries import failed_emails

    today = timezone.localdate(now)
    start, end = day_bounds(day)
    since = day_bounds(today)[0]
    failed = failed_emails(UNDECIDED_SHOWN)
    (appointments, found, decisions, rems_open, unbooked, counts, failed_rows) = together(
        (DAY_APPOINTMENTS, {"start": start, "end": end}),
        # The clinic's undecided flags, critical first then the latest changed: only the
        # flags of the first UNDECIDED_SHOWN courses are read, never every course's
        # evaluation.
        (undecided_page(0, UNDECIDED_SHOWN), {}),
        (sheet_decisions(UNDECIDED_SHOWN), {"start": start, "end": end}),
        (REMS_OPEN, {}),
        # Courses with nothing booked: the first few, with their plan progress.
        (unbooked_page(0, UNBOOKED_SHOWN), {"since": since}),
        # How many of them, and the undecided flags in all.
        open_course_counts(since),
        # Self-report emails that could not be sent after every retry (SPEC §9):
        # invitations and question-9 alerts, each until a clinician acts on its course.
        (failed, {}),
    )
    appointments = day_appointments(appointments)
    decisions = decisions_by_course(decisions)
    rems, rems_counts = rems_forms_due(rems_open, {a.course_id for a in appointments}, today)
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
    undecided = undecided_flags(found, decisions, UNDECIDED_SHOWN)
    undecided_count, unbooked_count = (count or 0 for count in counts[0])
    unbooked = unbooked_rows(unbooked, today, book)
    return {
        "self_report_failed": failed.as_dicts(failed_rows),
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
