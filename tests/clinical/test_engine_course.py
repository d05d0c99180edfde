"""SPEC §3: the definitions the flags rest on (status, baseline, trial, trajectory, ...)."""

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinical.engine import (
    DEFAULTS,
    EngineSettings,
    FlagCode,
    course_state,
    evaluate,
    instrument_status,
    percent_reduction,
    round_half_away,
    trajectory,
)
from clinical.facts import SessionFact
from clinical.vocab import FlagSeverity, Instrument, MedClass, Route, Status, Trajectory
from tests.clinical.builders import (
    NON,
    PARTIAL,
    REMISSION,
    RESPONSE,
    at,
    course,
    im,
    iv,
    madrs,
    med,
    nasal,
    oral,
    phq9,
    run,
    scores,
    series,
    stopped,
    sublingual,
)

# -- Status -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "current", "status"),
    [
        (36, 29, Status.NON_RESPONSE),  # 19.4 %
        (32, 22, Status.PARTIAL_RESPONSE),  # 31.3 %
        (36, 14, Status.RESPONSE),  # 61.1 %
        (32, 12, Status.RESPONSE),  # 62.5 %, 12 > 10
        (36, 10, Status.REMISSION),  # at the criterion
        (36, 11, Status.RESPONSE),
        (40, 20, Status.RESPONSE),  # exactly 50 %
        (40, 21, Status.PARTIAL_RESPONSE),  # 47.5 %
        (40, 30, Status.PARTIAL_RESPONSE),  # exactly 25 %
        (40, 31, Status.NON_RESPONSE),  # 22.5 %
        (30, 36, Status.NON_RESPONSE),  # worsening
        (10, 4, Status.INSUFFICIENT_DATA),  # baseline already in remission
        (11, 10, Status.REMISSION),
        (None, 20, Status.INSUFFICIENT_DATA),
        (30, None, Status.INSUFFICIENT_DATA),
    ],
)
def test_it_classifies_each_status_by_the_first_rule_that_holds(baseline, current, status):
    assert instrument_status(baseline, current, 10) == status


def test_it_computes_the_percent_reduction_exactly():
    assert percent_reduction(36, 29) == Fraction(175, 9)
    assert percent_reduction(32, 22) == Fraction(125, 4)
    assert percent_reduction(0, 0) is None
    assert percent_reduction(None, 3) is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Fraction(125, 4), "31.3"),  # 32 → 22: 31.25 rounds half away from zero
        (Fraction(-125, 4), "-31.3"),
        (Fraction(175, 9), "19.4"),
        (Fraction(550, 9), "61.1"),
        (Fraction(1249, 40), "31.2"),  # 31.225
        (Fraction(0), "0.0"),
    ],
)
def test_it_rounds_one_decimal_half_away_from_zero(value, shown):
    assert str(round_half_away(value)) == shown


def test_it_uses_the_clinic_remission_setting():
    settings = EngineSettings(madrs_remission=12)
    sessions = series(8, nasal, mg=84)
    assert run(sessions, (32, 12)).status == Status.RESPONSE
    assert run(sessions, (32, 12), settings=settings).status == Status.REMISSION


def test_it_uses_the_phq9_remission_criterion():
    sessions = series(4)
    remission = scores(sessions, (20, 4), phq9)
    response = scores(sessions, (20, 5), phq9)
    assert run(sessions, assessments=remission).status == Status.REMISSION
    assert run(sessions, assessments=response).status == Status.RESPONSE


# -- Primary instrument, baseline and current -------------------------------------------------


def test_it_takes_madrs_as_primary_when_it_has_baseline_and_current():
    sessions = series(4)
    evaluation = run(sessions, NON, assessments=scores(sessions, (20, 4), phq9))
    assert evaluation.primary_instrument == Instrument.MADRS
    assert evaluation.status == Status.NON_RESPONSE
    assert evaluation.instruments[Instrument.PHQ9].status == Status.REMISSION


def test_it_falls_back_to_phq9_when_madrs_has_no_current_score():
    sessions = series(4)
    evaluation = run(sessions, assessments=[madrs(-1, 30), *scores(sessions, (20, 9), phq9)])
    assert evaluation.primary_instrument == Instrument.PHQ9
    assert (evaluation.baseline, evaluation.current) == (20, 9)
    assert evaluation.instruments[Instrument.MADRS].status == Status.INSUFFICIENT_DATA


