from collections.abc import Callable
from datetime import date

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.access import (
    clinic_admin_required,
    get_appointment_for_user,
    get_course_for_user,
    records_reader,
    records_writer,
)
from clinic import actions
from clinic.daysheet import (
    day_sheet,
    decisions_by_course,
    page_decisions,
    unbooked_count,
    undecided_courses_count,
    undecided_flags,
    undecided_page,
)
from clinic.forms import (
    AppointmentForm,
    CancelAppointmentForm,
    ClinicSettingsForm,
    MoveAppointmentForm,
    PlanForm,
    plan_initial,
)
from clinic.models import ClinicSettings
from clinic.plans import (
    day_bounds,
    plan_of,
    propose,
    unbooked_page,
    unbooked_rows,
)
from clinical.instruments import INSTRUMENTS
from clinical.schedules import Schedule, suits
from clinical.vocab import Phase
from ketacare.fragments import cached_template, data_version
from ketacare.prepared import sends_together, together

UNBOOKED_PAGE = 50
UNDECIDED_PAGE = 25  # courses per page of the undecided flags


def _day(request: HttpRequest) -> date:
    """The day asked for (?day=YYYY-MM-DD), else today; anything unreadable is today."""
    try:
        day = date.fromisoformat(request.GET.get("day", "")[:10])
    except ValueError:
        return timezone.localdate()
    return day if date(1900, 1, 1) <= day <= date(2099, 12, 31) else timezone.localdate()


# /day/
@records_reader
def day(request: HttpRequest) -> HttpResponse:
    """The day sheet: a clinician's home page; clinic admins read it, without its buttons."""
    shown = _day(request)
    now = timezone.now()
    # Cached until the next change to anything, per day shown and day read (ages, what is
    # ahead): see ketacare.fragments.
    sheet = cached_template(
        request, "clinic/_day.html", (shown, timezone.localdate(now), data_version()),
        lambda: day_sheet(shown, now, INSTRUMENTS.values(), book=request.user.is_clinician),
    )
    context = {"day": shown, "today": timezone.localdate(now), "sheet": sheet,
               "previous": shown.fromordinal(shown.toordinal() - 1),
               "next": shown.fromordinal(shown.toordinal() + 1)}
    return render(request, "clinic/day.html", context)


MAX_PAGE = 100_000


def _paged(request: HttpRequest, per_page: int, count: tuple,
           reads: Callable[[int], list[tuple]]) -> tuple[Page, list]:
    """The page asked for (?page=N) of a list: ``count``, the statement counting it, and
    ``reads(start)``, the queries of its rows from ``start`` on (ketacare.prepared.together);
    their rows. On PostgreSQL the count and the page asked for are read in one round trip (a
    page past the last is read again, as Paginator.get_page shows the last)."""
    number = request.GET.get("page", "")[:20]
    try:
        # A page past the last shows the last; one far past it is not read at all (its offset
        # would overflow a bigint), only counted.
        asked = min(max(int(number), 1), MAX_PAGE)
    except ValueError:
        asked = 1
    rows = None
    if sends_together():
        [(total,)], *rows = together(count, *reads((asked - 1) * per_page))
    else:
        [(total,)] = together(count)[0]
    # The rows are read here: the paginator only numbers the pages.
    page = Paginator(range(total), per_page).get_page(number)
    if rows is None or page.number != asked:
        rows = together(*reads((page.number - 1) * per_page))
    return page, rows


# /courses/unbooked/
@records_reader
def unbooked(request: HttpRequest) -> HttpResponse:
    """Courses not ended with no appointment ahead, a page at a time."""
    now = timezone.now()
    today = timezone.localdate(now)
    since = day_bounds(today)[0]
    # Counted over the courses alone (a partial index on a vacuumed table), not the rows'
    # joins; each page's query compiled once per process (ketacare.prepared).
    page, [rows] = _paged(request, UNBOOKED_PAGE, unbooked_count(since), lambda start: [
        (unbooked_page(start, UNBOOKED_PAGE), {"since": since})])
    page.object_list = unbooked_rows(rows, today, book=request.user.is_clinician)
    return render(request, "clinic/unbooked.html", {"page": page})


# /day/flags/
@records_reader
def undecided(request: HttpRequest) -> HttpResponse:
    """Every flag of the clinic no decision answers, a page of courses at a time: the most
    severe courses first (critical), then by name."""
    # Counted from the partial index alone (on a vacuumed table), not the rows' joins; the
    # page and its courses' flag decisions, each compiled once (ketacare.prepared).
    page, [rows, decisions] = _paged(
        request, UNDECIDED_PAGE, undecided_courses_count(), lambda start: [
            (undecided_page(start, UNDECIDED_PAGE), {}),
            (page_decisions(start, UNDECIDED_PAGE), {})])
    page.object_list = rows
    flags = undecided_flags(rows, decisions_by_course(decisions))
    return render(request, "clinic/undecided.html", {"page": page, "flags": flags})


# /clinic/settings/
@clinic_admin_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    form = ClinicSettingsForm(request.POST or None, instance=ClinicSettings.load())
    if request.method == "POST" and form.is_valid():
        actions.update_settings(request.user, form.save(commit=False))
        messages.success(request, "Clinic settings saved. New plans use them; plans already "
                         "made keep their schedule.")
        return redirect("clinic:settings")
    return render(request, "clinic/settings.html", {"form": form})


