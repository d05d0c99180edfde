"""The outcome dashboard (issue 4): who may read it, its numbers on a small hand-built clinic,
the course columns it counts by (kept by refresh_evaluation), its period, and its cost."""

import importlib
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assessments.actions import correct_assessment, sign_assessment
from assessments.models import Assessment
from audit.log import record
from audit.models import Action, AuditEvent
from clinical.vocab import Instrument, Route, SessionStatus, Status
from courses.actions import decide_flag, record_session, start_course
from courses.evaluation import refresh_evaluation
from courses.models import ActionTaken, Course, Decision, FlagDecision, TreatmentSession
from ketacare.prepared import sends_together
from outcomes.forms import year_before
from outcomes.summary import DoseBand, Tried, dose_band, outcomes
from tests.conftest import sent
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
    UserFactory,
    at,
)

pytestmark = pytest.mark.django_db

URL = "/outcomes/"
PERIOD = {"started_from": "2026-01-01", "started_to": "2026-06-30"}


def test_the_url_is_named():
    assert reverse("outcomes:dashboard") == URL


# -- building courses through the real actions --------------------------------------------------

def items_for(instrument: Instrument, total: int) -> list[int]:
    """Item scores adding up to ``total``."""
    count, top = (10, 6) if instrument == Instrument.MADRS else (9, 3)
    items = []
    for _ in range(count):
        items.append(min(top, total))
        total -= items[-1]
    assert total == 0
    return items


def score(user, course, instrument, when, total) -> Assessment:
    return sign_assessment(user, Assessment(course=course, instrument=instrument,
                                            administered_at=when,
                                            items=items_for(instrument, total)))


def give(user, course, when, route=Route.IV, dose="0.5", status=SessionStatus.COMPLETED):
    if Route(route).weight_based:
        per_kg, mg = Decimal(dose), Decimal(dose) * 80
    else:
        per_kg, mg = None, Decimal(dose)
    return record_session(user, TreatmentSession(
        course=course, started_at=when, route=route, dose_mg_per_kg=per_kg, dose_mg=mg,
        infusion_minutes=40 if route == Route.IV else None,
        enhanced_monitoring=per_kg is not None and per_kg > Decimal("0.75"), status=status,
        stop_reason="vomiting" if status == SessionStatus.STOPPED else "",
    ), [])


def make_course(user, start: date, doses: list, scores: list[int], *, route=Route.IV,
                instrument=Instrument.MADRS) -> Course:
    """A course started on ``start``: the baseline that morning, then session i on day
    1 + 2i at 09:00, each followed at noon by the next of ``scores`` while they last."""
    course = start_course(user, Course(patient=PatientFactory(), started_on=start))
    score(user, course, instrument, at(start, 8), scores[0])
    for i, dose in enumerate(doses):
        day = start + timedelta(days=1 + 2 * i)
        give(user, course, at(day, 9), route, dose)
        if i + 1 < len(scores):
            score(user, course, instrument, at(day, 12), scores[i + 1])
    course.refresh_from_db()
    return course


def accept(user, course, code, action, decision=Decision.ACCEPTED) -> FlagDecision:
    """A decision row as decide_flag writes it. The dashboard reads these rows, not the
    evaluation, so any flag can be decided here without first raising it."""
    made = FlagDecision.objects.create(
        course=course, code=code, decision=decision, action=action, flag_message="seen",
        decided_by=user, decided_at=at(course.started_on + timedelta(days=10)),
    )
    refresh_evaluation(course)  # as decide_flag does: an accepted strategy is an optimization
    return made


