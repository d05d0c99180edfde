"""State changes to a treatment course. Each is atomic and writes its audit row (STYLE 3)."""

from datetime import date

from django.db import transaction
from django.utils import timezone

from audit.log import record, snapshot
from audit.models import Action
from clinic.actions import cancel_course_appointments, fulfil_appointment
from clinic.models import Appointment
from clinical.vocab import Phase
from courses.evaluation import current_evaluation, raised_flag, refresh_evaluation
from courses.models import AdverseEvent, Course, FlagDecision, PhaseChange, TreatmentSession


@transaction.atomic
def start_course(user, course: Course) -> Course:
    course.created_by = user
    course.save()
    PhaseChange.objects.create(
        course=course, from_phase="", to_phase=course.phase, effective_on=course.started_on,
        changed_by=user, note="course started",
    )
    record(user, Action.CREATE, course, patient_id=course.patient_id, after=snapshot(course))
    refresh_evaluation(course)
    return course


@transaction.atomic
def change_phase(user, course: Course, to_phase: Phase, effective_on: date, note: str = ""):
    """Every change of phase is dated and kept; entering maintenance dates it for the rules."""
    course = Course.objects.select_for_update().get(pk=course.pk)
    fields = ["phase", "maintenance_started_on", "ended_on"]
    before = snapshot(course, fields)
    change = PhaseChange.objects.create(
        course=course, from_phase=course.phase, to_phase=to_phase, effective_on=effective_on,
        changed_by=user, note=note,
    )
    course.phase = to_phase
    if to_phase == Phase.MAINTENANCE:
        course.maintenance_started_on = effective_on
    if to_phase == Phase.ENDED:
        course.ended_on = effective_on
    course.save(update_fields=fields)
    record(user, Action.PHASE_CHANGE, course, patient_id=course.patient_id, before=before,
           after=snapshot(course, fields), summary=note)
    refresh_evaluation(course)
    return change


@transaction.atomic
def end_course(user, course: Course, ended_on: date, reason: str, note: str = "") -> Course:
    course = Course.objects.select_for_update().get(pk=course.pk)
    before = snapshot(course, ["phase", "ended_on", "end_reason", "end_note"])
    PhaseChange.objects.create(
        course=course, from_phase=course.phase, to_phase=Phase.ENDED, effective_on=ended_on,
        changed_by=user, note=note,
    )
    course.phase = Phase.ENDED
    course.ended_on = ended_on
    course.end_reason = reason
    course.end_note = note
    course.save(update_fields=["phase", "ended_on", "end_reason", "end_note"])
    record(user, Action.END, course, patient_id=course.patient_id, before=before,
           after=snapshot(course, ["phase", "ended_on", "end_reason", "end_note"]))
    cancel_course_appointments(user, course, "course ended")
    refresh_evaluation(course)
    return course


@transaction.atomic
def record_session(
    user, session: TreatmentSession, adverse_events: list[tuple[str, str]],
    appointment: Appointment | None = None,
) -> TreatmentSession:
    """Save a session given in clinic with its adverse events (description, severity), and
    mark done the appointment it fulfils (the one given, else the course's that day)."""
    session.clinician = user
    session.save()
    events = [
        AdverseEvent(session=session, description=description, severity=severity)
        for description, severity in adverse_events
    ]
    AdverseEvent.objects.bulk_create(events)
    after = snapshot(session)
    after["adverse_events"] = [[e.description, e.severity] for e in events]
    record(user, Action.CREATE, session, patient_id=session.course.patient_id, after=after)
    refresh_evaluation(session.course)
    fulfil_appointment(user, session, appointment)
    return session


class FlagNotRaised(ValueError):
    """The flag is not raised on the course now: there is nothing to decide."""


@transaction.atomic
def decide_flag(user, course: Course, code: str, decision: str, *, action: str = "",
                detail: str = "", reason: str = "") -> FlagDecision:
    """Record a clinician's signed decision on a flag raised now; never edited afterwards."""
    course = Course.objects.select_for_update().select_related("patient").get(pk=course.pk)
    flag = raised_flag(current_evaluation(course), code)
    if flag is None:
        raise FlagNotRaised(f"{code} is not raised on this course now.")
    decision_row = FlagDecision.objects.create(
        course=course, code=code, decision=decision, action=action, detail=detail,
        reason=reason, flag_message=flag["message"], decided_by=user,
        decided_at=timezone.now(),
    )
    record(user, Action.DECIDE, decision_row, patient_id=course.patient_id,
           after=snapshot(decision_row), summary=f"{decision} {code}")
    refresh_evaluation(course)
    return decision_row
