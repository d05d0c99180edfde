"""The rules engine in the app: evaluation kept current by every action, shown on the pages,
and flags acted on by clinicians."""

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from assessments.actions import sign_assessment
from assessments.models import Assessment
from audit.models import Action, AuditEvent
from clinical.vocab import MedClass
from courses.actions import record_session
from courses.models import FlagDecision, TreatmentSession
from patients.actions import add_medication, stop_medication, update_patient
from patients.models import Medication
from tests.conftest import sent
from tests.factories import CourseFactory, PriorTrialFactory, UserFactory, WeightFactory, at

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "clinical" / "cases"


# -- the JSON command ---------------------------------------------------------------------------

def test_evaluate_course_prints_the_spec_example(capsys):
    call_command("evaluate_course", str(CASES / "spec_example.json"))
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["provisional"], out["percent_reduction"]) == (
        "non_response", True, 19.4
    )
    assert [f["code"] for f in out["flags"]] == ["BENZODIAZEPINE"]


def test_evaluate_course_reads_standard_input_and_refuses_bad_input_in_one_line():
    good = (CASES / "spec_example.json").read_text()
    run = lambda text: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", "evaluate_course", "-"], input=text, cwd=ROOT,
        capture_output=True, text=True, timeout=60, env={"DEBUG": "1", "PATH": "/usr/bin"},
    )
    ok = run(good)
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "non_response"
    data = json.loads(good)
    data["sessions"][0]["dose_mg_per_kg"] = 1.2
    bad = run(json.dumps(data))
    assert bad.returncode != 0 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "sessions[0].dose_mg_per_kg" in lines[0]


def test_evaluate_course_names_a_missing_file():
    with pytest.raises(CommandError, match="missing.json"):
        call_command("evaluate_course", "missing.json")


# -- kept current by every action ---------------------------------------------------------------

@pytest.fixture
def course(db, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1), created_by=clinician)
    WeightFactory(patient=course.patient, weight_kg="80.0", measured_on=date(2026, 1, 1))
    PriorTrialFactory.create_batch(2, patient=course.patient)
    sign_assessment(clinician, Assessment(course=course, instrument="madrs",
                                          administered_at=at(date(2026, 2, 1), 8),
                                          items=[4, 4, 4, 4, 3, 4, 3, 4, 3, 3]))  # 36
    return course


def give_sessions(clinician, course, n, dose="0.5", start=1, **fields):
    for i in range(n):
        record_session(clinician, TreatmentSession(
            course=course, started_at=at(course.started_on + timedelta(days=start + 2 * i)),
            route="iv", dose_mg_per_kg=dose, dose_mg="40.0", infusion_minutes=40,
            **fields,
        ), [])


def score_madrs(clinician, course, day, items):
    when = at(course.started_on + timedelta(day), 12)
    sign_assessment(clinician, Assessment(course=course, instrument="madrs",
                                          administered_at=when, items=items))


def test_each_action_refreshes_the_stored_evaluation(clinician, course):
    course.refresh_from_db()
    assert course.evaluation["status"] == "insufficient_data"
    give_sessions(clinician, course, 6)
    score_madrs(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])  # 29
    course.refresh_from_db()
    assert (course.evaluation["status"], course.evaluation["provisional"]) == (
        "non_response", False
    )
    assert "NO_SIGNAL_AFTER_4" in [f["code"] for f in course.evaluation["flags"]]

    benzo = add_medication(clinician, Medication(patient=course.patient, name="Klonopin",
                                                 started_on=date(2025, 1, 1)))
    course.refresh_from_db()
    assert "BENZODIAZEPINE" in [f["code"] for f in course.evaluation["flags"]]
    stop_medication(clinician, benzo, date(2026, 1, 15), "tapered")
    course.refresh_from_db()
    assert "BENZODIAZEPINE" not in [f["code"] for f in course.evaluation["flags"]]

    before = {"diagnosis": course.patient.diagnosis}
    course.patient.diagnosis = "bipolar_i"
    update_patient(clinician, course.patient, before, ["diagnosis"])
    course.refresh_from_db()
    assert course.evaluation["flags"][0]["code"] == "BIPOLAR_NO_MOOD_STABILIZER"


