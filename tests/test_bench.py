"""The benchmarks run end to end at a tiny scale. Benchmarks are not tests: nothing here asserts
a time, only that every section is measured and its counts are right."""

import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count

from assessments.models import Assessment
from bench import report
from bench.generate import (
    BIG_COURSE_SESSIONS,
    DESIGNATED_RECORD,
    SMALL_COURSE_SESSIONS,
    Scale,
    generate,
    is_scratch_database,
    plan_courses,
)
from bench.load import KINDS, run_load
from bench.measure import _course_copy, designated
from clinical import dosing
from clinical.instruments import INSTRUMENTS, validate_items
from clinical.vocab import Instrument, Route
from courses.evaluation import course_facts
from courses.models import AdverseEvent, Course, TreatmentSession
from patients.models import Patient

TODAY = date(2026, 3, 2)
TINY = Scale.of("tiny")


def test_named_and_fractional_scales():
    assert (Scale.of("default").patients, Scale.of("default").courses) == (5000, 8000)
    assert (Scale.of(1).sessions, Scale.of(1).assessments) == (60000, 120000)
    assert Scale.of("0.5").courses == 4000
    with pytest.raises(ValueError):
        Scale.of("-1")


def test_the_plan_is_reproducible_from_the_seed():
    import random

    def plan(seed):
        return [(p.patient, p.sessions, p.route, p.start, p.response)
                for p in plan_courses(TINY, random.Random(seed), TODAY)]

    assert plan(3) == plan(3)
    assert plan(3) != plan(4)


@pytest.mark.django_db
def test_the_generator_fills_the_scale_with_valid_records():
    assert is_scratch_database()
    result = generate(TINY, seed=7, today=TODAY)
    assert result["rows"]["patients"] == Patient.objects.count() == TINY.patients
    assert result["rows"]["courses"] == Course.objects.count() == TINY.courses
    assert TreatmentSession.objects.count() == TINY.sessions
    assert Assessment.objects.count() == TINY.assessments
    designated = Patient.objects.get(record_number=DESIGNATED_RECORD)
    assert designated.referring_provider is not None
    assert sorted(designated.courses.annotate(n=Count("sessions")).values_list("n", flat=True)) \
        == [SMALL_COURSE_SESSIONS, BIG_COURSE_SESSIONS]
    for assessment in Assessment.objects.all():
        definition = INSTRUMENTS[Instrument(assessment.instrument)]
        validate_items(definition, assessment.items)
        assert assessment.total == sum(assessment.items)
    for session in TreatmentSession.objects.all():
        if Route(session.route).weight_based:
            assert dosing.check_dose_mg_per_kg(session.dose_mg_per_kg) is None
        else:
            assert dosing.check_dose_mg(Route(session.route), session.dose_mg) is None
    assert not Course.objects.filter(evaluation__isnull=True).exists()


@pytest.mark.django_db
def test_the_refresh_bench_reads_a_copy_cut_to_60_sessions():
    """The refresh target's 60-session course: the designated course's first 60 sessions and
    the scores until the last of them, for a copy of its patient, and nothing of the rest."""
    generate(TINY, seed=7, today=TODAY)
    course = designated()["course"]
    kept = list(TreatmentSession.objects.current().filter(course=course)
                .order_by("started_at", "id")[:60])
    copy = Course.objects.select_related("patient").get(pk=_course_copy(course, 60))
    assert copy.patient_id != course.patient_id
    assert copy.patient.diagnosis == course.patient.diagnosis
    assert sorted(copy.patient.medications.values_list("name", "started_on")) == sorted(
        course.patient.medications.values_list("name", "started_on"))
    assert list(copy.sessions.order_by("started_at", "id")
                .values_list("started_at", "route", "dose_mg_per_kg", "status")) == [
        (s.started_at, s.route, s.dose_mg_per_kg, s.status) for s in kept]
    assert sorted(AdverseEvent.objects.filter(session__course=copy)
                  .values_list("session__started_at", "severity")) == sorted(
        AdverseEvent.objects.filter(session__in=kept)
        .values_list("session__started_at", "severity"))
    until = kept[-1].started_at
    assert list(copy.assessments.order_by("administered_at", "id")
                .values_list("administered_at", "instrument", "total")) == list(
        Assessment.objects.for_course(course).current().filter(administered_at__lte=until)
        .order_by("administered_at", "id").values_list("administered_at", "instrument", "total"))
    assert copy.assessments.exists() and copy.assessments.count() < course.assessments.count()
    # Its facts are the original's up to the 60th session.
    facts = course_facts(copy)
    assert len(facts.sessions) == 60 and facts.sessions[-1].at == until


