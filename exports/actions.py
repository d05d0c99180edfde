"""Asking for an export and handing it out; both are audited (who, what, when)."""

from django.db import transaction

from audit.log import record, snapshot
from audit.models import Action
from exports.models import Export

FILTER_FIELDS = ["started_from", "started_to", "statuses", "routes", "include_pdfs"]


@transaction.atomic
def request_export(user, export: Export) -> Export:
    """Save ``export`` and queue its build once the row is committed (a worker that looked
    before the commit would not find it)."""
    from exports.tasks import build_export

    export.requested_by = user
    export.save()
    record(user, Action.EXPORT, export, summary=f"asked for course summaries: "
           f"{export.filters_display()}", after=snapshot(export, FILTER_FIELDS))
    transaction.on_commit(lambda: build_export.delay(str(export.pk)))
    return export


@transaction.atomic
def record_download(user, export: Export) -> None:
    record(user, Action.DOWNLOAD, export,
           summary=f"downloaded course summaries ({export.kind}, {export.filters_display()})")
