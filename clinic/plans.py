"""Reading plans and appointments: the next appointment, when the next session is due, the
booking form's proposal, and the day sheet's rows. Each reads a fixed number of queries,
whatever the number of rows or the length of the history."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, F, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.safestring import SafeString, mark_safe

from clinic.models import Appointment, ClinicSettings, Plan, dose_text, plain
from clinical.schedules import (
    Due,
    DueState,
    Step,
    due_state,
    next_open_day,
    position,
    proposed_days,
    suits,
)
from clinical.vocab import Phase, Route, choices
from courses.models import Course, TreatmentSession
from ketacare.paths import path_maker
from ketacare.prepared import Prepared, prepared
from ketacare.rows import format_row


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The clinic's day ``day`` as [start, end) aware datetimes."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def plan_sessions(queryset: QuerySet) -> QuerySet:
    """The sessions that count toward a plan, of ``queryset`` (sessions not voided: its
    callers read ``TreatmentSession.objects.current()``): every session given, a stopped one
    too. courses.record counts the same in SQL for the course page."""
    return queryset


def with_next_appointment(courses: QuerySet, since: datetime) -> QuerySet:
    """``courses`` with their plan and their next booked appointment from ``since`` (its id,
    time, planned route and dose), in the same query."""
    ahead = Appointment.objects.booked().filter(
        course=OuterRef("pk"), starts_at__gte=since
    ).order_by("starts_at", "id")
    return courses.select_related("plan").annotate(
        **{f"next_{name}": Subquery(ahead.values(name)[:1])
           for name in ("id", "starts_at", "route", "dose_mg_per_kg", "dose_mg")}
    )


def with_plan_progress(courses: QuerySet) -> QuerySet:
    """``courses`` with the sessions counted toward their plan and the last one's time."""
    counted = plan_sessions(TreatmentSession.objects.current().filter(
        course=OuterRef("pk"), started_at__date__gte=OuterRef("plan__starts_on")
    )).order_by()
    return courses.annotate(
        plan_done=Coalesce(Subquery(
            counted.values("course").annotate(n=Count("pk")).values("n")[:1]
        ), 0),
        plan_last_at=Subquery(
            counted.values("course").annotate(last=Max("started_at")).values("last")[:1]
        ),
    )


def plan_of(course: Course) -> Plan | None:
    try:
        return course.plan
    except Plan.DoesNotExist:
        return None


def due_of(course: Course, today: date) -> DueState | None:
    """When the course's next session is due by its plan (``with_plan_progress`` read the
    sessions), or None without a plan."""
    plan = plan_of(course)
    if plan is None:
        return None
    return due_by_plan(plan.steps, plan.starts_on, course.plan_done, course.plan_last_at,
                       today)


def due_by_plan(steps: list, starts_on: date, done: int, last_at: datetime | None,
                today: date) -> DueState:
    """When the next session is due by a plan of ``steps`` (as stored) counting from
    ``starts_on``, ``done`` sessions given since, the last at ``last_at``."""
    last = timezone.localdate(last_at) if last_at else None
    return due_state([Step.from_json(step) for step in steps], starts_on, done, last, today)


DUE_CLASSES = {Due.NOT_YET: "text-bg-light border", Due.DUE: "text-bg-info",
               Due.COMPLETE: "text-bg-secondary"}


def due_class(due: DueState | None) -> str:
    """The badge colour: overdue is a warning, overdue by a whole interval is danger."""
    if due is None:
        return ""
    if due.state == Due.OVERDUE:
        return "text-bg-danger" if due.badly_overdue else "text-bg-warning"
    return DUE_CLASSES[due.state]


def _day(day: date) -> str:
    # As the template filter date:"D j M" writes it (django.utils.dateformat's D, j and M),
    # without building a formatter for each of a table's dates.
    return f"{WEEKDAYS_ABBR[day.weekday()]} {day.day} {MONTHS_3[day.month].title()}"


def due_badge(due: DueState | None, due_class: str = "") -> SafeString:
    """When the next session is due, as the plan box and the rows of courses with nothing
    booked show it (templates/clinic/_due.html): written here, a table of them costs no
    template per row."""
    if due is None:
        return mark_safe('<span class="text-muted small">no plan</span>')
    if due.state == Due.COMPLETE:
        return format_row('<span class="badge {css}">plan complete</span>', css=due_class)
    if due.state == Due.OVERDUE:
        days = due.days_overdue
        return format_row(
            '<span class="badge {css}">overdue {days} day{s}</span> <span class="small '
            'text-nowrap">due {due}–{until}</span>', css=due_class, days=days,
            s="" if days == 1 else "s", due=_day(due.due_on), until=_day(due.overdue_after))
    if due.state == Due.DUE:
        return format_row('<span class="badge {css}">due now</span> <span class="small '
                          'text-nowrap">until {until}</span>', css=due_class,
                          until=_day(due.overdue_after))
    until = f"–{_day(due.overdue_after)}" if due.overdue_after != due.due_on else ""
    return format_row('<span class="small text-nowrap">due {due}{until}</span>',
                      due=_day(due.due_on), until=until)


