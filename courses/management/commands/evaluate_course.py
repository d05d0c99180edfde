import sys

from django.core.management.base import BaseCommand, CommandError

from clinical.jsonio import InputError, evaluate_json
from courses.evaluation import engine_settings


class Command(BaseCommand):
    help = (
        "Evaluate one course given as JSON (its fields: clinical/jsonio.py; a file, or - for "
        "standard input) and "
        "print the evaluation as JSON. Bad input exits non-zero with one line naming the field."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the course JSON, or - for standard input")

    def handle(self, *args, file: str, **options):
        try:
            if file == "-":
                text = sys.stdin.read()
            else:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        try:
            output = evaluate_json(text, engine_settings())
        except InputError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(output)
