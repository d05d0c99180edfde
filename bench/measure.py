"""The in-process benchmarks: pages through Django's test client beside the bare floor, the
rules engine's throughput, and the CSV export beside PostgreSQL's COPY of the same facts."""

import gc
import io
import math
import random
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from bench.generate import ADMIN, BIG_COURSE_SESSIONS, CLINICIAN, DESIGNATED_RECORD
from clinical.engine import evaluate
from courses.evaluation import as_stored, course_facts, engine_settings, refresh_evaluation
from courses.models import Course, FlagDecision, SessionVoid, TreatmentSession
from patients.models import Patient

QUERY_BUDGET = 12
# Statements that only open or close a transaction are not queries (as in tests/test_queries).
TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.IGNORECASE
)


def summary(seconds: list[float]) -> dict:
    """Median, 95th percentile (nearest rank) and mean, in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


# ---------------------------------------------------------------------------------------------
# Pages


def designated() -> dict:
    """The patient, course and users the page benchmarks read (see bench.generate)."""
    patient = Patient.objects.select_related("referring_provider").get(
        record_number=DESIGNATED_RECORD
    )
    course = (patient.courses.annotate(n=Count("sessions"))
              .filter(n=BIG_COURSE_SESSIONS).order_by("-started_on").first())
    return {
        "patient": patient,
        "course": course,
        "clinician": User.objects.get(username=CLINICIAN),
        "admin": User.objects.get(username=ADMIN),
        "referrer": patient.referring_provider,
    }


def verified_client(user: User) -> Client:
    """A test client logged in as ``user`` with the second factor given (as after /2fa/)."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def page_targets(found: dict) -> list[dict]:
    """Each page with its URL and reader; a page not built yet has ``missing`` instead."""
    clinician = verified_client(found["clinician"])
    pages = [
        ("floor", "bench-floor", [], clinician, "bare login-only view on the same stack"),
        ("patient_list", "patients:list", [], clinician, "first page of 25 patients"),
        ("patient_page", "patients:detail", [found["patient"].pk], clinician,
         "the designated patient (2 courses)"),
        ("course_page", "courses:detail", [found["course"].pk], clinician,
         f"course with {BIG_COURSE_SESSIONS} sessions"),
        ("referrer_report", "reports:patient", [found["patient"].pk],
         verified_client(found["referrer"]), "referring provider's report, same patient"),
        ("outcome_dashboard", "outcomes:dashboard", [], verified_client(found["admin"]),
         "clinic admin's outcome dashboard"),
        ("day_sheet", "clinic:day", [], clinician,
         "clinician's day sheet: today's appointments, the clinic's undecided flags"),
        ("unbooked", "clinic:unbooked", [], clinician,
         "first page of the courses with nothing booked"),
    ]
    targets = []
    for name, url_name, args, client, what in pages:
        try:
            url = reverse(url_name, args=args)
        except NoReverseMatch:
            targets.append({"name": name, "what": what,
                            "missing": f"{url_name} is not built yet (no such URL)"})
            continue
        targets.append({"name": name, "what": what, "url": url, "client": client})
    return targets


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries if not TRANSACTION_CONTROL.match(q["sql"])]


