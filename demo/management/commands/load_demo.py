from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.clinic import DEMO_PASSWORD, STAFF, load_demo_clinic


class Command(BaseCommand):
    help = "Load the synthetic demo clinic (idempotent). Development only."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production", action="store_true",
            help="Load even with DEBUG off (never on a server holding real patients).",
        )

    def handle(self, *args, allow_production=False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "The demo clinic has well-known passwords: load it only with DEBUG=1."
            )
        _, created = load_demo_clinic()
        self.stdout.write(f"Demo clinic: {len(created)} synthetic patients added.")
        self.stdout.write("Log in at http://127.0.0.1:8000 with any of these (synthetic) users:")
        for username, *_, role, _credentials in STAFF:
            self.stdout.write(f"  {username:<10} {DEMO_PASSWORD}   {role.label}")
        self.stdout.write(
            "Clinicians and admins then give a two-factor code: `python manage.py demo_code` "
            "prints the current one (or add the key GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ to an "
            "authenticator app). It works only with DEBUG=1."
        )
