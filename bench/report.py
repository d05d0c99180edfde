"""The run's context, its targets and the table printed at the end."""

import os
import platform
import sys
from pathlib import Path

import django
from django.conf import settings
from django.db import connection
from django.utils import timezone

from assessments.models import Assessment
from courses.models import Course, TreatmentSession
from patients.models import Medication, Patient

FLOOR_FACTOR = 3  # each page rendered (cache empty): p95 at most 3× the floor's
LENGTH_FACTOR = 1.5  # the 200-session course page at most 1.5× the 20-session one
WRITE_FACTOR = 6  # log a session + the course page it redirects to: p95 at most 6× the floor
ENGINE_RATE = 15_000  # evaluations per second of CPU time, one core
REFRESH_P95_MS = 5  # the whole refresh after a save of a 60-session course (200 beside it)
EXPORT_FACTOR = 10  # the export at most 10× the COPY floor
FLAT_MEMORY = 1.5  # peak memory at the largest size at most 1.5× the smallest
LOAD_P95_MS = 300
SATURATION_RATE = 150  # requests per second, the same mix with no pauses


def machine() -> dict:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f"{kb / 2**20:.0f} GiB"
    database = connection.vendor
    if database == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
    return {
        "when": timezone.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "cpu": model, "memory": memory,
        "os": platform.platform(), "python": sys.version.split()[0],
        "django": django.get_version(), "database": database, "debug": settings.DEBUG,
        # Other work on the machine skews timings: the 1-minute load average when the run began.
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def data_counts() -> dict:
    return {
        "patients": Patient.objects.count(), "courses": Course.objects.count(),
        "sessions": TreatmentSession.objects.count(), "assessments": Assessment.objects.count(),
        "medications": Medication.objects.count(),
    }


def check_targets(results: dict) -> list[dict]:
    """One line per target: met, missed, or not measured (and why)."""
    checks = []

    def add(target: str, met: bool | None, seen: str) -> None:
        checks.append({"target": target, "met": met, "seen": seen})

    pages = results.get("pages", {}).get("pages", {})
    budget = results.get("pages", {}).get("query_budget", 12)
    for name, page in pages.items():
        if name == "floor":
            continue
        if "missing" in page:
            add(f"{name}: rendered ≤ {budget} queries, p95 ≤ {FLOOR_FACTOR}× floor", None,
                page["missing"])
            continue
        most = max(page["queries"], page["cached_queries"])
        add(f"{name}: ≤ {budget} queries", most <= budget,
            f"{page['queries']} rendered, {page['cached_queries']} cached")
        add(f"{name}: rendered p95 ≤ {FLOOR_FACTOR}× floor",
            page["p95_vs_floor"] <= FLOOR_FACTOR,
            f"{page['p95_vs_floor']}× ({page['p95_ms']} ms; cached {page['cached_p95_vs_floor']}×)")
    if "missing" not in pages.get("course_20", {"missing": 1}) \
            and "missing" not in pages.get("course_200", {"missing": 1}):
        short, long = pages["course_20"]["p95_ms"], pages["course_200"]["p95_ms"]
        add(f"course page: 200 sessions ≤ {LENGTH_FACTOR}× 20 sessions (p95 rendered)",
            long <= LENGTH_FACTOR * short, f"{long / short:.2f}× ({long} ms vs {short} ms)")
    write = results.get("write")
    if write:
        add(f"write path: p95 ≤ {WRITE_FACTOR}× floor", write["pair_p95_vs_floor"] <= WRITE_FACTOR,
            f"{write['pair_p95_vs_floor']}× ({write['pair']['p95_ms']} ms)")
        add(f"write path: ≤ {budget} queries each",
            max(write["post_queries"], write["get_queries"]) <= budget,
            f"POST {write['post_queries']}, GET {write['get_queries']}")
    engine = results.get("engine")
    if engine:
        rate = engine["evaluations_per_second"]
        add(f"engine ≥ {ENGINE_RATE:,} evaluations per CPU second", rate >= ENGINE_RATE,
            f"{rate:,}/s ({engine['evaluations_per_wall_second']:,}/s wall clock)")
        refresh = engine.get("refresh")
        if refresh:
            add(f"refresh of the {refresh['course_sessions']}-session course: p95 ≤ "
                f"{REFRESH_P95_MS} ms", refresh["p95_ms"] <= REFRESH_P95_MS,
                f"{refresh['p95_ms']} ms ({refresh['median_ms']} ms median, "
                f"{refresh['queries']} queries)")
    export = results.get("export", {})
    if "missing" in export:
        add("export", None, export["missing"])
    elif export.get("runs"):
        largest, smallest = export["runs"][-1], export["runs"][0]
        if "vs_copy" in largest:
            add(f"export ≤ {EXPORT_FACTOR}× COPY", largest["vs_copy"] <= EXPORT_FACTOR,
                f"{largest['vs_copy']}× ({largest['courses']:,} courses)")
        else:
            add(f"export ≤ {EXPORT_FACTOR}× COPY", None, largest["copy_skipped"])
        if len(export["runs"]) > 1:
            growth = largest["peak_memory_mb"] / max(smallest["peak_memory_mb"], 0.01)
            add("export memory flat", growth <= FLAT_MEMORY,
                f"{smallest['peak_memory_mb']} MB at {smallest['courses']:,}, "
                f"{largest['peak_memory_mb']} MB at {largest['courses']:,}")
    load = results.get("load", {})
    if "skipped" in load:
        add(f"load: 0 errors, p95 ≤ {LOAD_P95_MS} ms", None, load["skipped"])
    elif load:
        add("load: 0 errors", load["errors"] == 0, str(load["errors"]))
        add(f"load: p95 ≤ {LOAD_P95_MS} ms", load["overall_p95_ms"] <= LOAD_P95_MS,
            f"{load['overall_p95_ms']} ms")
    saturation = results.get("saturation", {})
    if saturation and "skipped" not in saturation:
        add(f"saturation ≥ {SATURATION_RATE} requests/s", saturation["requests_per_second"]
            >= SATURATION_RATE and saturation["errors"] == 0,
            f"{saturation['requests_per_second']}/s, {saturation['errors']} errors")
    return checks


def table(results: dict) -> str:
    lines = []
    meta = results["machine"]
    lines.append(f"KetaCare benchmarks, {meta['when']}: {meta['cpus']} CPUs ({meta['cpu']}), "
                 f"{meta['memory']}, {meta['database']}, Python {meta['python']}, "
                 f"Django {meta['django']}, DEBUG {'on' if meta['debug'] else 'off'}, "
                 f"load average {meta['load_average']} at the start")
    data = results["data"]
    lines.append("Data: " + ", ".join(f"{v:,} {k}" for k, v in data.items()))
    lines.append("")
    pages = results.get("pages", {}).get("pages", {})
    if pages:
        lines.append("| page | rendered: median ms | p95 ms | p95 × floor | queries | "
                     "cached: median ms | p95 × floor | queries |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, page in pages.items():
            if "missing" in page:
                lines.append(f"| {name} | {page['missing']} | | | | | | |")
            else:
                lines.append(f"| {name} | {page['median_ms']} | {page['p95_ms']} | "
                             f"{page['p95_vs_floor']} | {page['queries']} | "
                             f"{page['cached_median_ms']} | {page['cached_p95_vs_floor']} | "
                             f"{page['cached_queries']} |")
        lines.append("")
    write = results.get("write")
    if write:
        lines.append(f"Write path ({write['course_sessions']} sessions): POST + course page "
                     f"{write['pair']['median_ms']} ms median, {write['pair']['p95_ms']} ms p95 "
                     f"({write['pair_p95_vs_floor']}× floor {write['floor']['p95_ms']} ms); "
                     f"POST {write['post']['p95_ms']} ms p95 in {write['post_queries']} queries, "
                     f"GET {write['get']['p95_ms']} ms p95 in {write['get_queries']} queries")
        if "chart" in write:
            lines.append(f"  and then the chart the page fetches: {write['chart']['p95_ms']} ms "
                         f"p95; all three {write['with_chart']['p95_ms']} ms p95 "
                         f"({write['with_chart_p95_vs_floor']}× floor; not a target)")
    engine = results.get("engine")
    if engine:
        lines.append(f"Rules engine: {engine['evaluations_per_second']:,} evaluations per CPU "
                     f"second ({engine['evaluations_per_wall_second']:,}/s wall clock; "
                     f"{engine['with_json_per_second']:,}/s with the stored JSON), one process, "
                     f"{engine['courses']:,} courses")
        refresh = engine.get("refresh")
        if refresh:
            for figures in filter(None, (refresh, refresh.get("long"))):
                lines.append(f"Refresh after a save, {figures['course_sessions']}-session "
                             f"course: {figures['median_ms']} ms median, "
                             f"{figures['p95_ms']} ms p95, {figures['queries']} queries")
    for run in results.get("export", {}).get("runs", []):
        copy = (f"COPY {run['copy_seconds']} s ({run['vs_copy']}×)" if "copy_seconds" in run
                else run["copy_skipped"])
        lines.append(f"CSV export, {run['rows']:,} courses: {run['seconds']} s, "
                     f"peak {run['peak_memory_mb']} MB; {copy}")
    if "missing" in results.get("export", {}):
        lines.append(f"CSV export: {results['export']['missing']}")
    for name in ("load", "saturation"):
        run = results.get(name, {})
        if "skipped" in run:
            lines.append(f"Load run: skipped, {run['skipped']}")
        elif run:
            hit_rate = (f"{run['cache_hit_rate']:.0%}" if run.get("cache_hit_rate") is not None
                        else "—")
            think = run["think_ms"]
            lines.append(f"Load run: {run['clients']} clients × {run['seconds']} s, pausing "
                         f"{think[0]:.0f}–{think[1]:.0f} ms: {run['requests']:,} requests "
                         f"({run['requests_per_second']}/s), {run['errors']} errors, "
                         f"p50 {run['overall_median_ms']} ms, p95 {run['overall_p95_ms']} ms, "
                         f"{run['sessions_logged']} sessions logged, fragment cache hits "
                         f"{hit_rate}")
    lines.append("")
    lines.append("Targets:")
    for check in results.get("targets", []):
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[check["met"]]
        lines.append(f"  {mark} {check['target']}: {check['seen']}")
    return "\n".join(lines)