def benchmark_pages(requests: int = 50, warmup: int = 3, rendered_requests: int = 10,
                    log=print, only: set[str] | None = None) -> dict:
    """Median and p95 server time of each page over ``requests`` GETs, interleaved round by
    round with the floor so that every page meets the same conditions; queries counted on a
    separate request, so the capture does not slow the timed ones.

    The timed pages come from the fragment cache, as they do while a record is read again and
    again (ketacare.fragments); each page is also measured rendered, with the cache emptied
    before each of ``rendered_requests`` GETs, as after a change to what it shows. ``only``
    names the pages to measure (the floor always is)."""
    # DEBUG off serves pages as production does; "testserver" is the test client's host.
    with override_settings(ROOT_URLCONF="bench.urls",
                           ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        targets = [t for t in page_targets(designated())
                   if only is None or t["name"] in {"floor", *only}]
        live = [t for t in targets if "missing" not in t]
        results = {t["name"]: {"what": t["what"], "missing": t["missing"]}
                   for t in targets if "missing" in t}
        for target in live:
            for _ in range(warmup):
                _get(target)
            with CaptureQueriesContext(connection) as captured:
                _get(target)
            statements = _statements(captured.captured_queries)
            target["queries"] = len(statements)
            target["sql"] = [sql[:160] for sql in statements]
            target["times"] = []
        gc.collect()
        for round_ in range(requests):
            # Rotate the order so that no page always follows the same one.
            shift = round_ % len(live)
            for target in live[shift:] + live[:shift]:
                started = time.perf_counter()
                _get(target)
                target["times"].append(time.perf_counter() - started)
        floor = summary(next(t for t in live if t["name"] == "floor")["times"])
        for target in live:
            figures = summary(target["times"])
            results[target["name"]] = {
                "what": target["what"], "url": target["url"], "queries": target["queries"],
                **figures,
                "p95_vs_floor": round(figures["p95_ms"] / floor["p95_ms"], 2),
                "sql": target["sql"],
                **_rendered(target, rendered_requests),
            }
            page = results[target["name"]]
            log(f"  {target['name']:<18} {figures['median_ms']:>8.1f} ms median "
                f"{figures['p95_ms']:>8.1f} ms p95  {target['queries']:>3} queries; rendered "
                f"{page['rendered_median_ms']:>6.1f} ms median "
                f"{page['rendered_queries']:>3} queries")
    return {"requests": requests, "query_budget": QUERY_BUDGET, "pages": results}


def _rendered(target: dict, requests: int) -> dict:
    """Time and queries of ``target`` rendered (after a change: nothing in the cache)."""
    times = []
    for _ in range(requests):
        cache.clear()
        started = time.perf_counter()
        _get(target)
        times.append(time.perf_counter() - started)
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        _get(target)
    figures = summary(times)
    return {"rendered_median_ms": figures["median_ms"], "rendered_p95_ms": figures["p95_ms"],
            "rendered_queries": len(_statements(captured.captured_queries))}


def _get(target: dict) -> None:
    response = target["client"].get(target["url"], secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"{target['name']} ({target['url']}) answered "
                           f"{response.status_code}, not 200")


# ---------------------------------------------------------------------------------------------
# Rules engine


def benchmark_engine(courses: int = 2000, min_seconds: float = 2.0, seed: int = 1,
                     log=print) -> dict:
    """Evaluations per second of the pure engine, one process: the facts of ``courses``
    courses are read from the database first (course_facts, timed apart), then evaluate()
    runs over them until ``min_seconds`` of CPU time have passed. The rate is per second of
    this process's CPU time (time.process_time: one core, whatever else the machine runs),
    with the wall-clock rate beside it. Then the whole refresh after a save, on the course
    with 60 sessions (benchmark_refresh)."""
    ids = list(Course.objects.order_by("pk").values_list("pk", flat=True))
    sample = sorted(random.Random(seed).sample(ids, min(courses, len(ids))))
    started = time.perf_counter()
    facts = [course_facts(course)
             for course in Course.objects.select_related("patient").filter(pk__in=sample)]
    build = time.perf_counter() - started
    rules = engine_settings()

    def rate(step: Callable) -> tuple[float, float, int]:
        gc.collect()
        done, cpu, wall = 0, time.process_time(), time.perf_counter()
        while (elapsed := time.process_time() - cpu) < min_seconds or not done:
            for item in facts:
                step(item)
            done += len(facts)
        return done / elapsed, done / (time.perf_counter() - wall), done

    engine_rate, engine_wall_rate, evaluated = rate(lambda f: evaluate(f, rules))
    stored_rate, _, _ = rate(lambda f: as_stored(evaluate(f, rules)))
    result = {
        "courses": len(facts),
        "sessions_in_sample": sum(len(f.sessions) for f in facts),
        "evaluations": evaluated,
        "clock": "CPU time of this process (time.process_time)",
        "evaluations_per_second": round(engine_rate),
        "evaluations_per_wall_second": round(engine_wall_rate),
        "with_json_per_second": round(stored_rate),
        "facts_from_db_per_second": round(len(facts) / build),
    }
    log(f"  engine: {result['evaluations_per_second']:,} evaluations per CPU second "
        f"({result['evaluations_per_wall_second']:,}/s wall clock; "
        f"{result['with_json_per_second']:,}/s with the stored JSON; facts read from the "
        f"database at {result['facts_from_db_per_second']:,} courses/s)")
    result["refresh"] = benchmark_refresh(log=log)
    return result


def benchmark_refresh(requests: int = 50, warmup: int = 3, log=print) -> dict:
    """The whole refresh after a save (refresh_evaluation: the course's facts from the
    database, the engine, the stored columns) of the designated course with 60 sessions,
    each inside a transaction rolled back, so the data stay as generated; wall clock, and
    the statements of one refresh."""
    course = designated()["course"]
    times = []
    for attempt in range(warmup + requests):
        with transaction.atomic():
            fresh = Course.objects.select_related("patient").get(pk=course.pk)
            started = time.perf_counter()
            refresh_evaluation(fresh)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        if attempt >= warmup:
            times.append(elapsed)
    with transaction.atomic():
        fresh = Course.objects.select_related("patient").get(pk=course.pk)
        with CaptureQueriesContext(connection) as captured:
            refresh_evaluation(fresh)
        transaction.set_rollback(True)
    statements = _statements(captured.captured_queries)
    result = {"course_sessions": BIG_COURSE_SESSIONS, **summary(times),
              "queries": len(statements), "sql": [sql[:160] for sql in statements]}
    log(f"  refresh of the {BIG_COURSE_SESSIONS}-session course: {result['median_ms']} ms "
        f"median, {result['p95_ms']} ms p95, {result['queries']} queries")
    return result


# ---------------------------------------------------------------------------------------------
# CSV export and its COPY floor


class Discard(io.TextIOBase):
    """A file that counts what is written to it and keeps nothing."""

    def __init__(self):
        self.chars = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def _median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def copy_sql(last_id: int) -> str:
    """One CSV row per course, with the facts the export writes (course, patient record
    number, completed sessions' count, dates, routes and highest doses, the stored evaluation,
    decisions), computed and sent by PostgreSQL itself."""
    course, patient = Course._meta.db_table, Patient._meta.db_table
    session, decision = TreatmentSession._meta.db_table, FlagDecision._meta.db_table
    void = SessionVoid._meta.db_table
    last_id = int(last_id)
    return f"""COPY (
  SELECT p.record_number, c.id, c.started_on, c.ended_on, c.end_reason, c.phase,
         s.first_at, s.last_at, s.n, s.routes, s.mg_per_kg, s.mg, c.evaluation,
         c.evaluated_at, d.decisions
  FROM {course} c JOIN {patient} p ON p.id = c.patient_id
  LEFT JOIN (
    SELECT course_id, count(*) AS n, min(started_at) AS first_at, max(started_at) AS last_at,
           max(dose_mg_per_kg) AS mg_per_kg, max(dose_mg) AS mg,
           string_agg(DISTINCT route, ';' ORDER BY route) AS routes
    FROM {session} WHERE status = 'completed' AND course_id <= {last_id}
      AND NOT EXISTS (SELECT 1 FROM {void} v WHERE v.session_id = {session}.id)
    GROUP BY course_id
  ) s ON s.course_id = c.id
  LEFT JOIN (
    SELECT course_id, string_agg(code || ' ' || decision, ';' ORDER BY decided_at) AS decisions
    FROM {decision} WHERE course_id <= {last_id} GROUP BY course_id
  ) d ON d.course_id = c.id
  WHERE c.id <= {last_id} ORDER BY c.id
) TO STDOUT WITH (FORMAT csv, HEADER)"""


def copy_floor(last_id: int) -> tuple[int, int]:
    """(rows, bytes) of the COPY, read through psycopg 3 into a discarding sink."""
    size = rows = 0
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql(last_id)) as copy:
        for block in copy:
            size += len(block)
            rows += bytes(block).count(b"\n")
    return rows - 1, size  # less the header


