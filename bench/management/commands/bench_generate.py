from datetime import date

from django.core.management.base import BaseCommand, CommandError

from bench.generate import DEFAULT_SEED, NAMED_SCALES, NotAScratchDatabase, Scale, generate


class Command(BaseCommand):
    help = (
        "Fill a benchmark database with a synthetic clinic network (bulk inserts, seeded). "
        "Refuses any database whose name does not contain 'bench'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", default="default",
            help=f"{', '.join(NAMED_SCALES)} or a factor of the default (5,000 patients, "
            "8,000 courses, 60,000 sessions, 120,000 assessments); default: default",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--today", type=date.fromisoformat, default=None,
                            help="date the data is counted back from (default: today)")
        parser.add_argument("--replace", action="store_true",
                            help="empty the benchmark database first")

    def handle(self, *args, scale, seed, today, replace, **options):
        try:
            size = Scale.of(scale)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Generating scale {size.factor}: {size.patients:,} patients, "
                          f"{size.courses:,} courses, {size.sessions:,} sessions, "
                          f"{size.assessments:,} assessments (seed {seed})")
        try:
            result = generate(size, seed, today, replace=replace, log=self.stdout.write)
        except NotAScratchDatabase as error:
            raise CommandError(str(error)) from None
        self.stdout.write("Rows: " + ", ".join(f"{v:,} {k}" for k, v in result["rows"].items()))