def test_it_takes_the_latest_score_at_or_before_the_first_session_as_baseline():
    sessions = [iv(0)]
    assessments = [madrs(-5, 40), madrs(0, 36, hour=9), madrs(1, 29)]  # 09:00 is the session
    evaluation = run(sessions, assessments=assessments)
    assert (evaluation.baseline, evaluation.current) == (36, 29)


def test_it_takes_the_latest_score_after_the_first_session_as_current():
    sessions = series(3)
    evaluation = run(sessions, assessments=[madrs(-1, 36), madrs(1, 20), madrs(5, 29)])
    assert evaluation.current == 29


def test_it_splits_baseline_and_current_at_the_first_completed_session():
    sessions = [stopped(iv(0)), iv(2)]
    evaluation = run(sessions, assessments=[madrs(-1, 36), madrs(1, 34), madrs(3, 29)])
    assert (evaluation.baseline, evaluation.current) == (34, 29)


def test_it_counts_an_imported_total_for_classification():
    sessions = [iv(0)]
    evaluation = run(sessions, assessments=[madrs(-1, 36), madrs(1, total=14)])
    assert evaluation.status == Status.RESPONSE


def test_it_reports_insufficient_data_without_sessions():
    evaluation = run(assessments=[madrs(-1, 36), madrs(1, 20)])
    assert evaluation.status == Status.INSUFFICIENT_DATA
    assert evaluation.current is None
    assert evaluation.primary_instrument == Instrument.PHQ9


def test_it_takes_the_worse_of_two_scores_at_the_same_instant():
    sessions = [iv(0)]
    evaluation = run(
        sessions, assessments=[madrs(-1, 36), madrs(-1, 34), madrs(1, 20), madrs(1, 29)]
    )
    assert (evaluation.baseline, evaluation.current) == (34, 29)


# -- Adequate trial and provisional status ----------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "adequate"),
    [
        (series(4, iv, dose="0.5"), True),
        (series(3, iv, dose="0.5"), False),
        (series(4, iv, dose="0.45"), False),
        (series(2, iv) + series(2, im, start=10), True),  # IV and IM together
        (series(8, nasal, mg=56), True),
        (series(7, nasal, mg=84), False),
        (series(7, nasal, mg=56) + [nasal(20, mg=28)], False),
        (series(3, sublingual) + series(3, oral, start=10), True),  # together
        (series(5, oral), False),
        (series(3, iv) + [stopped(iv(10))], False),  # stopped sessions count for nothing
        (series(3, iv) + series(7, nasal, start=10), False),  # no group reaches its minimum
    ],
)
def test_it_decides_the_adequate_trial_per_route_group(sessions, adequate):
    evaluation = run(sessions, NON)
    assert evaluation.adequate_trial is adequate
    assert evaluation.provisional is (not adequate)


def test_it_counts_adequacy_on_the_current_routes_own_group():
    sessions = series(4, iv) + series(2, nasal, start=10)
    state = course_state(course(sessions))
    assert state.adequate_trial is True
    assert state.adequate_on_current_route is False


def test_it_reports_provisional_status_before_the_trial_is_adequate():
    evaluation = run(series(3), NON)
    assert (evaluation.status, evaluation.provisional) == (Status.NON_RESPONSE, True)


# -- Trajectory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        ([36, 30, 25], Trajectory.IMPROVING),
        ([36, 38, 30, 25], Trajectory.IMPROVING),  # the last three
        ([20, 25, 30], Trajectory.WORSENING),
        ([36, 30, 30], Trajectory.PLATEAU),
        ([36, 30, 33], Trajectory.PLATEAU),
        ([36, 30], Trajectory.INSUFFICIENT),
        ([], Trajectory.INSUFFICIENT),
    ],
)
def test_it_reads_the_trajectory_from_the_last_three_scores(totals, expected):
    assert trajectory(totals) == expected


