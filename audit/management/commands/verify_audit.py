"""``manage.py verify_audit``: recompute the audit trail's hash chain (ONC 170.315(d)(2)-(d)(3)).

Exits 0 with the number of records when every record is present and unaltered; otherwise exits
non-zero naming the first record that was altered, or that follows a removed one. Run it from
cron or CI; a failure means the trail was changed outside the application.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.log import verify_chain
from audit.models import AuditEvent


class Command(BaseCommand):
    help = "Check that no audit record was altered or removed (recomputes the hash chain)."

    def handle(self, *args, **options) -> None:
        problem = verify_chain()  # reads the chain head first: rows written meanwhile are ignored
        if problem is not None:
            raise CommandError(f"Audit trail NOT intact: {problem}")
        count = AuditEvent.objects.count()
        noun = "record" if count == 1 else "records"
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {count} {noun}"))
