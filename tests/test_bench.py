"""The benchmarks run end to end at a tiny scale. Benchmarks are not tests: nothing here asserts
a time, only that every section is measured and its counts are right."""

import json
from datetime import date

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from assessments.models import Assessment
from bench.generate import (
    BIG_COURSE_SESSIONS,
    DESIGNATED_RECORD,
    Scale,
    generate,
    is_scratch_database,
    plan_courses,
)
from bench.load import run_load
from clinical import dosing
from clinical.instruments import INSTRUMENTS, validate_items
from clinical.vocab import Instrument, Route
from courses.models import Course, TreatmentSession
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
    assert designated.courses.annotate(n=Count("sessions")).filter(
        n=BIG_COURSE_SESSIONS).count() == 1
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
def test_the_generator_refuses_to_add_to_existing_data():
    generate(TINY, seed=7, today=TODAY)
    with pytest.raises(Exception, match="already holds patients"):
        generate(TINY, seed=7, today=TODAY)


@pytest.mark.django_db
def test_the_bench_command_measures_every_section(tmp_path):
    out = tmp_path / "bench.json"
    call_command(
        "bench", "--generate", "--scale", "tiny", "--requests", "3", "--engine-courses", "10",
        "--export-sizes", "5,20", "--repeats", "1", "--skip-load", "--json", str(out),
    )
    results = json.loads(out.read_text())
    assert set(results) >= {"machine", "generate", "data", "pages", "engine", "export", "load",
                            "targets"}
    assert results["data"]["courses"] == TINY.courses
    assert results["data"]["sessions"] == TINY.sessions
    pages = results["pages"]["pages"]
    assert {"floor", "patient_list", "patient_page", "course_page", "referrer_report",
            "outcome_dashboard", "day_sheet", "unbooked"} <= set(pages)
    # The day sheet is measured like the others: built, within the budget cached or rendered.
    for name in ("day_sheet", "unbooked"):
        assert "missing" not in pages[name], name
        assert pages[name]["url"].startswith("/day/"), name
        assert pages[name]["rendered_queries"] <= results["pages"]["query_budget"], name
    for name, page in pages.items():
        if "missing" in page:  # a page still being built says so
            assert "not built yet" in page["missing"], name
            continue
        assert isinstance(page["queries"], int) and page["queries"] > 0, name
        assert page["n"] == 3 and page["median_ms"] > 0, name
        assert page["rendered_median_ms"] > 0, name
        if name in ("floor", "unbooked"):  # nothing cached: each GET reads its rows
            assert page["rendered_queries"] == page["queries"]
        else:  # rendered, a page reads its rows; from the cache, it does not
            assert page["rendered_queries"] > page["queries"], name
    assert results["engine"]["courses"] == 10
    assert results["engine"]["evaluations"] >= 10
    runs = results["export"]["runs"]
    assert [(run["courses"], run["rows"]) for run in runs] == [(5, 5), (20, 20)]
    for run in runs:
        if connection.vendor == "postgresql":
            assert run["copy_rows"] == run["rows"]
        else:
            assert "needs PostgreSQL" in run["copy_skipped"]
    assert results["load"] == {"skipped": "--skip-load"}
    assert all(check["met"] in (True, False, None) for check in results["targets"])
    # --pages measures only those pages, beside the floor.
    call_command("bench", "--only", "pages", "--pages", "day_sheet", "--requests", "2",
                 "--json", str(out))
    assert set(json.loads(out.read_text())["pages"]["pages"]) == {"floor", "day_sheet"}


@pytest.mark.django_db(transaction=True)
def test_the_load_run_serves_reads_and_session_logging_without_errors():
    if connection.vendor != "postgresql":
        result = run_load(seconds=1, clients=1, log=lambda message: None)
        assert "needs PostgreSQL" in result["skipped"]
        pytest.skip("the load run needs PostgreSQL (gunicorn reads the committed data)")
    generate(TINY, seed=7)
    result = run_load(seconds=2, clients=2, workers=2, warmup=1, log=lambda message: None)
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0
    assert set(result["by_kind"]) <= {"patient_list", "patient_page", "course_page",
                                      "session_form", "session_post"}