def test_the_course_page_shows_status_numbers_and_sorted_flags(as_user, clinician, course):
    give_sessions(clinician, course, 6, bp_pre_systolic=185, bp_pre_diastolic=95)
    score_madrs(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])
    add_medication(clinician, Medication(patient=course.patient, name="naltrexone",
                                         started_on=date(2025, 1, 1)))
    response = as_user(clinician).get(reverse("courses:detail", args=[course.pk]))
    body = response.content.decode()
    assert "Non-response" in body and "19.4 %" in body
    severities = [f["severity"] for f in response.context["flags"]]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert severities[0] == "critical"  # BP above 180
    assert "Source:" in body and "Suggestion:" in body


def test_the_patient_list_shows_status_and_most_severe_flag(as_user, clinician, course):
    give_sessions(clinician, course, 2)
    score_madrs(clinician, course, 4, [4, 4, 4, 4, 3, 4, 3, 4, 3, 2])
    course.patient.psychotic_features = True
    update_patient(clinician, course.patient, {"psychotic_features": False},
                   ["psychotic_features"])
    body = as_user(clinician).get(reverse("patients:list")).content.decode()
    assert "Non-response (provisional)" in body
    assert "Psychotic features" in body


def test_the_session_form_shows_critical_flags_first(as_user, clinician, course):
    score_madrs(clinician, course, 0, [4, 4, 4, 4, 3, 4, 3, 4, 3, 5])  # item 10 at 5
    body = as_user(clinician).get(reverse("courses:session-new", args=[course.pk])).content
    assert b'data-flag="SUICIDAL_IDEATION"' in body


# -- decisions on flags -------------------------------------------------------------------------

def decide(client, course, code, **data):
    return client.post(reverse("courses:flag-decide", args=[course.pk, code]), data)


def test_accepting_a_flag_is_signed_audited_and_counts_as_optimization(as_user, clinician,
                                                                       course):
    give_sessions(clinician, course, 6)
    score_madrs(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])
    client = as_user(clinician)
    missing = decide(client, course, "DOSE_ESCALATION", decision="accepted")
    assert {"action", "detail"} <= set(missing.context["form"].errors)
    response = decide(client, course, "DOSE_ESCALATION", decision="accepted",
                      action="dose_change", detail="0.6 mg/kg from the next session")
    assert response.status_code == 302
    decision = FlagDecision.objects.get()
    assert (decision.decided_by, decision.action) == (clinician, "dose_change")
    assert AuditEvent.objects.get(action=Action.DECIDE).after["code"] == "DOSE_ESCALATION"
    page = client.get(reverse("courses:detail", args=[course.pk]))
    assert "0.6 mg/kg from the next session" in page.content.decode()


def test_a_declined_flag_stays_quieter_until_its_facts_change(as_user, clinician, course):
    give_sessions(clinician, course, 6)
    score_madrs(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])
    client = as_user(clinician)
    refused = decide(client, course, "NO_SIGNAL_AFTER_4", decision="declined")
    assert "reason" in refused.context["form"].errors
    decide(client, course, "NO_SIGNAL_AFTER_4", decision="declined", reason="reviewed today")

    def flag() -> str:
        page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
        flags = page.split("data-flag=")  # the flag's own block, up to the next flag
        block = next(f for f in flags if f.startswith('"NO_SIGNAL_AFTER_4"'))
        return flags[flags.index(block) - 1].rsplit("<div", 1)[1] + block.split("<h2")[0]

    # Twice: the second page comes from the cache (ketacare.fragments) and says the same.
    for _ in range(2):
        assert "flag-quiet" in flag() and "reviewed today" in flag()
    give_sessions(clinician, course, 1, start=14)  # a seventh session: the message changes
    assert "flag-quiet" not in flag()


def test_a_flag_that_is_not_raised_cannot_be_decided(as_user, clinician, course):
    response = decide(as_user(clinician), course, "DOSE_ESCALATION", decision="declined",
                      reason="x")
    assert response.status_code == 404
    assert not FlagDecision.objects.exists()


def test_only_clinicians_decide(as_user, clinician, course):
    give_sessions(clinician, course, 6)
    score_madrs(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])
    url = reverse("courses:flag-decide", args=[course.pk, "NO_SIGNAL_AFTER_4"])
    assert as_user(UserFactory(role="clinic_admin")).post(url, {}).status_code == 403
    assert as_user(UserFactory(role="referring_provider")).get(url).status_code == 404
    assert as_user(None).get(url).status_code == 302
    assert as_user(UserFactory()).get(url).status_code == 200
    assert not FlagDecision.objects.exists()


def test_classes_come_from_the_catalogue_in_the_app_too(clinician, course):
    med = add_medication(clinician, Medication(patient=course.patient, name="Revia",
                                               started_on=date(2025, 1, 1)))
    assert med.drug_class == MedClass.NALTREXONE


