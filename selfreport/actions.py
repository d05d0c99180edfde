"""State changes of self-report (STYLE 3): each atomic, each audited against the patient, so
the course page (cached under the record's audit version) shows them at once.

- a clinician sets up or stops a plan, or sends a failed invitation again;
- beat plans the due slots of each plan, one invitation per slot (:func:`plan_due_slots`);
- a worker sends an invitation or an alert, retried with backoff
  (:func:`deliver_invitation`, :func:`deliver_alert`);
- the patient answers through the link (:func:`submit_self_report`): single use even when two
  answers arrive at once.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role, User
from assessments.actions import sign_self_report
from assessments.models import Assessment
from audit.log import audited, record, snapshot
from audit.models import Action
from clinical.vocab import Instrument, Phase, SessionStatus
from courses.models import Course
from selfreport import links, messages
from selfreport.models import Alert, Delivery, Invitation, Plan, Schedule, Status

log = logging.getLogger(__name__)

SENDER = "self-report mailer"  # the audit's actor for what the worker does
SUICIDE_ITEM = 9  # PHQ-9 item 9: thoughts that you would be better off dead or of hurting...
STALE_CLAIM = timedelta(minutes=15)  # a claim this old is a worker that died mid-send


class NotReady(ValueError):
    """The patient cannot be invited: say why in the clinician's words."""


def readiness(course: Course) -> str:
    """Why the course's patient cannot be invited now, or "" when they can."""
    patient = course.patient
    if not course.is_active:
        return "The course has ended."
    if not patient.email:
        return "Add the patient's email address first."
    if patient.self_report_consent_on is None:
        return "Record the date the patient agreed to self-report by email first."
    return ""


# -- clinicians ----------------------------------------------------------------------------------

@audited()
def start_plan(user, course: Course, schedule: Schedule) -> Plan:
    """Invite the course's patient: once now, or on a schedule. A once-now invitation is sent
    as soon as this commits; scheduled ones by beat when due."""
    # The course row serializes two clinicians inviting at once (one running plan per schedule).
    course = (
        Course.objects.select_for_update(of=("self",)).select_related("patient").get(pk=course.pk)
    )
    reason = readiness(course)
    if reason:
        raise NotReady(reason)
    if schedule != Schedule.ONCE and course.self_report_plans.active().filter(
        schedule=schedule
    ).exists():
        raise NotReady(f"“{Schedule(schedule).label}” is already running for this course.")
    plan = Plan.objects.create(course=course, schedule=schedule, created_by=user)
    record(user, Action.CREATE, plan, patient_id=course.patient_id, after=snapshot(plan),
           summary=f"self-report: {plan.get_schedule_display()}")
    if schedule == Schedule.ONCE:
        invitation = Invitation.objects.create(
            plan=plan, course=course, slot="once", due_at=plan.created_at,
            next_attempt_at=plan.created_at,
        )
        _queue(send_invitation_task(), invitation.pk)
    return plan


@audited()
def stop_plan(user, plan: Plan) -> Plan:
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    if plan.stopped_at is not None:
        return plan
    before = snapshot(plan, ["stopped_at", "stopped_by"])
    plan.stopped_at, plan.stopped_by = timezone.now(), user
    plan.save(update_fields=["stopped_at", "stopped_by"])
    # What was not sent yet will not be.
    plan.invitations.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    record(user, Action.END, plan, patient_id=plan.course.patient_id, before=before,
           after=snapshot(plan, ["stopped_at", "stopped_by"]),
           summary=f"self-report stopped: {plan.get_schedule_display()}")
    return plan


@audited()
def send_again(user, plan: Plan) -> int:
    """Send the plan's failed invitations again, with fresh retries; returns how many."""
    reason = readiness(plan.course)
    if reason:
        raise NotReady(reason)
    failed = list(plan.invitations.select_for_update().filter(status=Status.FAILED))
    now = timezone.now()
    for invitation in failed:
        invitation.status, invitation.attempts = Status.PENDING, 0
        invitation.next_attempt_at, invitation.last_error = now, ""
        invitation.save(update_fields=["status", "attempts", "next_attempt_at", "last_error"])
        record(user, Action.UPDATE, invitation, patient_id=plan.course.patient_id,
               summary="self-report invitation to be sent again")
        _queue(send_invitation_task(), invitation.pk)
    return len(failed)


# -- beat ----------------------------------------------------------------------------------------