def test_it_takes_the_trajectory_of_the_primary_instrument_from_the_baseline_on():
    sessions = series(6)
    assessments = [madrs(-9, 20), madrs(-1, 36), madrs(3, 32), madrs(7, 30), madrs(11, 28)]
    assert run(sessions, assessments=assessments).trajectory == Trajectory.IMPROVING
    assert run(sessions, assessments=assessments[:3]).trajectory == Trajectory.INSUFFICIENT


# -- Current dose, optimization ---------------------------------------------------------------


def test_it_takes_the_run_at_the_end_as_the_sessions_at_the_current_dose():
    sessions = [iv(0), iv(2, "0.6"), iv(4), iv(6), stopped(iv(7, "0.75")), iv(8)]
    state = course_state(course(sessions))
    assert [s.at for s in state.at_current_dose] == [at(4), at(6), at(8)]
    assert state.current_dose == Decimal("0.5")


def test_it_starts_a_new_run_when_the_route_changes_at_the_same_dose():
    state = course_state(course([iv(0), iv(2), im(4)]))
    assert len(state.at_current_dose) == 1


@pytest.mark.parametrize(
    ("sessions", "accepted", "medications", "recorded"),
    [
        ([iv(0), iv(2)], (), (), False),
        ([iv(0), iv(2, "0.6")], (), (), True),  # up
        ([iv(0, "0.75"), iv(2, "0.5")], (), (), True),  # down, skips included
        ([nasal(0, 56), nasal(3, 84)], (), (), True),
        ([iv(0), im(2)], (), (), True),  # route change
        ([iv(0), stopped(iv(1, "0.75")), iv(2)], (), (), False),
        ([iv(0)], ("DOSE_ESCALATION",), (), True),
        ([iv(0)], ("NO_SIGNAL_AFTER_4",), (), False),
        ([iv(0)], ("TRD_NOT_VERIFIED",), (), False),
        ([iv(0), iv(2)], (), (med("lithium", start=1),), True),
        ([iv(0), iv(2)], (), (med("lithium", start=0),), False),  # same day as session 1
        ([iv(0), iv(2)], (), (med("lithium", start=30),), False),  # after the as-of day
    ],
)
def test_it_records_an_optimization(sessions, accepted, medications, recorded):
    evaluation = evaluate(course(sessions, [madrs(3, 20)], medications, accepted=accepted))
    assert evaluation.optimization_recorded is recorded


# -- As of, time zone, medication activity -----------------------------------------------------


def test_it_leaves_out_sessions_and_assessments_after_as_of():
    sessions = series(6)
    facts = course(sessions, scores(sessions, RESPONSE, extra=[madrs(3, 29)]), as_of=at(4, 12))
    evaluation = evaluate(facts)
    assert evaluation.sessions_completed == 3
    assert (evaluation.current, evaluation.status) == (29, Status.NON_RESPONSE)


def test_it_reads_medication_activity_on_the_as_of_day():
    clonazepam = med("clonazepam", start=-30, stop=5)
    assert run([iv(0)], NON, medications=[clonazepam], as_of=at(5, 23)).flag("BENZODIAZEPINE")
    assert not run([iv(0)], NON, medications=[clonazepam], as_of=at(6, 0)).flag("BENZODIAZEPINE")


def test_it_reads_calendar_days_in_the_clinic_time_zone():
    # 03:00 UTC on 8 February is still 7 February in New York.
    late = datetime(2026, 2, 8, 3, 0, tzinfo=UTC)
    clonazepam = med("clonazepam", start=-30, stop=5)  # stops 7 February
    assert run([iv(0)], NON, medications=[clonazepam], as_of=late).flag("BENZODIAZEPINE")
    utc = EngineSettings(timezone=ZoneInfo("UTC"))
    evaluation = run([iv(0)], NON, medications=[clonazepam], as_of=late, settings=utc)
    assert not evaluation.flag("BENZODIAZEPINE")


def test_it_reads_a_naive_time_in_the_clinic_time_zone():
    naive = SessionFact(
        at=datetime(2026, 2, 2, 9, 0), route=Route.IV, dose_mg_per_kg=Decimal("0.5")
    )
    evaluation = evaluate(course([naive], [madrs(-1, 36), madrs(1, 29)]))
    assert evaluation.as_of == at(1, 10)
    assert evaluation.sessions_completed == 1