@pytest.fixture
def clinic(clinician):
    """Eight courses started in the first half of 2026 and two just outside it."""
    c = {}
    iv = ["0.5"] * 4
    c["A"] = make_course(clinician, date(2026, 1, 1), iv, [30, 20, 14])  # response
    c["B"] = make_course(clinician, date(2026, 2, 1), iv, [30, 8])  # remission
    c["C"] = make_course(clinician, date(2026, 3, 1), ["0.5", "0.5", "0.75", "0.75"],
                         [30, 28, 27, 26, 25])  # non-response
    c["D"] = make_course(clinician, date(2026, 4, 1), ["1.0"] * 4, [30, 20, 12])  # response
    c["E"] = make_course(clinician, date(2026, 5, 1), ["0.5"] * 2, [30])  # insufficient data
    c["F"] = make_course(clinician, date(2026, 6, 30), iv, [30, 24, 22])  # partial response
    c["G"] = make_course(clinician, date(2026, 2, 15), ["56", "56", "84", "84"],
                         [32, 30, 28, 20, 12], route=Route.INTRANASAL)  # response
    c["H"] = make_course(clinician, date(2026, 3, 15), ["56"] * 4, [20, 3],
                         route=Route.INTRANASAL, instrument=Instrument.PHQ9)  # remission
    c["I"] = make_course(clinician, date(2025, 12, 31), iv, [30, 8])  # before the period
    c["J"] = make_course(clinician, date(2026, 7, 1), iv, [30, 8])  # after it

    # C: the benzodiazepine flag raised and accepted the real way.
    MedicationFactory(patient=c["C"].patient, started_on=date(2025, 6, 1))
    refresh_evaluation(c["C"])
    decide_flag(clinician, c["C"], "BENZODIAZEPINE", Decision.ACCEPTED,
                action=ActionTaken.MEDICATION_CHANGE, detail="held on treatment days")
    accept(clinician, c["C"], "ROUTE_SWITCH", "", decision=Decision.DECLINED)  # not tried
    accept(clinician, c["D"], "DOSE_ESCALATION", ActionTaken.DOSE_CHANGE)
    accept(clinician, c["D"], "DOSE_ESCALATION", ActionTaken.DOSE_CHANGE)  # counted once
    accept(clinician, c["G"], "ESKETAMINE_ESCALATION", ActionTaken.DOSE_CHANGE)
    accept(clinician, c["F"], "INFUSION_RATE", ActionTaken.INFUSION_RATE)  # other
    accept(clinician, c["A"], "MAINTENANCE_PLAN", ActionTaken.SCHEDULE_CHANGE)  # a plan only
    accept(clinician, c["E"], "DOSE_ESCALATION", ActionTaken.MONITORING)  # no change made
    accept(clinician, c["I"], "DOSE_ESCALATION", ActionTaken.DOSE_CHANGE)  # outside
    return c


def counts(row) -> tuple:
    return (row.courses, row.evaluable, row.responders, row.remitters)


def by_key(rows) -> dict:
    return {row.key: row for row in rows}


# -- the course columns the dashboard counts by -------------------------------------------------

def test_refresh_fills_the_outcome_columns(clinic):
    a, g, h, e = clinic["A"], clinic["G"], clinic["H"], clinic["E"]
    # IV: the dose in mg/kg only (its mg depends on the weight).
    assert (a.status, a.main_route, a.highest_dose_mg_per_kg, a.highest_dose_mg) == (
        Status.RESPONSE, Route.IV, Decimal("0.5"), None)
    assert a.status == a.evaluation["status"]
    # First session on day 1; 14 (53 %) after the second session, on day 3.
    assert (a.first_session_on, a.responded_on, a.days_to_response, a.sessions_to_response) \
        == (date(2026, 1, 2), date(2026, 1, 4), 2, 2)
    # Intranasal: mg only; 20 (37.5 %) is not yet response, 12 (62.5 %) after session 4 is.
    assert (g.main_route, g.highest_dose_mg_per_kg, g.highest_dose_mg) == (
        Route.INTRANASAL, None, Decimal("84.0"))
    assert (g.responded_on, g.days_to_response, g.sessions_to_response) == (
        date(2026, 2, 22), 6, 4)
    # PHQ-9 is the primary instrument without MADRS: 20 → 3 is remission.
    assert (h.status, h.responded_on, h.sessions_to_response) == (
        Status.REMISSION, date(2026, 3, 16), 1)
    assert (e.status, e.responded_on, e.days_to_response, e.sessions_to_response) == (
        Status.INSUFFICIENT_DATA, None, None, None)