@pytest.mark.django_db
def test_the_generator_refuses_to_add_to_existing_data():
    generate(TINY, seed=7, today=TODAY)
    with pytest.raises(Exception, match="already holds patients"):
        generate(TINY, seed=7, today=TODAY)


@pytest.mark.django_db
def test_the_bench_command_measures_every_section(tmp_path):
    out = tmp_path / "bench.json"
    call_command(
        "bench", "--generate", "--scale", "tiny", "--requests", "3", "--engine-courses", "10",
        "--export-sizes", "5,20", "--repeats", "1", "--write-requests", "2", "--skip-load",
        "--no-fail", "--json", str(out),
    )
    results = json.loads(out.read_text())
    assert set(results) >= {"machine", "generate", "data", "pages", "write", "engine", "export",
                            "load", "targets"}
    assert results["data"]["courses"] == TINY.courses
    assert results["data"]["sessions"] == TINY.sessions
    pages = results["pages"]["pages"]
    assert {"floor", "patient_list", "patient_search", "patient_page", "course_20",
            "course_200", "course_200_chart", "referrer_report", "referrer_chart",
            "outcome_dashboard", "day_sheet", "unbooked", "rems_queue", "session_form",
            "madrs_form", "phq9_form"} <= set(pages)
    for name, page in pages.items():
        if "missing" in page:  # a page still being built says so
            assert "not built yet" in page["missing"], name
            continue
        assert page["queries"] > 0 and page["cached_queries"] > 0, name
        assert page["n"] == 3 and page["median_ms"] > 0 and page["cached_median_ms"] > 0, name
    # Rendered, a cached page reads its rows; served from the cache, it does not.
    assert pages["course_200"]["queries"] > pages["course_200"]["cached_queries"]
    assert "?q=" in pages["patient_search"]["url"]
    write = results["write"]
    assert write["requests"] == 2 and write["post_queries"] > 0 and write["get_queries"] > 0
    # Beside the target: the chart the page fetches after a save, as a browser does.
    assert write["chart"]["n"] == 2 and write["with_chart"]["p95_ms"] > write["pair"]["p95_ms"]
    # What the write path logged is gone again: the page benchmarks read the same data.
    assert write["sessions_removed"] == 4  # the warm-up, the counted one and 2 timed
    assert TreatmentSession.objects.count() == TINY.sessions
    assert results["engine"]["courses"] == 10
    assert results["engine"]["evaluations"] >= 10
    # The refresh is judged at the target's 60 sessions, the 200-session course beside it; the
    # 60-session copy made inside each rolled-back transaction is gone again.
    refresh = results["engine"]["refresh"]
    assert (refresh["course_sessions"], refresh["long"]["course_sessions"]) == (60, 200)
    assert Patient.objects.count() == TINY.patients
    assert refresh["queries"] == refresh["long"]["queries"] > 0
    runs = results["export"]["runs"]
    assert [(run["courses"], run["rows"]) for run in runs] == [(5, 5), (20, 20)]
    for run in runs:
        if connection.vendor == "postgresql":
            assert run["copy_rows"] == run["rows"]
        else:
            assert "needs PostgreSQL" in run["copy_skipped"]
    assert results["load"] == {"skipped": "--skip-load"}
    assert all(check["met"] in (True, False, None) for check in results["targets"])
    assert any(check["target"].startswith("course page: 200 sessions")
               for check in results["targets"])
    # --pages measures only those pages, beside the floor.
    call_command("bench", "--only", "pages", "--pages", "day_sheet", "--requests", "2",
                 "--no-fail", "--json", str(out))
    assert set(json.loads(out.read_text())["pages"]["pages"]) == {"floor", "day_sheet"}