# /courses/<pk>/plan/
@records_writer
@require_http_methods(["GET", "POST"])
def plan_edit(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    if not course.is_active:
        messages.error(request, "This course has ended.")
        return redirect("courses:detail", pk=course.pk)
    plan = plan_of(course)
    initial = {**plan_initial(plan), "schedule": plan.schedule if plan else None,
               "starts_on": plan.starts_on if plan else max(course.started_on,
                                                             timezone.localdate())}
    if course.phase == Phase.MAINTENANCE and not (plan and suits(plan.schedule, course.phase)):
        # Moved to maintenance on an induction plan (or none): propose spacing, counted from
        # the day maintenance began, not from the induction's first session.
        initial.update(schedule=Schedule.GRADUAL_SPACING,
                       starts_on=course.maintenance_started_on or timezone.localdate())
    if plan is None:
        last = course.sessions.current().order_by("-started_at").first()
        if last:
            initial.update(route=last.route, dose_mg_per_kg=last.dose_mg_per_kg,
                           dose_mg=None if last.dose_mg_per_kg else last.dose_mg)
    form = PlanForm(request.POST or None, course=course, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actions.set_plan(request.user, course, data["route"], data["dose_mg_per_kg"],
                         data["dose_mg"], data["schedule"], data["starts_on"])
        messages.success(request, "Plan saved.")
        return redirect("courses:detail", pk=course.pk)
    return render(request, "clinic/plan_form.html",
                  {"form": form, "course": course, "patient": course.patient,
                   "title": "Change the plan" if plan else "Set the plan"})


# /courses/<pk>/appointments/new/
@records_writer
@require_http_methods(["GET", "POST"])
def appointment_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Book by the plan: the form proposes the next due time, and the rest of the plan's step
    can be booked with it."""
    course = get_course_for_user(request.user, pk, write=True)
    if not course.is_active:
        messages.error(request, "This course has ended.")
        return redirect("courses:detail", pk=course.pk)
    clinic = ClinicSettings.load()
    now = timezone.now()
    proposal = propose(course, clinic, now)
    plan = plan_of(course)
    form = AppointmentForm(
        request.POST or None, course=course, series_count=len(proposal.series),
        initial={"starts_at": timezone.localtime(proposal.starts_at), **plan_initial(plan)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        times = [data["starts_at"]]
        if data.get("series"):
            times += propose(course, clinic, now, first=data["starts_at"]).series
        try:
            booked = actions.book_appointments(
                request.user, course, times, data["route"], data["dose_mg_per_kg"],
                data["dose_mg"], data["note"], submission_token=data.get("submission_token"),
            )
        except actions.AlreadyBooked:
            messages.info(request, "This booking was already saved; nothing was booked twice.")
        else:
            when = ", ".join(f"{timezone.localtime(a.starts_at):%a %d %b %H:%M}" for a in booked)
            messages.success(request, f"Booked: {when}.")
        return redirect("courses:detail", pk=course.pk)
    return render(request, "clinic/appointment_form.html", {
        "form": form, "course": course, "patient": course.patient, "plan": plan,
        "proposal": proposal, "title": "Book an appointment",
    })


def _booked(request: HttpRequest, pk: int, doing: str):
    """The appointment to change, and a redirect (with the reason) when it is done or
    cancelled and so cannot be changed."""
    appointment = get_appointment_for_user(request.user, pk, write=True)
    if appointment.is_booked:
        return appointment, None
    messages.error(request, f"This appointment is {appointment.get_status_display().lower()}"
                   f"; it cannot be {doing}.")
    return appointment, redirect("courses:detail", pk=appointment.course_id)


def _changed(request: HttpRequest, appointment, change: Callable[[], str]) -> HttpResponse:
    """Run ``change`` (an action, returning what to tell the clinician) and go to the course;
    another clinician may have closed the appointment meanwhile."""
    try:
        messages.success(request, change())
    except actions.NotBooked as error:
        messages.error(request, str(error))
    return redirect("courses:detail", pk=appointment.course_id)


# /appointments/<pk>/move/
@records_writer
@require_http_methods(["GET", "POST"])
def appointment_move(request: HttpRequest, pk: int) -> HttpResponse:
    appointment, closed = _booked(request, pk, "moved")
    if closed:
        return closed
    course = appointment.course
    form = MoveAppointmentForm(request.POST or None, instance=appointment)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in actions.MOVE_FIELDS}

        def move() -> str:
            actions.move_appointment(request.user, appointment, **changes)
            when = timezone.localtime(changes["starts_at"])
            return f"Appointment moved to {when:%a %d %b %H:%M}."

        return _changed(request, appointment, move)
    return render(request, "clinic/appointment_form.html", {
        "form": form, "course": course, "patient": course.patient,
        "title": "Move the appointment", "submit": "Move",
    })


# /appointments/<pk>/cancel/
@records_writer
@require_http_methods(["GET", "POST"])
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    appointment, closed = _booked(request, pk, "cancelled")
    if closed:
        return closed
    course = appointment.course
    form = CancelAppointmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def cancel() -> str:
            actions.cancel_appointment(request.user, appointment, form.cleaned_data["reason"])
            return "Appointment cancelled."

        return _changed(request, appointment, cancel)
    when = timezone.localtime(appointment.starts_at)
    return render(request, "form_page.html", {
        "form": form, "course": course, "patient": course.patient,
        "title": f"Cancel the appointment of {when:%a %d %b %Y, %H:%M}",
        "submit": "Cancel the appointment",
        "cancel_text": "Keep the appointment",  # not a second "Cancel" beside the first
    })