def test_a_course_without_a_completed_session_has_no_route_or_dose(clinician):
    course = start_course(clinician, Course(patient=PatientFactory(),
                                            started_on=date(2026, 2, 1)))
    give(clinician, course, at(date(2026, 2, 2)), status=SessionStatus.STOPPED)
    course.refresh_from_db()
    assert (course.status, course.main_route, course.highest_dose_mg_per_kg,
            course.first_session_on) == (Status.INSUFFICIENT_DATA, "", None, None)


def test_the_columns_follow_each_new_and_corrected_entry(clinician):
    course = make_course(clinician, date(2026, 2, 1), ["0.5"], [30])
    assert (course.status, course.responded_on) == (Status.INSUFFICIENT_DATA, None)

    later = score(clinician, course, Instrument.MADRS, at(date(2026, 2, 3), 8), 12)
    course.refresh_from_db()
    assert (course.status, course.responded_on, course.days_to_response,
            course.sessions_to_response) == (Status.RESPONSE, date(2026, 2, 3), 1, 1)

    # The 12 was misread: corrected to 24 (20 %), the course has not responded.
    correct_assessment(clinician, later, Assessment(administered_at=later.administered_at,
                                                    items=items_for(Instrument.MADRS, 24)),
                       "item 4 misread")
    course.refresh_from_db()
    assert (course.status, course.responded_on, course.days_to_response,
            course.sessions_to_response) == (Status.NON_RESPONSE, None, None, None)

    give(clinician, course, at(date(2026, 2, 5)), dose="0.75")
    course.refresh_from_db()
    assert (course.main_route, course.highest_dose_mg_per_kg) == (Route.IV, Decimal("0.75"))

    # Two IV sessions and two intranasal: a tie goes to the route used last. A stopped
    # session counts for nothing.
    give(clinician, course, at(date(2026, 2, 7)), Route.INTRANASAL, "56")
    give(clinician, course, at(date(2026, 2, 8)), Route.INTRANASAL, "84",
         status=SessionStatus.STOPPED)
    course.refresh_from_db()
    assert (course.main_route, course.highest_dose_mg_per_kg) == (Route.IV, Decimal("0.75"))
    give(clinician, course, at(date(2026, 2, 9)), Route.INTRANASAL, "56")
    course.refresh_from_db()
    assert (course.main_route, course.highest_dose_mg_per_kg, course.highest_dose_mg) == (
        Route.INTRANASAL, None, Decimal("56.0"))
    assert course.first_session_on == date(2026, 2, 2)


def test_the_migration_fills_existing_courses_as_refresh_does(clinic):
    migration = importlib.import_module("courses.migrations.0004_outcome_fields")
    columns = ["status", "main_route", "highest_dose_mg_per_kg", "highest_dose_mg",
               "first_session_on", "responded_on", "days_to_response", "sessions_to_response"]
    expected = list(Course.objects.order_by("pk").values_list(*columns))
    Course.objects.update(status=Status.INSUFFICIENT_DATA, main_route="",
                          highest_dose_mg_per_kg=None, highest_dose_mg=None,
                          first_session_on=None, responded_on=None, days_to_response=None,
                          sessions_to_response=None)
    migration.fill_outcome_fields(apps, None)
    assert list(Course.objects.order_by("pk").values_list(*columns)) == expected


# -- the numbers --------------------------------------------------------------------------------

def test_status_counts_and_totals_are_of_the_period(clinic):
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    assert dict(found.statuses) == {
        Status.INSUFFICIENT_DATA: 1, Status.REMISSION: 2, Status.RESPONSE: 3,
        Status.PARTIAL_RESPONSE: 1, Status.NON_RESPONSE: 1,
    }
    assert counts(found.total) == (8, 7, 5, 2)