# -- one pass: the refresh reads the course once and stores what the engine returns -----------

@pytest.fixture
def full_course(clinician, course):
    """A course with something of each kind a refresh reads, and what must not count."""
    from assessments.actions import correct_assessment
    from courses.actions import void_session
    from patients.models import TrialOutcome

    give_sessions(clinician, course, 3)  # 0.5 mg/kg on days 1, 3 and 5
    record_session(clinician, TreatmentSession(
        course=course, started_at=at(course.started_on + timedelta(days=7)), route="iv",
        dose_mg_per_kg="0.6", dose_mg="48.0", infusion_minutes=40, dissociation="severe",
    ), [("nausea", "mild"), ("blood pressure", "moderate")])
    give_sessions(clinician, course, 1, dose="0.6", start=8, status="stopped")
    give_sessions(clinician, course, 1, dose="0.6", start=10)  # entered in error, voided
    wrong = TreatmentSession.objects.get(course=course, started_at__date=date(2026, 2, 11))
    void_session(clinician, wrong, read_version=wrong.version, reason="wrong patient")
    score_madrs(clinician, course, 9, [3, 3, 3, 3, 3, 3, 3, 3, 3, 3])  # 30, then corrected:
    typo = Assessment.objects.get(course=course, total=30)
    correct_assessment(clinician, typo, Assessment(administered_at=typo.administered_at,
                                                   items=[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]), "typo")
    add_medication(clinician, Medication(patient=course.patient, name="lithium",
                                         started_on=date(2026, 2, 4)))
    PriorTrialFactory(patient=course.patient, drug="bupropion", outcome=TrialOutcome.RESPONSE)
    for code, decision in (("DOSE_ESCALATION", "accepted"), ("MAINTENANCE_PLAN", "declined")):
        FlagDecision.objects.create(course=course, code=code, decision=decision,
                                    flag_message="seen", decided_by=clinician,
                                    decided_at=at(date(2026, 2, 9)))
    return course


def test_a_refresh_reads_the_course_once_and_stores_what_the_engine_returns(
        clinician, full_course):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clinical.engine import evaluate
    from clinical.vocab import Intensity, SessionStatus
    from courses.evaluation import (
        course_facts,
        engine_settings,
        outcome_fields,
        refresh_evaluation,
    )
    from courses.models import Course

    course = Course.objects.select_related("patient").get(pk=full_course.pk)
    facts = course_facts(course)
    assert [(s.at.date().day, s.status, s.dissociation, s.adverse_event_severity)
            for s in facts.sessions] == [
        (2, SessionStatus.COMPLETED, Intensity.NONE, Intensity.NONE),
        (4, SessionStatus.COMPLETED, Intensity.NONE, Intensity.NONE),
        (6, SessionStatus.COMPLETED, Intensity.NONE, Intensity.NONE),
        (8, SessionStatus.COMPLETED, Intensity.SEVERE, Intensity.MODERATE),  # the worst event
        (9, SessionStatus.STOPPED, Intensity.NONE, Intensity.NONE),
    ]  # the voided session of day 11 counts for nothing
    assert [a.total for a in facts.assessments] == [36, 20]  # 30 was corrected to 20
    assert [t.drug for t in facts.patient.failed_trials] == ["sertraline", "sertraline"]
    assert [m.name for m in facts.medications] == ["lithium"]
    assert facts.accepted_flags == frozenset({"DOSE_ESCALATION"})  # not the declined one

    # One statement reads it all on PostgreSQL (six through the ORM elsewhere), one writes.
    with CaptureQueriesContext(connection) as queries:
        refresh_evaluation(course)
    assert len(sent(queries)) == (2 if connection.vendor == "postgresql" else 6)
    course.refresh_from_db()
    evaluation = evaluate(facts, engine_settings())
    for name, value in outcome_fields(evaluation).items():
        assert getattr(course, name) == value, name
    assert course.optimized and course.first_session_on == date(2026, 2, 2)
    assert course.last_session_at == at(date(2026, 2, 9))  # not the voided one of day 11
    assert course.evaluation["optimizations"] == list(evaluation.optimizations)


def test_postgresql_reads_in_one_statement_what_the_orm_reads(full_course):
    from django.db import connection

    from courses.evaluation import _rows, _rows_in_one_statement
    from courses.models import Course

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's")
    course = Course.objects.select_related("patient").get(pk=full_course.pk)
    assert _rows_in_one_statement(course) == _rows(course)