def slots(plan: Plan, maintenance_sessions: list[tuple[int, datetime]], now: datetime) -> list:
    """The plan's slots due by ``now``, as (slot, due_at). Slots due before the plan began, or
    so long ago that their link would already have expired, are not sent late."""
    start, oldest = plan.created_at, now - links.lifetime()
    found = []
    if plan.schedule == Schedule.ONCE:
        found.append(("once", start))
    elif plan.schedule == Schedule.WEEKLY:
        week = timedelta(days=7)
        first = max(1, int((oldest - start) / week))
        number = first
        while start + number * week <= now:
            found.append((f"week-{number}", start + number * week))
            number += 1
    elif plan.schedule == Schedule.AFTER_MAINTENANCE:
        for session_pk, at in maintenance_sessions:
            for days in (2, 7):
                found.append((f"session-{session_pk}-day-{days}", at + timedelta(days=days)))
    return [(slot, due) for slot, due in found if start <= due <= now and due > oldest]


def _maintenance_sessions(course: Course) -> list[tuple[int, datetime]]:
    """(id, start) of the course's completed sessions on or after the day maintenance began."""
    if course.phase != Phase.MAINTENANCE or course.maintenance_started_on is None:
        return []
    return [
        (pk, at) for pk, at in course.sessions.filter(status=SessionStatus.COMPLETED)
        .order_by("started_at").values_list("pk", "started_at")
        if timezone.localtime(at).date() >= course.maintenance_started_on
    ]


def plan_due_slots(now: datetime | None = None) -> int:
    """Make the invitation of every slot now due, once: the unique (plan, slot) constraint
    keeps a second beat, or a second worker, from making another. Returns how many it made."""
    now = now or timezone.now()
    plans = (
        Plan.objects.active().exclude(schedule=Schedule.ONCE)
        .filter(course__ended_on__isnull=True)
        .exclude(course__patient__self_report_consent_on=None)
        .exclude(course__patient__email="")
        .select_related("course")
    )
    made = 0
    for plan in plans:
        sessions = (
            _maintenance_sessions(plan.course)
            if plan.schedule == Schedule.AFTER_MAINTENANCE else []
        )
        for slot, due in slots(plan, sessions, now):
            if _make_slot(plan, slot, due):
                made += 1
    return made


def _make_slot(plan: Plan, slot: str, due: datetime) -> bool:
    try:
        with audited():
            invitation = Invitation.objects.create(
                plan=plan, course=plan.course, slot=slot, due_at=due, next_attempt_at=due
            )
            record(SENDER, Action.CREATE, invitation, patient_id=plan.course.patient_id,
                   summary=f"self-report invitation due ({plan.get_schedule_display()})")
    except IntegrityError:  # made already, by an earlier or a concurrent beat
        return False
    return True


def release_stale_claims(now: datetime | None = None) -> None:
    """A worker that died mid-send leaves its claim: after STALE_CLAIM it is tried again."""
    now = now or timezone.now()
    for model in (Invitation, Alert):
        model.objects.filter(status=Status.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
            status=Status.PENDING, next_attempt_at=now
        )


def due(model: type[Delivery], now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        model.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:500]
    )


# -- workers -------------------------------------------------------------------------------------

def _claim(model: type[Delivery], pk: int, now: datetime) -> bool:
    """Take the delivery for this worker: a conditional UPDATE, so of two workers (or two
    beats) exactly one gets it."""
    return model.objects.filter(
        pk=pk, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, claimed_at=now) == 1


class CannotSend(Exception):
    """A reason of KetaCare's own, with no address in it: shown as it is."""


def _error_kind(error: Exception) -> str:
    """What went wrong, without the message (an SMTP refusal names the address)."""
    if isinstance(error, CannotSend):
        return str(error)[:100]
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__}{f' {code}' if code else ''}"[:100]


def deliver_invitation(pk: int) -> None:
    """Send one due invitation with a fresh link; on failure, schedule the next try."""
    now = timezone.now()
    if not _claim(Invitation, pk, now):
        return
    invitation = Invitation.objects.select_related("course__patient", "plan").get(pk=pk)
    course = invitation.course
    if invitation.plan.stopped_at is not None or readiness(course):
        with audited():
            Invitation.objects.filter(pk=pk).update(status=Status.CANCELLED)
            record(SENDER, Action.SEND_FAILED, invitation, patient_id=course.patient_id,
                   summary=f"self-report invitation not sent: {readiness(course) or 'stopped'}")
        return
    token = links.new_token()
    # The hash is stored before sending (a new link per try: an earlier try's link, perhaps
    # delivered after all, stops working). The link works once the status says sent.
    Invitation.objects.filter(pk=pk).update(token_hash=links.digest(token), expires_at=None)
    _send(invitation, lambda: messages.invitation(course.patient.email, links.url(token)),
          course.patient_id, "self-report invitation")


def deliver_alert(pk: int) -> None:
    now = timezone.now()
    if not _claim(Alert, pk, now):
        return
    alert = Alert.objects.select_related("course").get(pk=pk)
    addresses = responsible_addresses(alert.course)

    def message():
        if not addresses:
            raise CannotSend("no clinician has an email address")
        return messages.alert(addresses, alert.course_id)

    Alert.objects.filter(pk=pk).update(recipients=len(addresses))
    _send(alert, message, alert.course.patient_id, "self-report alert to the clinician")


