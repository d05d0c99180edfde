import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench import load, measure, report
from bench.generate import (
    DEFAULT_SEED,
    DESIGNATED_RECORD,
    NAMED_SCALES,
    NotAScratchDatabase,
    Scale,
    generate,
)
from patients.models import Patient


class Command(BaseCommand):
    help = (
        "Run every benchmark on the benchmark data (pages rendered and cached beside the bare "
        "floor, the write path, rules engine, CSV export beside COPY, gunicorn load runs), "
        "print a table, write JSON, and exit non-zero when a target is missed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true",
                            help="(re)generate the data first, at --scale with --seed")
        parser.add_argument("--scale", default="default",
                            help=f"with --generate: {', '.join(NAMED_SCALES)} or a factor")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--requests", type=int, default=50,
                            help="timed requests per page (default 50)")
        parser.add_argument("--engine-courses", type=int, default=2000)
        parser.add_argument("--export-sizes", default="2000,10000",
                            help="courses per export run, comma-separated (default 2000,10000)")
        parser.add_argument("--repeats", type=int, default=3,
                            help="export and COPY runs per size; the median counts")
        parser.add_argument("--write-requests", type=int, default=30,
                            help="sessions logged on the 200-session course, each followed by "
                            "the course page (default 30; removed afterwards)")
        parser.add_argument("--load-seconds", type=float, default=60)
        parser.add_argument("--load-clients", type=int, default=200)
        parser.add_argument("--think-ms", default="3000-6000",
                            help="each load client's pause between requests, drawn between "
                            "MIN-MAX ms (default 3000-6000: a clinician reading the page)")
        parser.add_argument("--saturation-clients", type=int, default=20,
                            help="clients of the second load run, with no pauses (default 20; "
                            "0 skips it)")
        parser.add_argument("--saturation-seconds", type=float, default=30)
        parser.add_argument("--workers", type=int, default=5, help="gunicorn workers")
        parser.add_argument("--conn-max-age", type=int, default=None,
                            help="gunicorn's DATABASE_URL gets ?conn_max_age=N (default: as "
                            "configured)")
        parser.add_argument("--skip-load", action="store_true")
        parser.add_argument("--no-fail", action="store_true",
                            help="exit 0 even when a target is missed (a smoke run)")
        parser.add_argument("--only", default="pages,write,engine,export,load",
                            help="sections to run, comma-separated (default: all)")
        parser.add_argument("--pages", default="",
                            help="with the pages section: only these pages, comma-separated "
                            "(e.g. day_sheet,unbooked; the floor is always measured)")
        parser.add_argument("--json", default=str(settings.BASE_DIR / "var" / "bench.json"),
                            help="where to write the JSON (default var/bench.json)")

    def handle(self, *args, **options):
        log = self.stdout.write
        results = {"machine": report.machine()}
        if options["generate"]:
            log("== generate")
            try:
                results["generate"] = generate(Scale.of(options["scale"]), options["seed"],
                                               replace=True, log=log)
            except (NotAScratchDatabase, ValueError) as error:
                raise CommandError(str(error)) from None
        if not Patient.objects.filter(record_number=DESIGNATED_RECORD).exists():
            raise CommandError("No benchmark data here: run `manage.py bench_generate` first "
                               "(or pass --generate).")
        if not settings.DEBUG:
            # Production serves static files from the collected manifest; pages fail without.
            call_command("collectstatic", interactive=False, verbosity=0)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # Each run starts where the generator leaves the data: vacuumed, as autovacuum
            # keeps a live server within a minute or so. A previous run's writes (the write
            # path, the load run's sessions and re-evaluated courses) leave rows it has not
            # reached yet, and the dashboard's index-only reads then read table rows too.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
        results["data"] = report.data_counts()
        only = set(options["only"].split(","))
        if "pages" in only:
            log("== pages (test client, DEBUG " + ("on" if settings.DEBUG else "off") + ")")
            chosen = {name for name in options["pages"].split(",") if name}
            results["pages"] = measure.benchmark_pages(options["requests"], log=log,
                                                       only=chosen or None)
        if "write" in only:
            log("== write path (log a session, then the course page)")
            results["write"] = measure.benchmark_write_path(options["write_requests"], log=log)
        if "engine" in only:
            log("== rules engine")
            results["engine"] = measure.benchmark_engine(options["engine_courses"], log=log)
        if "export" in only:
            log("== CSV export")
            sizes = tuple(int(size) for size in options["export_sizes"].split(","))
            results["export"] = measure.benchmark_export(sizes, options["repeats"], log=log)
        if options["skip_load"]:
            results["load"] = {"skipped": "--skip-load"}
        elif "load" in only:
            low, _, high = options["think_ms"].partition("-")
            think = (float(low), float(high or low))
            log(f"== load run (gunicorn on 127.0.0.1), {options['load_clients']} clients "
                f"pausing {options['think_ms']} ms")
            results["load"] = load.run_load(
                options["load_seconds"], options["load_clients"], think, options["workers"],
                options["seed"], conn_max_age=options["conn_max_age"], log=log,
            )
            if options["saturation_clients"]:
                log(f"== saturation run, {options['saturation_clients']} clients, no pauses")
                results["saturation"] = load.run_load(
                    options["saturation_seconds"], options["saturation_clients"], (0, 0),
                    options["workers"], options["seed"], conn_max_age=options["conn_max_age"],
                    log=log,
                )
        results["targets"] = report.check_targets(results)
        path = Path(options["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log("")
        log(report.table(results))
        log(f"\nJSON: {path}")
        missed = [check["target"] for check in results["targets"] if check["met"] is False]
        if missed and not options["no_fail"]:
            raise CommandError(f"{len(missed)} target(s) missed: " + "; ".join(missed))
