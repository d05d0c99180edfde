"""The outcome the engine returns with every evaluation (Evaluation.outcome): what the outcome
dashboard counts a course by. It used to be derived on the Django side from the engine's
course state (courses.evaluation.outcome_fields, before the refresh took one pass);
``reference_outcome`` below is that derivation, kept here as the contract."""

from collections import Counter
from datetime import datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.engine import (
    NO_OUTCOME,
    RESPONDING,
    EngineSettings,
    course_state,
    dose_of,
    evaluate,
    instrument_status,
    responding_limit,
)
from clinical.vocab import Route, SessionStatus
from tests.clinical.builders import course, day, iv, madrs, nasal, oral, phq9
from tests.clinical.test_engine_properties import courses, escalating_courses


def reference_outcome(facts, rules: EngineSettings) -> dict:
    """The Django-side derivation the engine's outcome replaced, unchanged but for reading
    the course state directly."""
    state = course_state(facts, rules)
    completed = state.completed
    fields = {
        "main_route": None, "highest_dose_mg_per_kg": None, "highest_dose_mg": None,
        "first_session_on": None, "responded_on": None, "days_to_response": None,
        "sessions_to_response": None,
    }
    if not completed:
        return fields
    counts = Counter(s.route for s in completed)
    last_use = {s.route: i for i, s in enumerate(completed)}
    route = max(counts, key=lambda r: (counts[r], last_use[r]))
    on_route = [s for s in completed if s.route == route]
    fields["main_route"] = route
    unit = "highest_dose_mg_per_kg" if route.weight_based else "highest_dose_mg"
    fields[unit] = max((d for s in on_route if (d := dose_of(s)) is not None), default=None)
    first = completed[0].at
    fields["first_session_on"] = first_day = state.day(first)
    primary = state.primary
    remission = state.settings.remission(primary.instrument)
    later: dict[datetime, int] = {}
    for a in state.assessments:
        if a.instrument == primary.instrument and a.at > first:
            later[a.at] = max(a.total, later.get(a.at, a.total))
    for moment in sorted(later):
        if instrument_status(primary.baseline, later[moment], remission) in RESPONDING:
            fields["responded_on"] = responded = state.day(moment)
            fields["days_to_response"] = (responded - first_day).days
            fields["sessions_to_response"] = sum(1 for s in completed if s.at < moment)
            break
    return fields


def outcome_of(facts, rules: EngineSettings) -> dict:
    outcome = evaluate(facts, rules).outcome
    return {name: getattr(outcome, name) for name in reference_outcome(facts, rules)}


@settings(max_examples=400)
@given(facts=st.one_of(courses(), escalating_courses()), remission=st.integers(4, 14))
def test_the_engines_outcome_is_the_former_django_side_derivation(facts, remission):
    rules = EngineSettings(madrs_remission=remission)
    assert outcome_of(facts, rules) == reference_outcome(facts, rules)


@given(baseline=st.integers(0, 60), current=st.integers(0, 60), remission=st.integers(0, 20))
def test_a_score_responds_exactly_when_it_is_at_most_the_responding_limit(
        baseline, current, remission):
    responds = instrument_status(baseline, current, remission) in RESPONDING
    assert responds is (current <= responding_limit(baseline, remission))


def test_no_completed_session_no_outcome():
    assert evaluate(course([], assessments=[madrs(-1, 36)])).outcome == NO_OUTCOME


def test_the_first_responding_score_after_the_first_session_dates_the_response():
    sessions = [iv(0), iv(2), iv(4, "0.6"), iv(7, "0.6")]
    scores = [madrs(-1, 36), madrs(3, 30), madrs(5, 18), madrs(8, 20)]
    outcome = evaluate(course(sessions, assessments=scores)).outcome
    assert (outcome.main_route, outcome.highest_dose_mg_per_kg, outcome.highest_dose_mg) == (
        Route.IV, Decimal("0.6"), None)
    assert outcome.first_session_on == day(0)
    # 18 is half of 36: response, on day 5, after the sessions of days 0, 2 and 4.
    assert (outcome.responded_on, outcome.days_to_response, outcome.sessions_to_response) == (
        day(5), 5, 3)


def test_at_a_tied_instant_the_higher_score_decides():
    # Day 5: 18 and 19 at the same instant; 19 counts (reading 4), and is no response.
    scores = [madrs(-1, 36), madrs(5, 18), madrs(5, 19), madrs(9, 10)]
    outcome = evaluate(course([iv(0), iv(2), iv(4), iv(7)], assessments=scores)).outcome
    assert (outcome.responded_on, outcome.days_to_response, outcome.sessions_to_response) == (
        day(9), 9, 4)


def test_the_main_route_is_the_most_used_a_tie_to_the_one_used_last():
    sessions = [iv(0), iv(2, "0.75"), nasal(4, 56), nasal(6, 84)]
    outcome = evaluate(course(sessions)).outcome
    assert (outcome.main_route, outcome.highest_dose_mg, outcome.highest_dose_mg_per_kg) == (
        Route.INTRANASAL, Decimal(84), None)
    stopped = SessionStatus.STOPPED
    sessions = [iv(0), iv(2, "0.75"), nasal(4, 56), nasal(6, 84, status=stopped), oral(8)]
    assert evaluate(course(sessions)).outcome.main_route == Route.IV


def test_a_phq9_primary_dates_its_response_on_phq9():
    scores = [phq9(-1, 20), phq9(3, 11), phq9(6, 4)]
    outcome = evaluate(course([iv(0), iv(2), iv(5)], assessments=scores)).outcome
    # 11 is a partial response to 20 (45 %); 4 is remission (PHQ-9 4 or less): day 6.
    assert (outcome.responded_on, outcome.days_to_response, outcome.sessions_to_response) == (
        day(6), 6, 3)
