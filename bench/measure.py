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
from contextlib import contextmanager
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from assessments.models import Assessment
from bench.generate import (
    ADMIN,
    BIG_COURSE_SESSIONS,
    CLINICIAN,
    DESIGNATED_RECORD,
    SMALL_COURSE_SESSIONS,
)
from clinical.engine import evaluate
from courses.evaluation import as_stored, course_facts, engine_settings, refresh_evaluation
from courses.models import Course, FlagDecision, SessionVoid, TreatmentSession
from ketacare.prepared import readable
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
    """The patient, courses and users the page benchmarks read (see bench.generate)."""
    patient = Patient.objects.select_related("referring_provider").get(
        record_number=DESIGNATED_RECORD
    )
    by_length = {course.n: course for course in patient.courses.annotate(n=Count("sessions"))}
    return {
        "patient": patient,
        "course": by_length[BIG_COURSE_SESSIONS],
        "small_course": by_length[SMALL_COURSE_SESSIONS],
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


# A name fragment: about one patient in forty matches it, in the middle of a family name.
SEARCH = "ettl"


def page_targets(found: dict) -> list[dict]:
    """Each page with its URL and reader; a page not built yet has ``missing`` instead."""
    clinician = verified_client(found["clinician"])
    big, small = found["course"].pk, found["small_course"].pk
    pages = [
        ("floor", "bench-floor", [], clinician, "bare login-only view on the same stack"),
        ("patient_list", "patients:list", [], clinician, "first page of 25 patients"),
        ("patient_search", "patients:list", [], clinician,
         f"search for {SEARCH!r} (one patient in forty), first page"),
        ("patient_page", "patients:detail", [found["patient"].pk], clinician,
         "the designated patient (2 courses)"),
        ("course_20", "courses:detail", [small], clinician,
         f"course with {SMALL_COURSE_SESSIONS} sessions"),
        ("course_200", "courses:detail", [big], clinician,
         f"course with {BIG_COURSE_SESSIONS} sessions"),
        ("course_200_chart", "courses:chart", [big], clinician,
         f"the chart the {BIG_COURSE_SESSIONS}-session course page fetches"),
        ("all_sessions", "courses:sessions", [big], clinician,
         f"first page of all sessions, course with {BIG_COURSE_SESSIONS}"),
        ("all_scores", "courses:scores", [big], clinician,
         f"first page of all scores, course with {BIG_COURSE_SESSIONS} sessions"),
        ("referrer_report", "reports:patient", [found["patient"].pk],
         verified_client(found["referrer"]), "referring provider's report, same patient"),
        ("referrer_chart", "reports:course-chart", [big], verified_client(found["referrer"]),
         f"the chart of the {BIG_COURSE_SESSIONS}-session course the report fetches"),
        ("outcome_dashboard", "outcomes:dashboard", [], verified_client(found["admin"]),
         "clinic admin's outcome dashboard"),
        ("day_sheet", "clinic:day", [], clinician,
         "clinician's day sheet: today's appointments, the clinic's undecided flags"),
        ("unbooked", "clinic:unbooked", [], clinician,
         "first page of the courses with nothing booked"),
        ("day_flags", "clinic:undecided", [], clinician, "the clinic's undecided flags"),
        ("rems_queue", "rems:queue", [], clinician, "Spravato REMS forms due"),
        ("session_form", "courses:session-new", [big], clinician,
         f"log a session (GET), course with {BIG_COURSE_SESSIONS} sessions"),
        ("madrs_form", "assessments:new", [big, "madrs"], clinician, "score a MADRS (GET)"),
        ("phq9_form", "assessments:new", [big, "phq9"], clinician, "score a PHQ-9 (GET)"),
        ("self_report_new", "selfreport:plan-new", [big], clinician,
         "invite to self-report (GET)"),
    ]
    targets = []
    for name, url_name, args, client, what in pages:
        try:
            url = reverse(url_name, args=args)
        except NoReverseMatch:
            targets.append({"name": name, "what": what,
                            "missing": f"{url_name} is not built yet (no such URL)"})
            continue
        if name == "patient_search":
            url += f"?q={SEARCH}"
        targets.append({"name": name, "what": what, "url": url, "client": client})
    return targets


def _statements(queries) -> list[str]:
    """The queries sent, as their SQL: a statement prepared on the server (ketacare.prepared)
    counts when it runs, not when its connection prepares it, once."""
    return [text for q in queries if not TRANSACTION_CONTROL.match(q["sql"])
            and (text := readable(q["sql"])) is not None]


def _count_queries(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [sql[:160] for sql in _statements(captured.captured_queries)]


def _timed_rounds(targets: list[dict], rounds: int, key: str, before: Callable[[], None]):
    """``rounds`` GETs of every target into ``target[key]``, round by round in a rotating
    order, so that every page meets the same conditions as the floor it is compared with;
    ``before`` runs (untimed) before each GET."""
    for target in targets:
        target[key] = []
    gc.collect()
    for round_ in range(rounds):
        shift = round_ % len(targets)
        for target in targets[shift:] + targets[:shift]:
            before()
            started = time.perf_counter()
            _get(target)
            target[key].append(time.perf_counter() - started)


def benchmark_pages(requests: int = 50, warmup: int = 3, cached_requests: int = 20,
                    log=print, only: set[str] | None = None) -> dict:
    """Median and p95 server time of each page over ``requests`` GETs *rendered* (the fragment
    cache emptied before each, as after a change to what the page shows, and as on a process
    that never served it), interleaved round by round with the floor; then over
    ``cached_requests`` GETs served from the cache, as while a record is read again. The
    targets judge the rendered figures; the cached ones are printed beside them. Queries are
    counted on separate requests, rendered and cached, so the capture slows no timed one.
    ``only`` names the pages to measure (the floor always is)."""
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
            target["cached_sql"] = _count_queries(lambda t=target: _get(t))
            cache.clear()
            target["sql"] = _count_queries(lambda t=target: _get(t))
        _timed_rounds(live, requests, "times", before=cache.clear)
        _timed_rounds(live, cached_requests, "cached_times", before=lambda: None)
        floor = summary(next(t for t in live if t["name"] == "floor")["times"])
        cached_floor = summary(next(t for t in live if t["name"] == "floor")["cached_times"])
        for target in live:
            figures, cached = summary(target["times"]), summary(target["cached_times"])
            results[target["name"]] = {
                "what": target["what"], "url": target["url"], **figures,
                "queries": len(target["sql"]),
                "p95_vs_floor": round(figures["p95_ms"] / floor["p95_ms"], 2),
                "cached_median_ms": cached["median_ms"], "cached_p95_ms": cached["p95_ms"],
                "cached_p95_vs_floor": round(cached["p95_ms"] / cached_floor["p95_ms"], 2),
                "cached_queries": len(target["cached_sql"]),
                "sql": target["sql"],
            }
            page = results[target["name"]]
            log(f"  {target['name']:<18} rendered {figures['median_ms']:>7.1f} ms median "
                f"{figures['p95_ms']:>7.1f} ms p95 ({page['p95_vs_floor']:>5.2f}× floor) "
                f"{page['queries']:>3} queries; cached {cached['median_ms']:>6.1f} ms median "
                f"{page['cached_queries']:>3} queries")
    return {"requests": requests, "cached_requests": cached_requests,
            "query_budget": QUERY_BUDGET, "pages": results}


def _get(target: dict) -> None:
    response = target["client"].get(target["url"], secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"{target['name']} ({target['url']}) answered "
                           f"{response.status_code}, not 200")


# ---------------------------------------------------------------------------------------------
# The write path: log a session, then read the course page it redirects to


def benchmark_write_path(requests: int = 30, log=print) -> dict:
    """A clinician logs a session on the designated 200-session course and follows the
    redirect to the course page, as a browser does: the POST, the GET and the two together,
    each pair beside a GET of the floor. The form is opened (untimed) before each POST for its
    one-time submission token. Each session logged is deleted again (untimed) before the next
    save and the course evaluated again, so every save is the 201st session of a 200-session
    course with no other session of the patient that day, as in clinic: left in place, they
    piled up (230 sessions by the end) and each save met the ones just logged as sessions
    entered twice, the warning a clinician sees once in a while, not on every save."""
    from bench.load import TOKEN_INPUT, session_post_body

    with override_settings(ROOT_URLCONF="bench.urls",
                           ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        found = designated()
        course = found["course"]
        client = verified_client(found["clinician"])
        form_url = reverse("courses:session-new", args=[course.pk])
        course_url = reverse("courses:detail", args=[course.pk])
        chart_url = reverse("courses:chart", args=[course.pk])  # the page fetches it
        floor = {"name": "floor", "url": reverse("bench-floor"), "client": client}
        last_before = TreatmentSession.objects.aggregate(last=Max("pk"))["last"]

        def body() -> dict:
            """The form opened for its one-time token, as the clinician's browser did."""
            text = client.get(form_url, secure=True).content.decode()
            token = TOKEN_INPUT.search(text)
            return session_post_body(token.group(1) if token else "")

        def post(data: dict):
            # Form-encoded, as a browser sends this form (it has no file field): the test
            # client's default, multipart, costs the server more to parse.
            response = client.post(form_url, urlencode(data), secure=True,
                                   content_type="application/x-www-form-urlencoded")
            if response.status_code != 302 or response.url != course_url:
                raise RuntimeError(f"logging a session answered {response.status_code}, "
                                   "not the redirect to the course page")
            return response

        removed = 0

        def remove_logged() -> None:
            """The sessions logged here deleted, and the course evaluated again: untimed."""
            nonlocal removed
            logged = TreatmentSession.objects.filter(course=course, pk__gt=last_before or 0)
            removed += logged.count()
            logged.delete()
            refresh_evaluation(Course.objects.select_related("patient").get(pk=course.pk))

        def step() -> tuple[float, float, float]:
            data = body()
            started = time.perf_counter()
            response = post(data)
            posted = time.perf_counter()
            _get({"name": "course page after saving", "url": response.url, "client": client})
            shown = time.perf_counter()
            _get({"name": "its chart", "url": chart_url, "client": client})
            timed = posted - started, shown - posted, time.perf_counter() - shown
            remove_logged()
            return timed

        try:
            step()  # warm
            data = body()
            post_sql = _count_queries(lambda: post(data))
            get_sql = _count_queries(lambda: _get({"name": "course page", "url": course_url,
                                                   "client": client}))
            remove_logged()
            posts, gets, charts, pairs, wholes, floors = [], [], [], [], [], []
            gc.collect()
            for _ in range(requests):
                started = time.perf_counter()
                _get(floor)
                floors.append(time.perf_counter() - started)
                post_seconds, get_seconds, chart_seconds = step()
                posts.append(post_seconds)
                gets.append(get_seconds)
                charts.append(chart_seconds)
                pairs.append(post_seconds + get_seconds)
                wholes.append(post_seconds + get_seconds + chart_seconds)
        finally:
            remove_logged()
    floor_figures, pair, whole = summary(floors), summary(pairs), summary(wholes)
    result = {
        "course_sessions": BIG_COURSE_SESSIONS, "requests": requests,
        "floor": floor_figures, "post": summary(posts), "get": summary(gets), "pair": pair,
        "pair_p95_vs_floor": round(pair["p95_ms"] / floor_figures["p95_ms"], 2),
        # Beside the target, not judged by it: the chart the page then fetches, and all three.
        "chart": summary(charts), "with_chart": whole,
        "with_chart_p95_vs_floor": round(whole["p95_ms"] / floor_figures["p95_ms"], 2),
        "post_queries": len(post_sql), "get_queries": len(get_sql),
        "post_sql": post_sql, "get_sql": get_sql, "sessions_removed": removed,
    }
    log(f"  write path: POST + redirect GET {pair['median_ms']:.1f} ms median, "
        f"{pair['p95_ms']:.1f} ms p95 ({result['pair_p95_vs_floor']}× floor); "
        f"{len(post_sql)} + {len(get_sql)} queries")
    return result


# ---------------------------------------------------------------------------------------------
# Rules engine


def benchmark_engine(courses: int = 2000, min_seconds: float = 2.0, seed: int = 1,
                     log=print) -> dict:
    """Evaluations per second of the pure engine, one process: the facts of ``courses``
    courses are read from the database first (course_facts, timed apart), then evaluate()
    runs over them until ``min_seconds`` of CPU time have passed. The rate is per second of
    this process's CPU time (time.process_time: one core, whatever else the machine runs),
    with the wall-clock rate beside it. Then the whole refresh after a save, of a 60-session
    course (the target's) and of the designated 200-session one (benchmark_refresh)."""
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


REFRESH_SESSIONS = 60  # the course length the target names


def benchmark_refresh(requests: int = 50, warmup: int = 3, log=print) -> dict:
    """The whole refresh after a save (refresh_evaluation: the course's facts from the
    database, the engine, the stored columns) of a 60-session course, the length the target
    names: a copy of the designated 200-session course's first 60 sessions (and its scores
    until the 60th), for a copy of its patient, made inside each transaction, which is rolled
    back, so the data stay as generated. (Cutting the course itself in the transaction left
    its other 140 sessions and 280 scores as rows the refresh's index scans still visited, each
    deleted only for that transaction: a 60-session course that read like a 200-session one.)
    Wall clock, and the statements of one refresh; the whole 200-session course is measured
    beside it (``long``)."""
    course = designated()["course"]

    @contextmanager
    def rolled_back(prepare):
        """The course read afresh inside a transaction that is rolled back afterwards."""
        with transaction.atomic():
            pk = prepare() if prepare else course.pk
            yield Course.objects.select_related("patient").get(pk=pk)
            transaction.set_rollback(True)

    def measure(prepare=None) -> dict:
        times = []
        for attempt in range(warmup + requests):
            with rolled_back(prepare) as fresh:
                started = time.perf_counter()
                refresh_evaluation(fresh)
                elapsed = time.perf_counter() - started
            if attempt >= warmup:
                times.append(elapsed)
        with rolled_back(prepare) as fresh:
            sessions = fresh.sessions.count()
            with CaptureQueriesContext(connection) as captured:
                refresh_evaluation(fresh)
        statements = _statements(captured.captured_queries)
        return {"course_sessions": sessions, **summary(times), "queries": len(statements),
                "sql": [sql[:160] for sql in statements]}

    result = measure(lambda: _course_copy(course, REFRESH_SESSIONS))
    result["long"] = measure()
    for figures in (result, result["long"]):
        log(f"  refresh of the {figures['course_sessions']}-session course: "
            f"{figures['median_ms']} ms median, {figures['p95_ms']} ms p95, "
            f"{figures['queries']} queries")
    return result


def _copies(rows, **changes) -> list:
    """Unsaved copies of model instances ``rows``, each with ``changes`` set."""
    copies = []
    for row in rows:
        row.pk = None
        for name, value in changes.items():
            setattr(row, name, value)
        copies.append(row)
    return copies


def _course_copy(course: Course, sessions: int) -> int:
    """A copy of ``course`` cut to its first ``sessions`` sessions (not voided) with their
    adverse events and the scores (current) until the last of them, for a copy of its patient
    with the same medications and prior trials; the copy's id. For a rolled-back
    transaction: every row is new, so the copy's rows are all its index scans find."""
    from courses.models import AdverseEvent
    from patients.models import Medication, PriorTrial

    patient = Patient.objects.get(pk=course.patient_id)
    original = patient.pk
    patient.pk, patient.record_number = None, f"{patient.record_number}-copy"
    patient.save()
    Medication.objects.bulk_create(
        _copies(Medication.objects.filter(patient=original), patient=patient))
    PriorTrial.objects.bulk_create(
        _copies(PriorTrial.objects.filter(patient=original), patient=patient))
    copy = Course.objects.get(pk=course.pk)
    copy.pk, copy.patient = None, patient
    copy.save()
    kept = list(TreatmentSession.objects.current().filter(course=course)
                .order_by("started_at", "id")[:sessions])
    events = list(AdverseEvent.objects.filter(session__in=kept))
    old_ids = [session.pk for session in kept]
    TreatmentSession.objects.bulk_create(_copies(kept, course=copy, submission_token=None))
    new_ids = dict(zip(old_ids, (session.pk for session in kept), strict=True))
    for event in _copies(events):
        event.session_id = new_ids[event.session_id]
    AdverseEvent.objects.bulk_create(events)
    Assessment.objects.bulk_create(_copies(
        Assessment.objects.for_course(course).current()
        .filter(administered_at__lte=kept[-1].started_at),
        course=copy, submission_token=None))
    return copy.pk


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
