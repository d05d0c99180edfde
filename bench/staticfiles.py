"""Collecting static files for a DEBUG-off benchmark run: production serves them through
whitenoise's manifest storage, which needs the manifest only ``collectstatic`` writes."""

from django.core.management import call_command


def collect() -> None:
    call_command("collectstatic", interactive=False, verbosity=0)
