"""The demo clinic's plans and appointments (SPEC §7): a full day sheet today and bookings in the
coming days, made through the same actions as the web forms (so audited).

Every course not ended gets a plan from its latest route and dose; most get an appointment
today and the next one by their plan; every sixth is left with nothing booked, so the list of
courses with nothing booked has rows; one of today's is cancelled. A course that already has
an appointment is left alone, so loading twice books nothing twice.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clinic import actions
from clinic.models import Appointment, ClinicSettings
from clinic.plans import plan_of, propose
from clinical.schedules import Schedule
from clinical.vocab import Phase, Route
from courses.models import Course

FIRST_SLOT = time(8, 0)
SLOT_MINUTES = 40
TODAY_SLOTS = 14  # appointments today at most; later courses are booked in the coming days


def _schedule_for(course: Course, route: Route) -> Schedule:
    if route == Route.INTRANASAL:
        return Schedule.ESKETAMINE
    if course.phase == Phase.MAINTENANCE or not route.weight_based:
        return Schedule.GRADUAL_SPACING
    return Schedule.KETAMINE_INDUCTION


def _dose(course: Course) -> tuple[Route, Decimal | None, Decimal | None]:
    last = course.sessions.order_by("-started_at").first()
    if last is None:
        return Route.IV, Decimal("0.5"), None
    route = Route(last.route)
    return route, last.dose_mg_per_kg, None if route.weight_based else last.dose_mg


@transaction.atomic
def load_demo_schedule(users: dict[str, User], today: date) -> int:
    """Plans and appointments for the demo's courses not ended; returns how many booked."""
    clinician = users["clinician"]
    clinic = ClinicSettings.load()
    courses = (Course.objects.active().filter(patient__record_number__startswith="DEMO-")
               .select_related("patient", "plan").order_by("patient__record_number"))
    start = timezone.make_aware(datetime.combine(today, FIRST_SLOT))
    # A later load (new demo patients) books after today's appointments already there.
    booked, slot = 0, Appointment.objects.filter(
        starts_at__gte=start, starts_at__lt=start + timedelta(days=1)).count()
    for index, course in enumerate(courses):
        if Appointment.objects.filter(course=course).exists():
            continue
        route, per_kg, mg = _dose(course)
        if plan_of(course) is None:
            course.plan = actions.set_plan(clinician, course, route, per_kg, mg,
                                           _schedule_for(course, route), course.started_on)
        if index % 6 == 5:
            continue  # nothing booked: the day sheet lists it
        if slot < TODAY_SLOTS:
            first = start + timedelta(minutes=SLOT_MINUTES * slot)
            slot += 1
        else:
            first = propose(course, clinic, timezone.make_aware(
                datetime.combine(today, time(18, 0)))).starts_at
        (today_one,) = actions.book_appointments(clinician, course, [first], route, per_kg, mg)
        following = propose(course, clinic, first + timedelta(hours=12)).starts_at
        actions.book_appointments(clinician, course, [following], route, per_kg, mg)
        booked += 2
        if index == 2:
            actions.cancel_appointment(clinician, today_one, "patient unwell; rebooked by phone")
    return booked
