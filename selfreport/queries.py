"""What other pages read of self-report.

The day sheet (SPEC §7) lists invitations that could not be sent with
:func:`failed_invitations`; the course page reads its own box (``selfreport.views.course_box``).
"""

from selfreport.models import Invitation, InvitationQuerySet


def failed_invitations() -> InvitationQuerySet:
    """Invitations that could not be sent after every retry, of running plans of courses that
    have not ended, newest first, each with its course and patient (one query). One shows until
    a clinician sends it again (the course page's "Send again") or stops its plan."""
    return Invitation.objects.failed().select_related("course__patient", "plan").order_by(
        "-due_at", "-id"
    )