UPCOMING_SHOWN = 8


def plan_box(course: Course, done: int, last_at: datetime | None, upcoming: list,
             today: date) -> dict:
    """The course page's plan box: the plan (read with the course), when a session is due
    (``done`` sessions given from the plan's first day on, the last at ``last_at``) and the
    ``upcoming`` appointments (booked from ``today`` on, the first UPCOMING_SHOWN):
    courses.record reads them."""
    plan = plan_of(course)
    due = due_by_plan(plan.steps, plan.starts_on, done, last_at, today) if plan else None
    late = bool(upcoming and due and due.overdue_after
                and timezone.localdate(upcoming[0].starts_at) > due.overdue_after)
    return {"plan": plan, "upcoming": upcoming, "due": due, "due_class": due_class(due),
            "late_booking": late,
            "plan_unsuited": bool(plan and not suits(plan.schedule, course.phase))}


def _dose(per_kg, mg) -> str:
    return dose_text(per_kg, mg)


# -- booking by the plan ------------------------------------------------------------------------

@dataclass
class Proposal:
    starts_at: datetime
    series: list[datetime]  # the rest of the plan's step after the first, at its spacing
    remaining: int | None  # sessions left in the step after the first; None: open-ended


def usual_time(course: Course, clinic: ClinicSettings) -> time:
    """The time of day of the course's latest appointment or session, else the clinic's."""
    latest = [
        at for at in (
            course.appointments.exclude(status="cancelled").aggregate(m=Max("starts_at"))["m"],
            course.sessions.current().aggregate(m=Max("started_at"))["m"],
        ) if at
    ]
    return timezone.localtime(max(latest)).time() if latest else clinic.default_time


def propose(course: Course, clinic: ClinicSettings, now: datetime,
            first: datetime | None = None) -> Proposal:
    """The next appointment by the course's plan (after its sessions and the appointments
    already booked), and the rest of the plan's step after it. ``first``: the time the
    clinician chose for the first one, which the series then follows."""
    at = usual_time(course, clinic)
    today = timezone.localdate(now)
    plan = plan_of(course)
    if plan is None:
        return Proposal(first or _at(_first_open(today, at, now, clinic), at), [], 0)
    since, _ = day_bounds(today)
    given = [timezone.localdate(s.started_at) for s in plan_sessions(
        course.sessions.current().filter(started_at__date__gte=plan.starts_on)
    )]
    given += [timezone.localdate(a.starts_at) for a in course.appointments.booked().filter(
        starts_at__gte=since, session__isnull=True
    )]
    steps = plan.step_list
    weekends = clinic.book_weekends
    where = position(steps, len(given))
    if first is None:
        earliest = today if _at(today, at) > now else today + timedelta(days=1)
        days = proposed_days(steps, plan.starts_on, given, earliest, 1, weekends)
        first = _at(days[0] if days else _first_open(today, at, now, clinic), at)
    # The series: the rest of the step the first one belongs to (none when open-ended).
    count = where.remaining_in_step - 1 if where.step and where.remaining_in_step else 0
    day = timezone.localdate(first)
    rest = proposed_days(steps, plan.starts_on, [*given, day], day + timedelta(days=1), count,
                         weekends)
    clock = timezone.localtime(first).time()
    return Proposal(first, [_at(d, clock) for d in rest], count)


def _at(day: date, clock: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, clock))


def _first_open(today: date, clock: time, now: datetime, clinic: ClinicSettings) -> date:
    day = today if _at(today, clock) > now else today + timedelta(days=1)
    return next_open_day(day, clinic.book_weekends)


# -- the day sheet ------------------------------------------------------------------------------

def booked_from(since: datetime) -> QuerySet:
    """The appointments booked from ``since`` on of the outer query's course."""
    return Appointment.objects.booked().filter(course=OuterRef("pk"), starts_at__gte=since)


def unbooked_courses(since: datetime) -> QuerySet:
    """Courses not ended with no booked appointment from ``since`` on (the start of today: an
    appointment earlier today still counts until the day ends)."""
    return Course.objects.active().filter(~Exists(booked_from(since)))