def test_it_defaults_as_of_to_the_latest_session_or_assessment():
    assert run(series(3), NON).as_of == at(5, 10)
    assert run([iv(0)], assessments=[madrs(-1, 30)]).as_of == at(0)
    assert run().as_of is None


def test_it_counts_open_prescriptions_as_active_when_nothing_is_dated():
    evaluation = run(medications=[med("naltrexone"), med("memantine", stop=-10)])
    assert evaluation.flag("NALTREXONE_HOLD")
    assert not evaluation.flag("MEMANTINE")


# -- Output -------------------------------------------------------------------------------------


def test_it_sorts_flags_by_severity_then_table_order():
    sessions = series(4, iv, bp_pre=(190, 100))
    evaluation = run(
        sessions,
        NON,
        medications=[med("clonazepam"), med("naltrexone"), med("lamotrigine")],
        patient_fields={"psychotic_features": True, "failed_trials": ()},
    )
    severities = [flag.severity for flag in evaluation.flags]
    assert severities == sorted(severities, key=lambda s: s.rank)
    assert evaluation.codes == (
        "PSYCHOTIC_FEATURES",
        "BP_ELEVATED",
        "BENZODIAZEPINE",
        "NALTREXONE_HOLD",
        "NO_SIGNAL_AFTER_4",
        "TRD_NOT_VERIFIED",
        "LAMOTRIGINE",
        "DOSE_ESCALATION",
        "INFUSION_RATE",
    )


def test_it_writes_the_spec_output_shape():
    evaluation = run(series(2), NON, medications=[med("clonazepam")])
    data = evaluation.to_json()
    assert list(data) == [
        "status",
        "provisional",
        "adequate_trial",
        "primary_instrument",
        "baseline",
        "current",
        "percent_reduction",
        "sessions_completed",
        "trajectory",
        "instruments",
        "flags",
    ]
    assert list(data["instruments"]) == ["madrs", "phq9"]
    assert list(data["instruments"]["madrs"]) == [
        "status",
        "baseline",
        "current",
        "percent_reduction",
    ]
    assert list(data["flags"][0]) == [
        "code",
        "severity",
        "message",
        "suggestion",
        "source",
        "suggested_dose_mg_per_kg",
    ]
    assert data["percent_reduction"] == 19.4


def test_it_writes_the_suggested_dose_as_a_number():
    evaluation = run(series(2), NON)
    flag = evaluation.flag(FlagCode.DOSE_ESCALATION)
    assert flag.to_json()["suggested_dose_mg_per_kg"] == 0.6
    assert flag.severity == FlagSeverity.INFO


def test_it_says_what_was_seen_with_the_numbers():
    sessions = series(6)
    evaluation = run(sessions, NON, medications=[med("clonazepam")])
    assert evaluation.flag("BENZODIAZEPINE").message == (
        "MADRS 36 → 29 (19.4 %) after 6 completed sessions; clonazepam is active."
    )
    assert evaluation.flag("BENZODIAZEPINE").source == (
        "000 step 3; 001 medications to avoid or adjust"
    )


def test_the_default_settings_are_the_spec_values():
    assert DEFAULTS.madrs_remission == 10
    assert DEFAULTS.phq9_remission == 4
    assert DEFAULTS.bp_warning == (140, 90)
    assert DEFAULTS.bp_critical == (180, 110)
    assert DEFAULTS.timezone == ZoneInfo("America/New_York")


def test_every_flag_code_has_a_rule():
    from clinical.engine import RULES

    assert [rule.code for rule in RULES] == list(FlagCode)


def test_an_unclassified_medication_raises_no_medication_flag():
    assert med("mystery-pill").drug_class == MedClass.UNCLASSIFIED
    evaluation = run([iv(0)], NON, medications=[med("mystery-pill")])
    assert evaluation.codes == ()


def test_remission_and_partial_fixtures_mean_what_they_say():
    assert run(series(4), REMISSION).status == Status.REMISSION
    assert run(series(4), PARTIAL).status == Status.PARTIAL_RESPONSE


def test_the_engine_and_the_json_reader_import_nothing_from_django():
    code = (
        "import sys, clinical.engine, clinical.jsonio; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