def test_rates_by_route_have_denominators_and_small_groups_are_too_few(clinic):
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    rows = by_key(found.by_route)
    assert list(rows) == [Route.IV, Route.INTRANASAL]  # empty groups are left out
    iv, intranasal = rows[Route.IV], rows[Route.INTRANASAL]
    assert counts(iv) == (6, 5, 3, 1) and iv.insufficient == 1
    assert (iv.response_words, iv.remission_words) == ("3 of 5 (60 %)", "1 of 5 (20 %)")
    assert counts(intranasal) == (2, 2, 2, 1)
    assert intranasal.too_few and intranasal.response_rate is None
    assert intranasal.response_words == "2 of 2: too few to compare"


def test_dose_bands(clinic):
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    assert {row.key: row.courses for row in found.by_dose} == {
        DoseBand.IV_IM_STANDARD: 4,  # A, B, E, F
        DoseBand.IV_IM_ESCALATED: 1,  # C reached 0.75
        DoseBand.IV_IM_HIGH: 1,  # D at 1.0
        DoseBand.INTRANASAL_56: 1,  # H
        DoseBand.INTRANASAL_84: 1,  # G
    }


def test_band_edges(clinician):
    for dose in ["0.45", "0.5", "0.6", "0.75", "0.8"]:
        make_course(clinician, date(2026, 3, 1), [dose], [30])
    for route, dose in [(Route.INTRANASAL, "28"), (Route.ORAL, "100"), (Route.SUBLINGUAL, "150"),
                        (Route.ORAL, "200.5")]:
        make_course(clinician, date(2026, 3, 1), [dose], [30], route=route)
    make_course(clinician, date(2026, 3, 1), [], [30])
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    assert {row.key: row.courses for row in found.by_dose} == {
        DoseBand.IV_IM_LOW: 1, DoseBand.IV_IM_STANDARD: 1, DoseBand.IV_IM_ESCALATED: 2,
        DoseBand.IV_IM_HIGH: 1, DoseBand.INTRANASAL_28: 1, DoseBand.ORAL_LOW: 1,
        DoseBand.ORAL_MID: 1, DoseBand.ORAL_HIGH: 1, DoseBand.NO_SESSION: 1,
    }


@pytest.mark.parametrize(("route", "mg_per_kg", "mg", "band"), [
    ("", None, None, DoseBand.NO_SESSION),
    (Route.IV, None, None, DoseBand.NOT_RECORDED),
    (Route.IV, "0.499", None, DoseBand.IV_IM_LOW),
    (Route.IM, "0.5", None, DoseBand.IV_IM_STANDARD),
    (Route.IV, "0.501", None, DoseBand.IV_IM_ESCALATED),
    (Route.IV, "0.75", None, DoseBand.IV_IM_ESCALATED),
    (Route.IV, "0.751", None, DoseBand.IV_IM_HIGH),
    (Route.IV, "1.0", None, DoseBand.IV_IM_HIGH),
    (Route.INTRANASAL, None, "28", DoseBand.INTRANASAL_28),
    (Route.INTRANASAL, None, "56", DoseBand.INTRANASAL_56),
    (Route.INTRANASAL, None, "84", DoseBand.INTRANASAL_84),
    (Route.ORAL, None, "100", DoseBand.ORAL_LOW),
    (Route.SUBLINGUAL, None, "100.1", DoseBand.ORAL_MID),
    (Route.ORAL, None, "200", DoseBand.ORAL_MID),
    (Route.ORAL, None, "200.1", DoseBand.ORAL_HIGH),
    (Route.ORAL, None, None, DoseBand.NOT_RECORDED),
])
def test_dose_band(route, mg_per_kg, mg, band):
    def dose(value):
        return None if value is None else Decimal(value)

    assert dose_band(route, dose(mg_per_kg), dose(mg)) == band


