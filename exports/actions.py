"""Asking for an export and handing it out; both are audited (who, what, when)."""

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from audit.log import audited, record, snapshot
from audit.models import Action
from exports.models import Export

# What publishing a message raises when the broker is down or unreachable.
ENQUEUE_ERRORS = (BrokerError, RedisError, OSError)

FILTER_FIELDS = ["started_from", "started_to", "statuses", "routes", "include_pdfs"]


@audited()
def request_export(user, export: Export) -> Export:
    """Save ``export`` and queue its build once the row is committed (a worker that looked
    before the commit would not find it)."""
    from exports.tasks import build_export

    export.requested_by = user
    export.save()
    record(user, Action.EXPORT, export, summary=f"asked for course summaries: "
           f"{export.filters_display()}", after=snapshot(export, FILTER_FIELDS))
    transaction.on_commit(lambda: enqueue(build_export, str(export.pk)))
    return export


def enqueue(task, export_id: str, attempt: int = 1, countdown: float = 0) -> bool:
    """Hand the export to the worker; when the broker cannot take it (Redis down), fail the
    export at once with a message that says so, so the page offers "Run it again" instead of
    showing "queued" forever (the broker gives up within seconds: CELERY_BROKER_* settings)."""
    from exports.tasks import fail, log_failure

    try:
        task.apply_async((export_id, attempt), countdown=countdown)
    except ENQUEUE_ERRORS as exc:
        log_failure(export_id, exc)
        fail(export_id, "The export could not be handed to the export worker (the task queue "
                        "did not answer). Nothing was built. Run it again in a moment; if it "
                        "fails again, tell your system administrator.")
        return False
    return True


@audited()
def record_download(user, export: Export) -> None:
    record(user, Action.DOWNLOAD, export,
           summary=f"downloaded course summaries ({export.kind}, {export.filters_display()})")
