"""State changes to the clinic's settings, plans and appointments. Each is atomic and writes its
audit row (STYLE 3); a plan or an appointment is audited against its patient, so the pages of
the patient's record (cached by its audit version, ketacare.fragments) show it at once."""

from datetime import date, datetime

from django.utils import timezone

from audit.log import audited, record, snapshot
from audit.models import Action
from clinic.models import Appointment, AppointmentStatus, ClinicSettings, Plan
from clinical.schedules import Schedule
from courses.models import Course, TreatmentSession
from ketacare.prepared import Prepared

SETTINGS_FIELDS = [
    f.name for f in ClinicSettings._meta.concrete_fields if f.name not in ("id", "updated_at")
]
PLAN_FIELDS = ["route", "dose_mg_per_kg", "dose_mg", "schedule", "steps", "starts_on"]
MOVE_FIELDS = ["starts_at", "route", "dose_mg_per_kg", "dose_mg", "note"]


@audited()
def update_settings(user, changed: ClinicSettings) -> ClinicSettings:
    """Save the clinic's settings (one row), audited with the values before and after."""
    current = ClinicSettings.objects.select_for_update().filter(pk=1).first()
    before = snapshot(current or ClinicSettings(pk=1), SETTINGS_FIELDS)
    changed.pk = 1
    changed.save()
    after = snapshot(changed, SETTINGS_FIELDS)
    record(user, Action.UPDATE, changed, before=before, after=after,
           summary="clinic settings changed")
    return changed


@audited()
def set_plan(user, course: Course, route: str, dose_mg_per_kg, dose_mg, schedule: Schedule,
             starts_on) -> Plan:
    """Make or change the course's plan; the schedule's steps are the clinic's defaults now."""
    course = Course.objects.select_for_update().get(pk=course.pk)
    plan = Plan.objects.filter(course=course).first()
    before = snapshot(plan, PLAN_FIELDS) if plan else None
    plan = plan or Plan(course=course)
    plan.route, plan.dose_mg_per_kg, plan.dose_mg = route, dose_mg_per_kg, dose_mg
    plan.schedule = schedule
    plan.steps = [step.to_json() for step in ClinicSettings.load().steps(Schedule(schedule))]
    plan.starts_on = starts_on
    plan.set_by, plan.set_at = user, timezone.now()
    plan.save()
    record(user, Action.UPDATE if before else Action.CREATE, plan, patient_id=course.patient_id,
           before=before, after=snapshot(plan, PLAN_FIELDS), summary="plan set")
    return plan


class AlreadyBooked(Exception):
    """The same booking form was sent twice (double click, retry)."""


@audited()
def book_appointments(user, course: Course, times: list[datetime], route: str,
                      dose_mg_per_kg, dose_mg, note: str = "",
                      submission_token=None) -> list[Appointment]:
    """Book one appointment, or a series (the rest of the plan's step) at ``times``."""
    course = Course.objects.select_for_update().get(pk=course.pk)  # one booking at a time
    if submission_token and Appointment.objects.filter(
        course=course, submission_token=submission_token
    ).exists():
        raise AlreadyBooked
    now = timezone.now()
    booked = []
    for starts_at in times:
        appointment = Appointment.objects.create(
            course=course, starts_at=starts_at, route=route, dose_mg_per_kg=dose_mg_per_kg,
            dose_mg=dose_mg, note=note, booked_by=user, booked_at=now,
            submission_token=submission_token,
        )
        record(user, Action.CREATE, appointment, patient_id=course.patient_id,
               after=snapshot(appointment), summary="appointment booked")
        booked.append(appointment)
    return booked


class NotBooked(ValueError):
    """The appointment is done or cancelled: it can no longer be moved or cancelled."""


def _locked_booked(appointment: Appointment) -> Appointment:
    appointment = Appointment.objects.select_for_update().select_related("course").get(
        pk=appointment.pk
    )
    if not appointment.is_booked:
        raise NotBooked(f"This appointment is {appointment.get_status_display().lower()}.")
    return appointment


