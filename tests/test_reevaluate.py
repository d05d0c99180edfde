"""Stored evaluations follow the rules revision: `manage.py reevaluate` on a database holding
revision-1 evaluations, and the course page never showing one as current."""

import importlib
from datetime import date, timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from clinical.engine import RULES_REVISION
from clinical.vocab import MedClass
from courses.actions import record_session
from courses.management.commands import reevaluate
from courses.models import Course, TreatmentSession
from tests.factories import CourseFactory, PriorTrialFactory, WeightFactory, at

pytestmark = pytest.mark.django_db

# What revision 1 stored for a course of 3 IV sessions a week apart and no scores at all:
# INCREASE_FREQUENCY on insufficient data, and no SCORES_OVERDUE.
REVISION_1 = {
    "status": "insufficient_data", "provisional": True, "adequate_trial": False,
    "primary_instrument": "phq9", "baseline": None, "current": None,
    "percent_reduction": None, "sessions_completed": 3, "trajectory": "insufficient",
    "instruments": {
        code: {"status": "insufficient_data", "baseline": None, "current": None,
               "percent_reduction": None} for code in ("madrs", "phq9")
    },
    "flags": [{"code": "INCREASE_FREQUENCY", "severity": "info", "message": "…",
               "suggestion": "2–3 treatments a week.",
               "source": "001 troubleshooting non-response (inadequate frequency)",
               "suggested_dose_mg_per_kg": None}],
    "optimizations": [], "trajectory_scores": {"madrs": [], "phq9": []},
}


def unscored_course(clinician) -> Course:
    course = CourseFactory(started_on=date(2026, 2, 1), created_by=clinician)
    WeightFactory(patient=course.patient, weight_kg="80.0", measured_on=date(2026, 1, 1))
    PriorTrialFactory(patient=course.patient, drug="sertraline")
    PriorTrialFactory(patient=course.patient, drug="venlafaxine", drug_class=MedClass.SNRI)
    for week in range(3):
        record_session(clinician, TreatmentSession(
            course=course, started_at=at(course.started_on + timedelta(days=7 * week)),
            route="iv", dose_mg_per_kg="0.5", dose_mg="40.0", infusion_minutes=40,
        ), [])
    return course


def as_revision_1(*courses: Course) -> None:
    """The database as revision 1 left it: the old evaluation, and the migration's mark."""
    Course.objects.filter(pk__in=[c.pk for c in courses]).update(
        evaluation=REVISION_1, rules_revision=None
    )
    migration = importlib.import_module("courses.migrations.0005_evaluation_rules_revision")
    migration.mark_revision_1(apps, None)


def codes(course: Course) -> list[str]:
    course.refresh_from_db()
    return [flag["code"] for flag in course.evaluation["flags"]]


def run(*args) -> str:
    out = StringIO()
    call_command("reevaluate", *args, stdout=out)
    return out.getvalue()


def test_the_migration_marks_stored_evaluations_as_revision_1(clinician):
    course = unscored_course(clinician)
    never = CourseFactory()
    Course.objects.filter(pk=never.pk).update(evaluation=None, rules_revision=None)
    as_revision_1(course)
    course.refresh_from_db()
    never.refresh_from_db()
    assert (course.rules_revision, never.rules_revision) == (1, None)


def test_reevaluate_recomputes_revision_1_evaluations(clinician):
    course = unscored_course(clinician)
    as_revision_1(course)
    assert codes(course) == ["INCREASE_FREQUENCY"]

    output = run()

    assert codes(course) == ["SCORES_OVERDUE"]  # r2: no outcome flag without outcome data
    assert course.rules_revision == RULES_REVISION == course.evaluation["rules_revision"]
    assert "1/1 courses (100 %)" in output
    assert output.rstrip().endswith("1 course evaluated under rules revision 2.")


def test_reevaluate_is_idempotent_and_leaves_current_courses_alone(clinician):
    current, old = unscored_course(clinician), unscored_course(clinician)
    as_revision_1(old)
    current.refresh_from_db()
    stamped = current.evaluated_at

    assert run().rstrip().endswith("1 course evaluated under rules revision 2.")
    assert run().rstrip().endswith("0 courses evaluated under rules revision 2.")
    current.refresh_from_db()
    assert current.evaluated_at == stamped


def test_reevaluate_all_recomputes_every_course(clinician):
    first, second = unscored_course(clinician), unscored_course(clinician)
    assert run("--all").rstrip().endswith("2 courses evaluated under rules revision 2.")
    assert {c.rules_revision for c in Course.objects.filter(pk__in=[first.pk, second.pk])} == {
        RULES_REVISION
    }


def test_reevaluate_works_in_batches_and_resumes_after_an_interruption(clinician, monkeypatch):
    courses = [unscored_course(clinician) for _ in range(5)]
    as_revision_1(*courses)
    real_batch = reevaluate.Command._batch
    batches = []

    def fail_on_the_third(ids):
        batches.append(ids)
        if len(batches) == 3:
            raise KeyboardInterrupt
        return real_batch(ids)

    monkeypatch.setattr(reevaluate.Command, "_batch", staticmethod(fail_on_the_third))
    with pytest.raises(KeyboardInterrupt):
        run("--batch-size", "2")
    assert [len(ids) for ids in batches] == [2, 2, 1]
    # The two batches that committed are current; the interrupted one rolled back.
    revisions = [c.rules_revision for c in Course.objects.order_by("pk")]
    assert revisions == [2, 2, 2, 2, 1]

    monkeypatch.setattr(reevaluate.Command, "_batch", staticmethod(real_batch))
    output = run("--batch-size", "2")
    assert "1/1 courses (100 %)" in output
    assert all(codes(c) == ["SCORES_OVERDUE"] for c in courses)


def test_the_progress_bar():
    assert reevaluate.progress_bar(0, 8) == f"[{'.' * 30}] 0/8 courses (0 %)"
    assert reevaluate.progress_bar(4, 8) == f"[{'#' * 15}{'.' * 15}] 4/8 courses (50 %)"
    assert reevaluate.progress_bar(0, 0).endswith("0/0 courses (100 %)")


def test_the_course_page_never_shows_an_older_revision_as_current(as_user, clinician):
    course = unscored_course(clinician)
    client = as_user(clinician)
    as_revision_1(course)
    cache.clear()  # a new release starts with no page cached under its key

    response = client.get(reverse("courses:detail", args=[course.pk]))

    body = response.content.decode()
    assert 'data-flag="SCORES_OVERDUE"' in body
    assert 'data-flag="INCREASE_FREQUENCY"' not in body
    course.refresh_from_db()
    assert course.rules_revision == RULES_REVISION  # re-evaluated on read, and stored


def test_fragment_keys_name_the_rules_revision(monkeypatch):
    from ketacare import fragments

    key = fragments.fragment_key("courses/_record.html", [1, 2])
    monkeypatch.setattr(fragments, "RULES_REVISION", RULES_REVISION + 1)
    assert fragments.fragment_key("courses/_record.html", [1, 2]) != key