def test_optimizations_tried_come_from_accepted_decisions(clinic):
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    rows = by_key(found.by_tried)
    assert list(rows) == list(Tried.values)  # every group, tried or not
    assert counts(rows[Tried.BENZODIAZEPINE_TAPER]) == (1, 1, 0, 0)  # C
    assert counts(rows[Tried.ESCALATION]) == (2, 2, 2, 0)  # D (twice), G
    assert counts(rows[Tried.OTHER]) == (1, 1, 0, 0)  # F's infusion rate
    for empty in (Tried.ROUTE_SWITCH, Tried.EXTENSION, Tried.AUGMENTATION):
        assert counts(rows[empty]) == (0, 0, 0, 0)
    # "None tried" is SPEC §3's "no optimization recorded": A (a maintenance plan only), B, H.
    # C's escalation 0.5 → 0.75 mg/kg between sessions counts without any flag accepted, and
    # E's accepted DOSE_ESCALATION counts as the engine reads it, whatever was noted as done.
    assert counts(rows[Tried.NONE]) == (3, 3, 3, 2)


def test_a_dose_change_between_sessions_is_tried_without_any_flag(clinician):
    course = make_course(clinician, date(2026, 3, 1), ["0.5", "0.5", "0.6", "0.6"], [30, 28, 25])
    assert course.optimized
    steady = make_course(clinician, date(2026, 3, 1), ["0.5"] * 4, [30, 28, 25])
    assert not steady.optimized
    rows = by_key(outcomes(date(2026, 1, 1), date(2026, 6, 30)).by_tried)
    assert rows[Tried.NONE].courses == 1


def test_a_route_change_is_a_route_switch_whatever_flag_it_answered(clinician):
    course = make_course(clinician, date(2026, 3, 1), ["0.5"], [30, 8])
    accept(clinician, course, "NO_SIGNAL_AFTER_4", ActionTaken.ROUTE_CHANGE)
    accept(clinician, course, "LITHIUM_AUGMENTATION", ActionTaken.MEDICATION_CHANGE)
    accept(clinician, course, "EXTEND_INDUCTION", ActionTaken.SCHEDULE_CHANGE)
    rows = by_key(outcomes(date(2026, 1, 1), date(2026, 6, 30)).by_tried)
    for tried in (Tried.ROUTE_SWITCH, Tried.AUGMENTATION, Tried.EXTENSION):
        assert rows[tried].courses == 1
    assert rows[Tried.NONE].courses == 0


def test_time_to_response(clinic):
    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    rows = by_key(found.time_to_response)
    assert list(rows) == ["all", Route.IV, Route.INTRANASAL]
    # Days 0 (B, H), 2 (A, D), 6 (G); sessions 1, 1, 2, 2, 4.
    everyone = rows["all"]
    assert (everyone.days.n, everyone.days.median, everyone.days.q1, everyone.days.q3) == (
        5, 2, 0, 2)
    assert (everyone.sessions.median, everyone.sessions.q1, everyone.sessions.q3) == (2, 1, 2)
    assert rows[Route.IV].days.too_few and rows[Route.IV].days.n == 3


# -- the page -----------------------------------------------------------------------------------

def test_it_shows_the_tables_and_charts_with_no_patient_data(as_user, clinic_admin, clinic):
    response = as_user(clinic_admin).get(URL, PERIOD)
    assert response.status_code == 200
    body = response.content.decode()
    assert "8</strong> courses started from 2026-01-01 to 2026-06-30" in body
    assert "3 of 5 (60 %)" in body and "2 of 2: too few to compare" in body
    assert body.count("<svg") == 4  # route, dose, optimization, time to response
    assert "median 2 (0 to 2)" in body
    for course in clinic.values():
        patient = course.patient
        for words in (patient.first_name, patient.last_name, patient.record_number):
            assert words not in body
    # CSP: no inline script or style (tests/test_security.py checks the other pages).
    assert " style=" not in body and "<style" not in body
    assert [t for t in re.findall(r"<script[^>]*>", body) if "src=" not in t] == []


