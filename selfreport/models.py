"""Patient self-report between sessions (SPEC §9): invitation plans and the invitations sent.

A clinician sets a course's :class:`Plan` (once now, weekly, or 2 and 7 days after each
maintenance session). Celery beat turns each plan's due slots into :class:`Invitation` rows, one
per slot (a unique constraint, so beat firing twice or two workers racing still make one), and
emails each a single-use link. Only the SHA-256 of the link's token is stored.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from assessments.models import Assessment
from courses.models import Course


class Schedule(models.TextChoices):
    ONCE = "once", "Once, now"
    AFTER_MAINTENANCE = "after_maintenance", "2 and 7 days after each maintenance session"
    WEEKLY = "weekly", "Weekly"


class PlanQuerySet(models.QuerySet):
    def active(self) -> "PlanQuerySet":
        return self.filter(stopped_at__isnull=True)


class Plan(models.Model):
    """A clinician's request that a course's patient be invited to self-report."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="self_report_plans")
    schedule = models.CharField(max_length=20, choices=Schedule.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One running plan of each recurring schedule per course.
            models.UniqueConstraint(
                fields=["course", "schedule"], name="selfreport_one_running_plan",
                condition=models.Q(stopped_at__isnull=True) & ~models.Q(schedule="once"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_schedule_display()} for course {self.course_id}"

    @property
    def is_active(self) -> bool:
        return self.stopped_at is None

    @property
    def next_weekly(self):
        """When a running weekly plan's next invitation is due (None for other plans)."""
        if self.schedule != Schedule.WEEKLY or not self.is_active:
            return None
        week = timedelta(days=7)
        return self.created_at + week * max(1, math.ceil((timezone.now() - self.created_at) / week))


class Status(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Could not be sent"
    ANSWERED = "answered", "Answered"
    CANCELLED = "cancelled", "Not sent"


class Delivery(models.Model):
    """An email to send, retried with backoff (selfreport.delivery): claimed by one worker at
    a time with a conditional UPDATE, so two workers never send the same one."""

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Why the last attempt failed: the error's kind and SMTP code, never an address.
    last_error = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class InvitationQuerySet(models.QuerySet):
    def failed(self) -> "InvitationQuerySet":
        """Invitations that could not be sent after every retry, of running plans of courses
        that have not ended, of patients still with an email and consent: what the course page
        and the day sheet show until a clinician sends it again or stops the plan."""
        return self.filter(
            status=Status.FAILED, plan__stopped_at__isnull=True, course__ended_on__isnull=True
        ).exclude(course__patient__email="").exclude(course__patient__self_report_consent_on=None)


class Invitation(Delivery):
    """One slot of a plan: one email with a single-use link, and at most one answer."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="invitations")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="+")
    # Which slot of the plan: "once", "week-3", "session-41-day-2". Unique per plan.
    slot = models.CharField(max_length=40)
    due_at = models.DateTimeField()
    # SHA-256 (hex) of the link's token; the token itself is only ever in the email.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    assessment = models.OneToOneField(
        Assessment, null=True, blank=True, on_delete=models.PROTECT,
        related_name="self_report_invitation",
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "slot"], name="selfreport_one_per_slot"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"invitation {self.slot} of plan {self.plan_id}"

    @property
    def is_open(self) -> bool:
        """The link works: sent, not answered, not expired."""
        return (
            self.status == Status.SENT
            and self.expires_at is not None
            and self.expires_at > timezone.now()
        )


class Alert(Delivery):
    """The clinic's email when a self-report's item 9 is 1 or more: no patient data in it,
    only a link to the course (login required)."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="+")
    assessment = models.OneToOneField(
        Assessment, on_delete=models.PROTECT, related_name="self_report_alert"
    )
    created_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveSmallIntegerField(default=0)  # how many clinicians it went to

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"self-report alert for course {self.course_id}"