@pytest.mark.django_db
def test_the_bench_command_fails_when_a_target_is_missed(tmp_path, monkeypatch):
    generate(TINY, seed=7, today=TODAY)
    out = tmp_path / "bench.json"
    arguments = ["bench", "--only", "pages", "--pages", "patient_list", "--requests", "2",
                 "--json", str(out)]
    met = [{"target": "patient_list: ≤ 12 queries", "met": True, "seen": "3"}]
    monkeypatch.setattr(report, "check_targets", lambda results: met)
    call_command(*arguments)  # every target met: no error
    missed = [*met, {"target": "patient_list: rendered p95 ≤ 3× floor", "met": False,
                     "seen": "4.2×"}]
    monkeypatch.setattr(report, "check_targets", lambda results: missed)
    with pytest.raises(CommandError, match="1 target.*rendered p95 ≤ 3× floor"):
        call_command(*arguments)
    assert json.loads(out.read_text())["targets"] == missed  # written before failing
    call_command(*arguments, "--no-fail")


def test_the_targets_judge_rendered_pages_course_length_and_the_write_path():
    page = {"queries": 9, "cached_queries": 4, "p95_ms": 7.0, "p95_vs_floor": 2.8,
            "cached_p95_vs_floor": 1.2}
    results = {"pages": {"query_budget": 12, "pages": {
        "floor": {**page, "p95_vs_floor": 1.0},
        "course_20": page,
        "course_200": {**page, "p95_ms": 11.0, "p95_vs_floor": 4.4, "queries": 13},
    }}, "write": {"pair_p95_vs_floor": 5.5, "pair": {"p95_ms": 14.0},
                  "post_queries": 12, "get_queries": 9},
        "saturation": {"requests_per_second": 149.0, "errors": 0}}
    verdicts = {check["target"]: check["met"] for check in report.check_targets(results)}
    assert verdicts["course_20: rendered p95 ≤ 3× floor"] is True
    assert verdicts["course_200: rendered p95 ≤ 3× floor"] is False
    assert verdicts["course_200: ≤ 12 queries"] is False
    assert verdicts["course page: 200 sessions ≤ 1.5× 20 sessions (p95 rendered)"] is False
    assert verdicts["write path: p95 ≤ 6× floor"] is True
    assert verdicts["write path: ≤ 12 queries each"] is True
    assert verdicts["saturation ≥ 150 requests/s"] is False


@pytest.mark.django_db(transaction=True)
def test_the_load_run_serves_reads_and_session_logging_without_errors():
    if connection.vendor != "postgresql":
        result = run_load(seconds=1, clients=1, log=lambda message: None)
        assert "needs PostgreSQL" in result["skipped"]
        pytest.skip("the load run needs PostgreSQL (gunicorn reads the committed data)")
    generate(TINY, seed=7)
    result = run_load(seconds=2, clients=2, think_ms=(0, 0), workers=2, warmup=1,
                      log=lambda message: None)
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0
    assert set(result["by_kind"]) <= set(KINDS)
    # A session logged is followed to the course page, as a browser does.
    if "session_post" in result["by_kind"]:
        assert result["by_kind"]["course_after_save"]["n"] == result["sessions_logged"]
    assert result["fragment_lookups"] > 0 and 0 <= result["cache_hit_rate"] <= 1
