"""State changes to a treatment course. Each is atomic and writes its audit row (STYLE 3), last
(audit.log.audited): after the course is re-evaluated, just before the commit."""

from datetime import date, datetime
from decimal import Decimal

from django.db.models import F
from django.utils import timezone
from django.utils.text import capfirst

from audit.log import audited, record, snapshot
from audit.models import Action
from clinic.actions import cancel_course_appointments, fulfil_appointment, reopen_appointment
from clinic.models import Appointment
from clinical.vocab import Phase
from courses.evaluation import current_evaluation, raised_flag, refresh_evaluation
from courses.models import (
    CONFIRMATIONS,
    AdverseEvent,
    AmendmentKind,
    Course,
    FlagDecision,
    PhaseChange,
    SessionAmendment,
    SessionVoid,
    TreatmentSession,
)
from patients.actions import StaleEdit


@audited()
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


@audited()
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


@audited()
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


@audited()
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
    confirmed = [TreatmentSession._meta.get_field(name).verbose_name
                 for name in CONFIRMATIONS if getattr(session, name)]
    record(user, Action.CREATE, session, patient_id=session.course.patient_id, after=after,
           summary="; ".join(confirmed))
    refresh_evaluation(session.course)
    fulfil_appointment(user, session, appointment)
    return session

# What an amendment may change: the session's clinical fields, not who logged it or when.
AMENDABLE = tuple(
    f.name for f in TreatmentSession._meta.concrete_fields
    if f.name not in ("id", "course", "clinician", "created_at", "submission_token", "version")
)


class CourseEnded(ValueError):
    """The course has ended: its sessions are closed to amendments and voids."""


class SessionVoided(ValueError):
    """The session was voided: there is nothing left to amend."""


def _lock_for_correction(pk: int, read_version: int) -> TreatmentSession:
    """The session as stored, locked until commit, if it may still be corrected over the
    version the clinician read; else the reason it may not."""
    locked = (TreatmentSession.objects.select_for_update(of=("self",))
              .select_related("course").get(pk=pk))
    if not locked.course.is_active:
        raise CourseEnded("The course has ended: its sessions can no longer be amended.")
    if SessionVoid.objects.filter(session_id=pk).exists():
        raise SessionVoided("This session was voided: it can no longer be amended.")
    if locked.version != read_version:
        raise StaleEdit
    return locked


def shown(session: TreatmentSession, name: str) -> str:
    """A field's value as the session page shows it, kept in the amendment's history."""
    field = TreatmentSession._meta.get_field(name)
    value = getattr(session, field.attname)
    if value is None or value == "":
        return "–"
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@audited()
def amend_session(user, session: TreatmentSession, *, read_version: int, reason: str = "",
                  kind: AmendmentKind = AmendmentKind.AMENDMENT,
                  added_events: list[tuple[str, str]] = ()) -> list[SessionAmendment]:
    """Save the fields of ``session`` (changed in memory by a valid form) that differ from the
    stored session, each as a signed amendment keeping the value it replaces, and the adverse
    events noticed afterwards (description, severity): added, never changed or removed."""
    stored = _lock_for_correction(session.pk, read_version)
    changed = [name for name in AMENDABLE if getattr(stored, name) != getattr(session, name)]
    if not changed and not added_events:
        return []
    now = timezone.now()
    signed = {"kind": kind, "reason": reason, "signed_by": user, "signed_at": now}
    amendments = SessionAmendment.objects.bulk_create([
        *(SessionAmendment(
            session=stored, field=name,
            label=capfirst(TreatmentSession._meta.get_field(name).verbose_name),
            before=shown(stored, name), after=shown(session, name), **signed,
        ) for name in changed),
        *(SessionAmendment(
            session=stored, field="adverse_events", label="Adverse event added", before="–",
            after=f"{description} ({severity})", **signed,
        ) for description, severity in added_events),
    ])
    session.version = read_version + 1
    session.save(update_fields=[*changed, "version"])
    # (snapshot of no field names is every field: only the changed ones are wanted)
    before = snapshot(stored, changed) if changed else {}
    after = snapshot(session, changed) if changed else {}
    if added_events:
        before["adverse_events"] = [[e.description, e.severity]
                                    for e in stored.adverse_events.order_by("id")]
        after["adverse_events"] = [*before["adverse_events"], *map(list, added_events)]
        AdverseEvent.objects.bulk_create(
            AdverseEvent(session=stored, description=description, severity=severity)
            for description, severity in added_events
        )
    label = AmendmentKind(kind).label
    record(user, Action.AMEND, session, patient_id=stored.course.patient_id,
           before=before, after=after, summary=f"{label}: {reason}" if reason else label)
    refresh_evaluation(stored.course)
    return amendments


@audited()
def void_session(user, session: TreatmentSession, *, read_version: int, reason: str) -> SessionVoid:
    """Void a session entered in error: kept, struck through, counted for nothing."""
    stored = _lock_for_correction(session.pk, read_version)
    void = SessionVoid.objects.create(
        session=stored, reason=reason, voided_by=user, voided_at=timezone.now()
    )
    TreatmentSession.objects.filter(pk=stored.pk).update(version=F("version") + 1)
    record(user, Action.VOID, stored, patient_id=stored.course.patient_id,
           before={"voided": False}, after={"voided": True, "reason": reason}, summary=reason)
    reopen_appointment(user, stored)
    refresh_evaluation(stored.course)
    return void


class FlagNotRaised(ValueError):
    """The flag is not raised on the course now: there is nothing to decide."""


@audited()
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