@audited()
def move_appointment(user, appointment: Appointment, **changes) -> Appointment:
    """Change the time (and the planned route, dose or note) of a booked appointment."""
    appointment = _locked_booked(appointment)
    before = snapshot(appointment, MOVE_FIELDS)
    for name, value in changes.items():
        if name not in MOVE_FIELDS:
            raise ValueError(name)
        setattr(appointment, name, value)
    appointment.save(update_fields=list(changes))
    record(user, Action.UPDATE, appointment, patient_id=appointment.course.patient_id,
           before=before, after=snapshot(appointment, MOVE_FIELDS), summary="appointment moved")
    return appointment


@audited()
def cancel_appointment(user, appointment: Appointment, reason: str) -> Appointment:
    appointment = _locked_booked(appointment)
    fields = ["status", "cancel_reason"]
    before = snapshot(appointment, fields)
    appointment.status, appointment.cancel_reason = AppointmentStatus.CANCELLED, reason
    appointment.save(update_fields=fields)
    record(user, Action.CANCEL, appointment, patient_id=appointment.course.patient_id,
           before=before, after=snapshot(appointment, fields), summary=reason)
    return appointment


def cancel_course_appointments(user, course: Course, reason: str) -> int:
    """Cancel every booked appointment of ``course`` (ending it): call it in the ending's
    transaction. Returns how many."""
    booked = list(Appointment.objects.booked().filter(course=course))
    for appointment in booked:
        cancel_appointment(user, appointment, reason)
    return len(booked)


def appointment_for(session: TreatmentSession) -> Appointment | None:
    """The booked appointment a session logged without one fulfils: the course's booked
    appointment on the session's day (the nearest in time), if any."""
    candidates = _BOOKED_ON.objects(course=session.course_id,
                                    day=timezone.localdate(session.started_at))
    return min(candidates, key=lambda a: abs(a.starts_at - session.started_at), default=None)


# Every session saved asks (compiled once per process: ketacare.prepared).
_BOOKED_ON = Prepared(lambda course, day: Appointment.objects.booked().filter(
    course_id=course, starts_at__date=day, session__isnull=True), course=int, day=date)


def fulfil_appointment(user, session: TreatmentSession,
                       appointment: Appointment | None = None) -> Appointment | None:
    """Link the session to the appointment it fulfils (the one it was logged from, else the
    course's booked appointment that day) and mark it done. Call it in the session's
    transaction. Most sessions fulfil none: looking costs one read, and no savepoint."""
    if appointment is None:
        appointment = appointment_for(session)
        if appointment is None:
            return None
    return _fulfil(user, session, appointment)


@audited()
def _fulfil(user, session: TreatmentSession, appointment: Appointment) -> Appointment | None:
    try:
        appointment = _locked_booked(appointment)
    except NotBooked:
        return None
    if appointment.course_id != session.course_id:
        return None
    return _link(user, appointment, AppointmentStatus.DONE, session,
                 f"appointment done: session {session.pk}", appointment.course.patient_id)


def _link(user, appointment: Appointment, status: str, session: TreatmentSession | None,
          summary: str, patient_id: int) -> Appointment:
    """Set the appointment's status and the session fulfilling it, audited before and after."""
    fields = ["status", "session"]
    before = snapshot(appointment, fields)
    appointment.status, appointment.session = status, session
    appointment.save(update_fields=fields)
    record(user, Action.UPDATE, appointment, patient_id=patient_id,
           before=before, after=snapshot(appointment, fields), summary=summary)
    return appointment


def reopen_appointment(user, session: TreatmentSession) -> Appointment | None:
    """The appointment a voided session had fulfilled is booked again: a session entered in
    error is not the visit, so the day sheet offers *Log session* for it once more. Call it in
    the void's transaction."""
    appointment = (Appointment.objects.select_for_update()
                   .filter(session=session, status=AppointmentStatus.DONE).first())
    if appointment is None:
        return None
    return _link(user, appointment, AppointmentStatus.BOOKED, None,
                 f"appointment booked again: session {session.pk} voided",
                 session.course.patient_id)
