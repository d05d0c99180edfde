from collections.abc import Callable
from datetime import date, datetime

from django.contrib import messages
from django.core.paginator import Paginator
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
    UNDECIDED_COLUMNS,
    courses_with_undecided_flags,
    day_sheet,
    decisions_of,
    undecided_flags,
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
    courses_without_future_appointment,
    day_bounds,
    plan_of,
    propose,
    unbooked_courses,
    unbooked_rows,
)
from clinical.instruments import INSTRUMENTS
from ketacare.fragments import cached_template, data_version
from ketacare.prepared import prepared

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
        lambda: day_sheet(shown, now, INSTRUMENTS.values()),
    )
    context = {"day": shown, "today": timezone.localdate(now), "sheet": sheet,
               "previous": shown.fromordinal(shown.toordinal() - 1),
               "next": shown.fromordinal(shown.toordinal() + 1)}
    return render(request, "clinic/day.html", context)


# /courses/unbooked/
@records_reader
def unbooked(request: HttpRequest) -> HttpResponse:
    """Courses not ended with no appointment ahead, a page at a time."""
    now = timezone.now()
    today = timezone.localdate(now)
    since = day_bounds(today)[0]
    paginator = Paginator(courses_without_future_appointment(since), UNBOOKED_PAGE)
    # Counted over the courses alone (a partial index on a vacuumed table), not the rows'
    # joins.
    paginator.count = unbooked_courses(since).count()
    page = paginator.get_page(request.GET.get("page", "")[:20])
    start = (page.number - 1) * UNBOOKED_PAGE
    # Each page's query compiled once per process (ketacare.prepared).
    rows = prepared(("unbooked page", start, UNBOOKED_PAGE),
                    lambda since: courses_without_future_appointment(since)
                    [start:start + UNBOOKED_PAGE], since=datetime).rows(since=since) \
        if paginator.count else []
    page.object_list = unbooked_rows(rows, today)
    return render(request, "clinic/unbooked.html", {"page": page})


# /day/flags/
@records_reader
def undecided(request: HttpRequest) -> HttpResponse:
    """Every flag of the clinic no decision answers, a page of courses at a time: the most
    severe courses first (critical), then by name."""
    paginator = Paginator(courses_with_undecided_flags().values_list(*UNDECIDED_COLUMNS),
                          UNDECIDED_PAGE)
    # Counted from the partial index alone (on a vacuumed table), not the rows' joins.
    paginator.count = courses_with_undecided_flags().count()
    page = paginator.get_page(request.GET.get("page", "")[:20])
    start = (page.number - 1) * UNDECIDED_PAGE
    # Each page's query compiled once per process (ketacare.prepared).
    page.object_list = prepared(("undecided page", start, UNDECIDED_PAGE),
                                lambda: courses_with_undecided_flags()
                                .values_list(*UNDECIDED_COLUMNS)[start:start + UNDECIDED_PAGE]
                                ).rows() if paginator.count else []
    flags = undecided_flags(page, decisions_of(row[0] for row in page))
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
    })