def _send(delivery: Delivery, message: Callable, patient_id: int, what: str) -> None:
    model = type(delivery)
    try:
        if not settings.SITE_URL:
            raise CannotSend("SITE_URL is not set")
        message().send()
    except Exception as error:  # any failure is retried, then shown on the course
        kind = _error_kind(error)
        log.warning("%s %s: attempt %s failed: %s", what, delivery.pk, delivery.attempts + 1,
                    kind)
        _attempt_failed(model, delivery.pk, kind, patient_id, what)
        return
    sent = timezone.now()
    # An invitation's link works from now for the link lifetime.
    expiry = {"expires_at": links.expiry(sent)} if model is Invitation else {}
    with audited():
        model.objects.filter(pk=delivery.pk).update(
            status=Status.SENT, sent_at=sent, attempts=delivery.attempts + 1, last_error="",
            **expiry,
        )
        record(SENDER, Action.SEND, delivery, patient_id=patient_id, summary=f"{what} emailed")


@audited()
def _attempt_failed(model: type[Delivery], pk: int, kind: str, patient_id: int,
                    what: str) -> None:
    delivery = model.objects.select_for_update().get(pk=pk)
    delivery.attempts += 1
    delivery.last_error = kind
    backoff = settings.SELF_REPORT_RETRY_MINUTES
    if delivery.attempts <= len(backoff):
        delivery.status = Status.PENDING
        wait = timedelta(minutes=backoff[delivery.attempts - 1])
        delivery.next_attempt_at = timezone.now() + wait
        summary = f"{what}: try {delivery.attempts} failed ({kind}); trying again"
    else:
        delivery.status = Status.FAILED
        summary = f"{what} could not be sent after {delivery.attempts} tries ({kind})"
    delivery.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
    record(SENDER, Action.SEND_FAILED, delivery, patient_id=patient_id, summary=summary)


def responsible_addresses(course: Course) -> list[str]:
    """Who is alerted: the clinician of the course's latest session, else the one who started
    the course, else every clinician (active, with an email address)."""
    clinicians = User.objects.filter(role=Role.CLINICIAN, is_active=True).exclude(email="")
    latest = course.sessions.order_by("-started_at").values_list("clinician", flat=True).first()
    for pk in (latest, course.created_by_id):
        found = clinicians.filter(pk=pk).values_list("email", flat=True).first()
        if found:
            return [found]
    return list(clinicians.order_by("pk").values_list("email", flat=True))


# -- the patient ---------------------------------------------------------------------------------

@audited()
def submit_self_report(invitation_pk: int, items: list[int], difficulty: str) -> Assessment | None:
    """Record the patient's answers as a self-reported PHQ-9 of the course, or None when the
    link no longer works. Single use: a conditional UPDATE takes the invitation from sent to
    answered, and of two answers sent at once only one finds it still sent (PostgreSQL makes
    the second wait for the first's row lock, then re-reads the row)."""
    now = timezone.now()
    taken = Invitation.objects.filter(
        pk=invitation_pk, status=Status.SENT, expires_at__gt=now
    ).update(status=Status.ANSWERED, answered_at=now)
    if not taken:
        return None
    invitation = Invitation.objects.select_related("course__patient").get(pk=invitation_pk)
    assessment = sign_self_report(Assessment(
        course=invitation.course, instrument=Instrument.PHQ9, administered_at=now,
        items=items, difficulty=difficulty,
    ))
    invitation.assessment = assessment
    invitation.save(update_fields=["assessment"])
    if items[SUICIDE_ITEM - 1] >= 1:
        # SUICIDAL_IDEATION is already on the course (the engine, in sign_self_report); the
        # clinician is emailed as soon as this commits.
        alert = Alert.objects.create(course=invitation.course, assessment=assessment)
        record(SENDER, Action.CREATE, alert, patient_id=invitation.course.patient_id,
               summary="self-report alert: PHQ-9 item 9 is 1 or more")
        _queue(send_alert_task(), alert.pk)
    return assessment


def _queue(task, pk: int) -> None:
    """Send as soon as the change commits. If the broker cannot take it, beat sends it within
    the minute (it is pending and due): the clinician's or the patient's page does not fail."""

    def send() -> None:
        try:
            task.delay(pk)
        except Exception as error:
            log.warning("self-report email %s left for beat: %s", pk, type(error).__name__)

    transaction.on_commit(send)


def send_invitation_task():
    from selfreport.tasks import send_invitation  # tasks import this module

    return send_invitation


def send_alert_task():
    from selfreport.tasks import send_alert

    return send_alert