def test_none_tried_is_explained_in_plain_words_with_the_rule_a_click_away(
        as_user, clinic_admin, clinic):
    """Users do not have the SPEC: the page says what "None tried" means and links to the
    Rules page's classification, where "An optimization is recorded" is given in full."""
    client = as_user(clinic_admin)
    body = client.get(URL, PERIOD).content.decode()
    assert "SPEC" not in body and "§" not in body
    assert "“None tried” is a course where nothing about the treatment was changed" in body
    anchor = f'{reverse("guidance:rules")}#classification'
    assert f'<a href="{anchor}">“An optimization is recorded”</a>' in body
    rules = client.get(reverse("guidance:rules")).content.decode()
    assert 'id="classification"' in rules and "An optimization is recorded" in rules


def test_it_is_not_audited(as_user, clinic_admin, clinic):
    client = as_user(clinic_admin)
    before = AuditEvent.objects.count()
    assert client.get(URL, PERIOD).status_code == 200
    assert AuditEvent.objects.count() == before  # counts only: no patient's record was read


def test_the_period_defaults_to_the_last_twelve_months(as_user, clinician, time_machine):
    time_machine.move_to(at(date(2026, 7, 15), 12), tick=False)
    for start in (date(2025, 7, 15), date(2025, 7, 16), date(2026, 7, 15), date(2026, 7, 16)):
        refresh_evaluation(CourseFactory(started_on=start))
    response = as_user(clinician).get(URL)
    assert response.status_code == 200
    assert "2</strong> courses started from 2025-07-16 to 2026-07-15" in response.content.decode()


def test_year_before():
    assert year_before(date(2026, 7, 15)) == date(2025, 7, 16)
    assert year_before(date(2028, 2, 29)) == date(2027, 3, 1)


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"started_from": "2026-02-30"}, "started_from", "Enter a valid date."),
    ({"started_to": "tomorrow"}, "started_to", "Enter a valid date."),
    ({"started_from": "0001-01-01"}, "started_from", "Enter a date between"),
    ({"started_from": "2026-06-01", "started_to": "2026-05-01"}, "started_to",
     "The end of the period is before its start."),
])
def test_a_bad_period_is_a_field_error(as_user, clinician, params, field, message):
    response = as_user(clinician).get(URL, params)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert "outcomes" not in response.context  # no numbers that look filtered but are not
    assert "Correct the period above" in response.content.decode()


