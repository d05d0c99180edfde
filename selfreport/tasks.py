"""Celery tasks of self-report. Beat runs :func:`send_due` every minute (settings)."""

from celery import shared_task

from selfreport import actions
from selfreport.models import Alert, Invitation


@shared_task
def send_due() -> int:
    """Make the invitations now due and send every delivery due (again): idempotent, so beat
    firing twice, or overlapping runs, send each email once."""
    actions.plan_due_slots()
    actions.release_stale_claims()
    invitations, alerts = actions.due(Invitation), actions.due(Alert)
    for pk in invitations:
        send_invitation.delay(pk)
    for pk in alerts:
        send_alert.delay(pk)
    return len(invitations) + len(alerts)


@shared_task
def send_invitation(pk: int) -> None:
    actions.deliver_invitation(pk)


@shared_task
def send_alert(pk: int) -> None:
    actions.deliver_alert(pk)