UNBOOKED_COLUMNS = ("pk", "phase", "last_session_at", "patient__last_name",
                    "patient__first_name", "plan__steps", "plan__starts_on", "plan_done",
                    "plan_last_at")


def courses_without_future_appointment(since: datetime) -> QuerySet:
    """:func:`unbooked_courses` as UNBOOKED_COLUMNS, with their patient, plan and plan
    progress: the longest since their last session first (never treated first)."""
    # last_session_at is kept on the course by refresh_evaluation: read in a partial index's
    # order, the first page needs no look at every course not ended.
    return with_plan_progress(unbooked_courses(since)).order_by(
        F("last_session_at").asc(nulls_first=True), "pk").values_list(*UNBOOKED_COLUMNS)


def unbooked_page(start: int, limit: int) -> Prepared:
    """Courses ``start`` to ``start + limit`` without a future appointment from ``since`` on,
    as :func:`courses_without_future_appointment` (compiled once: ketacare.prepared); their
    rows read with :func:`unbooked_rows`."""
    return prepared(("unbooked page", start, limit),
                    lambda since: courses_without_future_appointment(since)[start:start + limit],
                    since=datetime)


@dataclass(slots=True)
class Unbooked:
    """A course with nothing booked, with what its row shows worked out."""

    pk: int
    url: str
    book_url: str
    last_name: str
    first_name: str
    phase: str
    last_session: str  # its day, as "Mon 2 Mar"; "" before the first
    due: DueState | None
    due_html: SafeString
    html: SafeString  # the row (templates/clinic/_unbooked_rows.html)


def unbooked_rows(rows, today: date, book: bool) -> list[Unbooked]:
    """Rows of :func:`courses_without_future_appointment` as their table shows them: links,
    phase, last session and when the next session is due by the plan; with a button to book
    when ``book`` (for clinicians)."""
    course_path, book_path = path_maker("courses:detail"), path_maker("clinic:appointment-new")
    phases = dict(choices(Phase))
    found = []
    for pk, phase, last_at, last_name, first_name, steps, starts_on, done, plan_last in rows:
        due = None if starts_on is None else due_by_plan(steps, starts_on, done, plan_last,
                                                          today)
        url, phase = course_path(pk), phases.get(phase, phase)
        last_session = _day(timezone.localtime(last_at)) if last_at else ""
        due_html = due_badge(due, due_class(due))
        found.append(Unbooked(
            pk, url, book_path(pk), last_name, first_name, phase, last_session, due, due_html,
            format_row(UNBOOKED_ROW if book else UNBOOKED_ROW_NO_BOOKING, url=url,
                       last=last_name, first=first_name, phase=phase,
                       last_session=last_session or NO_SESSION, due=due_html,
                       book_url=book_path(pk))))
    return found


# A row (templates/clinic/_unbooked_rows.html), written here once: a table of them in the
# template language cost more than the rest of the page.
_UNBOOKED_CELLS = (
    '<td><a href="{url}">{last}, {first}</a></td><td>{phase}</td>'
    '<td class="text-nowrap">{last_session}</td><td>{due}</td>'
)
UNBOOKED_ROW_NO_BOOKING = "<tr>" + _UNBOOKED_CELLS + "</tr>\n"
UNBOOKED_ROW = ("<tr>" + _UNBOOKED_CELLS + '<td class="text-end"><a class="btn btn-sm '
                'btn-outline-primary" href="{book_url}">Book</a></td></tr>\n')
NO_SESSION = mark_safe('<span class="text-muted">none yet</span>')


# -- logging a session from an appointment ------------------------------------------------------

def appointment_to_log(request, course: Course) -> Appointment | None:
    """The booked appointment of ``course`` named by ``?appointment=<id>`` (the day sheet's
    "Log session"), else None: an id that is not a booked appointment of this course is
    ignored, and the session is logged as from the course page."""
    value = request.GET.get("appointment", "")
    if not (value.isascii() and value.isdigit() and len(value) < 19):
        return None
    return Appointment.objects.booked().filter(pk=int(value), course=course).first()


def session_initial(appointment: Appointment | None) -> dict:
    """The session form's start from an appointment: its planned route and dose."""
    if appointment is None:
        return {}
    weight_based = Route(appointment.route).weight_based
    return {
        "route": appointment.route,
        "dose_mg_per_kg": plain(appointment.dose_mg_per_kg) if weight_based else None,
        "dose_mg": None if weight_based else plain(appointment.dose_mg),
    }
