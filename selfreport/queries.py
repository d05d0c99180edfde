"""What other pages read of self-report.

The day sheet (SPEC §7) lists invitations that could not be sent with
:func:`failed_invitations` (and alert emails with :func:`failed_alerts`); the course page shows
the box :func:`course_box` fills.
"""

from django.conf import settings
from django.db.models import CharField, Count, F, Max, Q, Value

from courses.models import Course
from ketacare.prepared import Prepared, prepared
from selfreport.actions import readiness
from selfreport.forms import PlanForm
from selfreport.models import Alert, Invitation, InvitationQuerySet, Plan, Status


def failed_invitations() -> InvitationQuerySet:
    """Invitations that could not be sent after every retry, of running plans of courses that
    have not ended, newest first, each with its course and patient (one query). One shows until
    a clinician sends it again (the course page's "Send again") or stops its plan."""
    return Invitation.objects.failed().select_related("course__patient", "plan").order_by(
        "-due_at", "-id"
    )


def failed_alerts():
    """Alert emails (self-report question 9 at 1 or more) that could not be sent after every
    retry, for courses that have not ended; their flag, SUICIDAL_IDEATION, is on the course."""
    return Alert.objects.filter(status=Status.FAILED, course__ended_on__isnull=True) \
        .select_related("course__patient").order_by("-created_at", "-id")


def course_box(course: Course) -> dict:
    """What the course page's self-report box shows, in one query: each plan (running ones
    first) with how many of its invitations were sent, answered and could not be sent, and
    how many alerts its answers raised could not be emailed (the joins are one to one, so the
    counts do not multiply)."""
    alert = "invitations__assessment__self_report_alert__status"
    patient = course.patient
    if not (patient.email and patient.self_report_consent_on):
        # No plan can run without both (and most patients have neither): no query, so the
        # course page of such a patient keeps its budget.
        return _box(course, [])
    plans = (
        Plan.objects.filter(course=course).select_related("created_by")
        .annotate(
            sent=Count("invitations", filter=Q(invitations__status__in=[Status.SENT,
                                                                         Status.ANSWERED])),
            answered=Count("invitations", filter=Q(invitations__status=Status.ANSWERED)),
            failed=Count("invitations", filter=Q(invitations__status=Status.FAILED)),
            waiting=Count("invitations", filter=Q(invitations__status__in=[Status.PENDING,
                                                                            Status.SENDING])),
            last_sent=Max("invitations__sent_at"),
            last_error=Max("invitations__last_error",
                           filter=Q(invitations__status=Status.FAILED)),
            alerts_failed=Count(alert, filter=Q(**{alert: Status.FAILED})),
        )
        .order_by(F("stopped_at").asc(nulls_first=True), "-created_at", "-id")[:8]
    )
    return _box(course, list(plans))


def _box(course: Course, plans: list) -> dict:
    return {
        "self_report_plans": plans,
        "self_report_blocked": readiness(course),
        "self_report_form": PlanForm(),
        "self_report_hours": settings.SELF_REPORT_LINK_HOURS,
    }


def failed_emails(limit: int) -> Prepared:
    """What the day sheet lists, in one query: invitations and alerts that could not be sent,
    newest first, each (``.dicts()``) as ``kind`` ("invitation" or "alert"), ``course_id``,
    ``last``, ``first`` (the patient's names) and ``when``. Compiled once per process (for
    each ``limit``): the union costs more to build than to run."""
    return prepared(("failed emails", limit), lambda: _failed_emails(limit))


def _failed_emails(limit: int):
    def rows(queryset, kind: str, when: str):
        return queryset.order_by().annotate(
            kind=Value(kind, output_field=CharField()), last=F("course__patient__last_name"),
            first=F("course__patient__first_name"), when=F(when),
        ).values("kind", "course_id", "last", "first", "when")

    invitations = rows(failed_invitations(), "invitation", "due_at")
    alerts = rows(failed_alerts(), "alert", "created_at")
    return invitations.union(alerts, all=True).order_by("-when")[:limit]