def benchmark_export(sizes: tuple[int, ...] = (2000, 10000), repeats: int = 3,
                     log=print) -> dict:
    try:
        from exports.summaries import write_csv
    except ImportError:
        log("  export: not built yet (exports.summaries.write_csv)")
        return {"missing": "exports.summaries.write_csv is not built yet"}
    ids = list(Course.objects.order_by("pk").values_list("pk", flat=True))
    runs = []
    for wanted in sizes:
        n = min(wanted, len(ids))
        if not n or any(run["courses"] == n for run in runs):
            continue
        courses = Course.objects.filter(pk__lte=ids[n - 1])
        seconds, rows = _median_seconds(lambda c=courses: write_csv(c, Discard()), repeats)
        tracemalloc.start()
        write_csv(courses, Discard())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        run = {"requested": wanted, "courses": n, "rows": rows, "seconds": round(seconds, 3),
               "rows_per_second": round(rows / seconds), "peak_memory_mb": round(peak / 2**20, 2)}
        if connection.vendor == "postgresql":
            copy_seconds, (copy_rows, copy_bytes) = _median_seconds(
                lambda last=ids[n - 1]: copy_floor(last), repeats)
            run.update(copy_seconds=round(copy_seconds, 3), copy_rows=copy_rows,
                       copy_bytes=copy_bytes, vs_copy=round(seconds / copy_seconds, 1))
        else:
            run.update(copy_skipped="needs PostgreSQL (COPY)")
        runs.append(run)
        log(f"  export of {n:,} courses: {seconds:.2f} s, peak {run['peak_memory_mb']} MB"
            + (f"; COPY {run['copy_seconds']:.3f} s ({run['vs_copy']}×)"
               if "copy_seconds" in run else "; COPY needs PostgreSQL"))
    return {"runs": runs, "repeats": repeats}