HOSTILE = st.one_of(
    st.text(max_size=30),
    st.dates().map(date.isoformat),
    st.sampled_from(["9999-12-31", "10000-01-01", "-2026-01-01", "2026-13-01", "\x00",
                     "' OR '1'='1", "<script>alert(1)</script>", "9" * 400]),
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(params={"started_from": "2999-12-31"})
@example(params={"started_to": "2000-01-01"})
@given(params=st.fixed_dictionaries({}, optional={
    "started_from": HOSTILE | st.lists(HOSTILE, min_size=2, max_size=2),
    "started_to": HOSTILE,
}))
def test_hostile_periods_never_fail(as_user, clinician, params):
    """The dashboard's GET parameters, fuzzed (it is in test_fuzz.py's NOT_FORMS)."""
    assert as_user(clinician).get(URL, params).status_code == 200


# -- who may read it ----------------------------------------------------------------------------

def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_referring_provider_gets_a_404(as_user, referrer):
    assert as_user(referrer).get(URL).status_code == 404


@pytest.mark.parametrize("role", ["clinician", "clinic_admin"])
def test_clinicians_and_clinic_admins_read_it_and_find_it_in_the_menu(as_user, role):
    client = as_user(UserFactory(role=role))
    assert client.get(URL).status_code == 200
    assert f'href="{URL}"' in client.get(reverse("patients:list")).content.decode()


def test_only_get(as_user, clinic_admin):
    assert as_user(clinic_admin).post(URL, PERIOD).status_code == 405


def test_an_inactive_user_cannot_read_it(as_user, clinic_admin):
    client = as_user(clinic_admin)
    clinic_admin.is_active = False
    clinic_admin.save(update_fields=["is_active"])
    assert client.get(URL).status_code in (302, 404)


# -- its cost -----------------------------------------------------------------------------------

def count_queries(client, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, params).status_code == 200
    return len(sent(queries))


def add_courses(n: int, clinician) -> None:
    for i in range(n):
        course = CourseFactory(started_on=date(2026, 2, 1) + timedelta(days=i))
        AssessmentFactory(course=course)
        SessionFactory(course=course, route=[Route.IV, Route.INTRANASAL][i % 2],
                       dose_mg_per_kg=None if i % 2 else Decimal("0.5"))
        AssessmentFactory(course=course, administered_at=at(course.started_on, 18),
                          items=[1] * 10)
        refresh_evaluation(course)
        accept(clinician, course, "DOSE_ESCALATION", ActionTaken.DOSE_CHANGE)
        record(clinician, Action.CREATE, course)  # audited, as the actions are


def test_queries_do_not_grow_with_courses(as_user, clinic_admin, clinician):
    client = as_user(clinic_admin)
    add_courses(2, clinician)
    few = count_queries(client, PERIOD)
    add_courses(15, clinician)
    # Counted: session, user, data version; courses by status, route and dose; courses by
    # optimization tried (and in any group); days and sessions to response: the three in one
    # round trip on PostgreSQL.
    assert count_queries(client, PERIOD) == few == 3 + (1 if sends_together() else 3)
    # Nothing changed since: from the cache.
    assert count_queries(client, PERIOD) == 3



def test_the_tried_join_has_a_covering_index_on_postgresql():
    """Migration 0011's index holds every course column the optimizations-tried statement
    reads (the join's id, the period's start, the status), so PostgreSQL can join from it alone
    instead of scanning the course rows with their evaluation JSON."""
    from outcomes.summary import TRIED_SQL

    if connection.vendor != "postgresql":
        pytest.skip("an INCLUDE index is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('course_tried_idx'::regclass)")
        definition = cursor.fetchone()[0]
    assert definition.endswith("(id) INCLUDE (started_on, status)"), definition
    read = set(re.findall(r"\bc\.(\w+)", TRIED_SQL))
    assert read == {"id", "started_on", "status"}, read


# A row of outcomes/_rates.html as the template wrote it before Row.html did.
RATE_ROW = """
    <tr{% if row.too_few %} class="text-body-secondary"{% endif %}>
      <th scope="row" class="fw-normal">{{ row.label }}</th>
      <td class="text-end">{{ row.courses }}</td>
      <td class="text-end">{{ row.insufficient }}</td>
      <td>{{ row.response_words }}</td>
      <td>{{ row.remission_words }}</td>
    </tr>
  """


def test_rows_and_inputs_written_in_python_are_the_templates_markup(clinic):
    from django.forms.renderers import DjangoTemplates
    from django.template import Context, Template

    from outcomes.forms import PeriodForm
    from outcomes.summary import Row

    found = outcomes(date(2026, 1, 1), date(2026, 6, 30))
    rows = [*found.by_route, *found.by_dose, *found.by_tried, Row("x", "<b>'&\"</b>")]
    assert any(row.too_few for row in rows) and not all(row.too_few for row in rows)
    for row in rows:
        assert row.html == Template(RATE_ROW).render(Context({"row": row}))
    for data in ({}, {"started_from": "2026-13-01", "started_to": '<x">'}):
        plain, django = PeriodForm(data), PeriodForm(data, renderer=DjangoTemplates())
        plain.is_valid(), django.is_valid()
        assert plain.renderer is not django.renderer
        assert [str(field) for field in plain.visible_fields()] == [
            str(field) for field in django.visible_fields()]
