"""Every rule SPEC revision 2 marks *r2*, at its boundary: raised on one side, not on the other."""

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from clinical.engine import (
    OPTIMIZATION_STRATEGIES,
    OUTCOME_FLAGS,
    RULES_REVISION,
    FlagCode,
    evaluate,
)
from clinical.facts import FailedTrial
from clinical.jsonio import evaluate_json, parse_course
from clinical.vocab import FlagSeverity, MedClass, Phase, Status, Trajectory
from tests.clinical.builders import (
    NON,
    PARTIAL,
    adverse,
    at,
    course,
    day,
    dissociated,
    im,
    iv,
    madrs,
    med,
    nasal,
    phq9,
    run,
    series,
    stopped,
)

PLATEAU = [madrs(-1, 50), madrs(14, 35), madrs(17, 35), madrs(21, 34)]


def test_the_revision_is_two():
    assert RULES_REVISION == 2


# -- Readings written into the contract, kept as they are ---------------------------------------


def test_sessions_and_assessments_after_as_of_are_left_out():
    facts = course(series(4) + [iv(20, **dissociated("severe"))],
                   [madrs(-1, 36), madrs(7, 29), madrs(21, 8)], as_of=at(8))
    evaluation = evaluate(facts)
    assert (evaluation.sessions_completed, evaluation.current) == (4, 29)
    assert evaluation.status == Status.NON_RESPONSE


def test_without_a_completed_session_the_latest_score_is_the_baseline_and_none_is_current():
    evaluation = run([stopped(iv(2))], assessments=[madrs(-3, 40), madrs(-1, 36), madrs(4, 20)])
    result = evaluation.instruments["madrs"]
    assert (result.baseline, result.current, result.status) == (20, None, Status.INSUFFICIENT_DATA)


def test_the_trajectory_is_insufficient_without_a_baseline():
    evaluation = run(series(4), assessments=[madrs(1, 36), madrs(3, 30), madrs(5, 20)])
    assert evaluation.trajectory == Trajectory.INSUFFICIENT


def test_scores_at_the_same_instant_lower_is_baseline_higher_is_current():
    scores = [madrs(-1, 36), madrs(-1, 30), madrs(1, 20), madrs(1, 24)]
    result = run([iv(0)], assessments=scores).instruments["madrs"]
    assert (result.baseline, result.current) == (30, 24)


@pytest.mark.parametrize("code", [code.value for code in FlagCode])
def test_only_treatment_changing_flags_accepted_count_as_optimizations(code):
    evaluation = run(series(2), NON, accepted=[code])
    assert evaluation.optimization_recorded is (code in OPTIMIZATION_STRATEGIES)


def test_scores_overdue_accepted_is_not_an_optimization():
    assert FlagCode.SCORES_OVERDUE not in OPTIMIZATION_STRATEGIES
    assert not run(series(2), NON, accepted=["SCORES_OVERDUE"]).optimization_recorded


@pytest.mark.parametrize(("start", "counted"), [(0, False), (1, True), (8, True), (9, False)])
def test_lithium_counts_when_started_after_the_first_session_day_up_to_as_of(start, counted):
    facts = course(series(5), [madrs(-1, 36), madrs(9, 29)], [med("lithium", start=start)],
                   as_of=at(8, 12))
    assert evaluate(facts).optimization_recorded is counted


def test_distinct_trial_drugs_ignore_letter_case():
    same = (FailedTrial("Sertraline", MedClass.SSRI, True),
            FailedTrial("sertraline", MedClass.SSRI, True))
    assert run([iv(0)], NON, patient_fields={"failed_trials": same}).flag("TRD_NOT_VERIFIED")


# -- Poorly tolerated dose: DOSE_ESCALATION ------------------------------------------------------


def test_the_issue_case_does_not_suggest_a_poorly_tolerated_dose_again():
    """0.75 mg/kg twice with severe dissociation, then 0.6 twice: 0.75 is not suggested."""
    sessions = [iv(0, "0.75", **dissociated("severe")), iv(2, "0.75", **dissociated("severe")),
                iv(4, "0.6"), iv(6, "0.6")]
    evaluation = run(sessions, NON)
    assert not evaluation.flag("DOSE_ESCALATION")
    assert evaluation.withheld == (
        "Dose escalation to 0.75 mg/kg is not suggested: poorly tolerated in this course at "
        "0.75 mg/kg IV ketamine (severe dissociation on 2026-02-02, severe dissociation on "
        "2026-02-04).",
    )


@pytest.mark.parametrize(
    ("earlier", "raised"),
    [
        (iv(0, "0.75", **dissociated("severe")), False),  # at the step
        (iv(0, "1.0", **dissociated("severe")), True),  # above the step: 0.75 is below it
        (iv(0, "0.5", **dissociated("severe")), False),  # below the step, as written
        (iv(0, "0.75", **dissociated("moderate")), True),  # moderate dissociation is tolerated
        (iv(0, "0.75", **adverse("moderate")), False),
        (iv(0, "0.75", **adverse("severe")), False),
        (iv(0, "0.75", **adverse("mild")), True),
        (stopped(iv(0, "0.75", **dissociated("severe"))), False),  # stopped sessions count
        (im(0, "0.75", **adverse("moderate")), False),  # IV and IM share the mg/kg ladder
        (nasal(0, 84, **dissociated("severe")), True),  # another route's unit
    ],
)
def test_dose_escalation_only_below_every_poorly_tolerated_iv_im_dose(earlier, raised):
    evaluation = run([earlier, iv(2, "0.6"), iv(4, "0.6")], NON)
    flag = evaluation.flag("DOSE_ESCALATION")
    assert bool(flag) is raised
    if raised:
        assert flag.suggested_dose_mg_per_kg == Decimal("0.75")
        assert evaluation.withheld == ()
    else:
        assert evaluation.withheld[0].startswith("Dose escalation to 0.75 mg/kg is not")


def test_a_poorly_tolerated_session_after_as_of_is_left_out():
    sessions = [iv(0, "0.6"), iv(2, "0.6"), iv(9, "0.75", **dissociated("severe"))]
    facts = course(sessions, [madrs(-1, 36), madrs(3, 29)], as_of=at(5))
    assert evaluate(facts).flag("DOSE_ESCALATION").suggested_dose_mg_per_kg == Decimal("0.75")


def test_nothing_is_withheld_when_escalation_is_not_due_anyway():
    sessions = [iv(0, "0.75", **dissociated("severe")), iv(2, "0.6"), iv(4, "0.6")]
    assert run(sessions, (36, 14)).withheld == ()  # response: no escalation to withhold
    assert run(sessions, NON, phase=Phase.MAINTENANCE).withheld == ()


# -- Poorly tolerated dose: ESKETAMINE_ESCALATION ------------------------------------------------


def test_the_issue_case_does_not_suggest_84_mg_again():
    """84 → 56 mg after a severe adverse event: 84 mg is not suggested again."""
    sessions = [nasal(0, 56), nasal(3, 84, **adverse("severe")), nasal(7, 56), nasal(10, 56)]
    evaluation = run(sessions, PARTIAL)
    assert not evaluation.flag("ESKETAMINE_ESCALATION")
    assert evaluation.withheld == (
        "Esketamine escalation to 84 mg is not suggested: poorly tolerated in this course at "
        "84 mg intranasal esketamine (a severe adverse event on 2026-02-05).",
    )


@pytest.mark.parametrize(
    ("earlier", "raised"),
    [
        (nasal(0, 84, **adverse("moderate")), False),
        (nasal(0, 84, **dissociated("severe")), False),
        (stopped(nasal(0, 84, **dissociated("severe"))), False),
        (nasal(0, 84, **adverse("mild")), True),
        (nasal(0, 84, **dissociated("moderate")), True),
        (nasal(0, 28, **dissociated("severe")), True),  # another dose
        (iv(0, "0.5", **dissociated("severe")), True),  # another route
    ],
)
def test_esketamine_escalation_unless_84_mg_was_poorly_tolerated(earlier, raised):
    evaluation = run([earlier, nasal(3, 56)], NON)
    assert bool(evaluation.flag("ESKETAMINE_ESCALATION")) is raised


# -- Safety flags read stopped sessions ----------------------------------------------------------


def test_a_stopped_session_above_0_75_without_enhanced_monitoring_is_critical():
    evaluation = run([iv(0, "0.5"), stopped(iv(2, "0.9"))], NON)
    flag = evaluation.flag("DOSE_ABOVE_STANDARD")
    assert flag.severity == FlagSeverity.CRITICAL
    assert "2026-02-04 (0.9 mg/kg IV ketamine, stopped early)" in flag.message


@pytest.mark.parametrize(("minutes", "raised"), [(30, True), (119, True), (120, False)])
def test_a_stopped_esketamine_session_discharged_early_is_raised(minutes, raised):
    session = stopped(nasal(0, 56, discharged_at=at(0) + timedelta(minutes=minutes)))
    evaluation = run([nasal(-3, 56), session], NON)
    assert bool(evaluation.flag("ESKETAMINE_MONITORING")) is raised


@pytest.mark.parametrize(
    ("bp", "expected"),
    [((200, 120), FlagSeverity.CRITICAL), ((181, 100), FlagSeverity.CRITICAL),
     ((180, 110), FlagSeverity.WARNING), ((141, 80), FlagSeverity.WARNING), ((140, 90), None)],
)
def test_a_stopped_session_with_high_pre_dose_bp_is_raised(bp, expected):
    evaluation = run([iv(0, bp_pre=(120, 80)), stopped(iv(2, bp_pre=bp))], NON)
    flag = evaluation.flag("BP_ELEVATED")
    assert (flag.severity if flag else None) == expected


def test_bp_reads_the_latest_session_that_has_a_reading():
    evaluation = run([iv(0, bp_pre=(150, 95)), iv(2), stopped(iv(4))], NON)
    assert "150/95" in evaluation.flag("BP_ELEVATED").message
    assert not run([iv(0), iv(2)], NON).flag("BP_ELEVATED")


# -- Outcome flags need outcome data -------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "raised"),
    [(None, False), ((8, 6), False), (NON, True), (PARTIAL, True), ((36, 14), False)],
)
def test_increase_frequency_only_on_non_or_partial_response(outcome, raised):
    assert bool(run([iv(0), iv(5), iv(10)], outcome).flag("INCREASE_FREQUENCY")) is raised


def test_the_issue_case_raises_no_discontinuation_review_without_scores():
    """10 sessions, a dose change and no scores at all: nothing outcome-based is raised."""
    sessions = series(2) + series(8, dose="0.75", start=4)
    evaluation = run(sessions)
    assert evaluation.status == Status.INSUFFICIENT_DATA
    assert evaluation.optimization_recorded
    assert not set(evaluation.codes) & {code.value for code in OUTCOME_FLAGS}
    assert evaluation.flag("SCORES_OVERDUE")


@pytest.mark.parametrize(
    ("assessments", "raised"),
    [
        (PLATEAU, True),  # non-response, plateau
        ([madrs(-1, 8), madrs(14, 8), madrs(17, 8), madrs(21, 8)], False),  # baseline in remission
        ([phq9(-1, 20), phq9(21, 19)], True),  # PHQ-9 primary: non-response
        ([madrs(21, 30)], False),  # no baseline
    ],
)
def test_discontinuation_review_only_on_non_or_partial_response(assessments, raised):
    sessions = series(2) + series(8, dose="0.75", start=4)
    assert bool(run(sessions, assessments=assessments).flag("DISCONTINUATION_REVIEW")) is raised


# -- SCORES_OVERDUE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "assessments", "raised"),
    [
        ([], [], False),  # nothing given yet
        ([iv(0)], [], True),  # a completed session, no baseline of either instrument
        ([stopped(iv(0))], [], False),  # a stopped session is no completed session
        ([iv(0)], [madrs(1, 30)], True),  # a score after the first session is no baseline
        ([iv(0)], [phq9(-1, 15)], False),  # a PHQ-9 baseline is enough
        ([iv(0)], [madrs(-1, 30)], False),
        (series(2, start=1), [madrs(0, 30)], False),
        (series(3, start=1), [madrs(0, 30)], True),  # 3 completed after the latest score
        (series(3, start=1), [madrs(-1, 30), phq9(2, 12)], False),  # PHQ-9 is the latest
        (series(4, start=1), [madrs(-1, 30), phq9(4, 12)], False),  # 2 after it (days 5, 7)
        (series(5, start=1), [madrs(-1, 30), phq9(4, 12)], True),  # 3 after it (5, 7, 9)
        (series(2, start=1) + [stopped(iv(5))], [madrs(0, 30)], False),  # stopped: not counted
    ],
)
def test_scores_overdue(sessions, assessments, raised):
    evaluation = run(sessions, assessments=assessments)
    flag = evaluation.flag("SCORES_OVERDUE")
    assert bool(flag) is raised
    if raised:
        assert flag.severity == FlagSeverity.WARNING
        assert flag.suggestion.startswith("Score MADRS or PHQ-9 now")
        assert flag.source.startswith("000 documentation requirements")


def test_a_session_at_the_instant_of_the_latest_score_is_not_after_it():
    sessions = [iv(0), iv(2), iv(4)]
    assert not run(sessions, assessments=[madrs(0, 30, hour=9)]).flag("SCORES_OVERDUE")
    assert run(sessions, assessments=[madrs(0, 30, hour=8)]).flag("SCORES_OVERDUE")


@pytest.mark.parametrize(
    ("phase", "raised"),
    [(Phase.INDUCTION, True), (Phase.EXTENDED_INDUCTION, True), (Phase.TRANSITION, True),
     (Phase.MAINTENANCE, True), (Phase.ENDED, False)],
)
def test_scores_overdue_in_every_phase_but_ended(phase, raised):
    assert bool(run([iv(0)], phase=phase).flag("SCORES_OVERDUE")) is raised


def test_scores_overdue_reads_the_course_as_of_its_reference_time():
    facts = course(series(4), [madrs(-1, 36), madrs(9, 30)], as_of=at(7))
    assert evaluate(facts).flag("SCORES_OVERDUE")  # the day-9 score is after as-of
    assert not evaluate(course(series(4), [madrs(-1, 36), madrs(9, 30)])).flag("SCORES_OVERDUE")


def test_scores_overdue_comes_after_bp_in_the_warning_order():
    sessions = [iv(0, bp_pre=(150, 95))]
    assert run(sessions).codes[-2:] == ("BP_ELEVATED", "SCORES_OVERDUE")


# -- JSON ------------------------------------------------------------------------------------------

CASES = Path(__file__).parent / "cases"


def test_the_json_reader_accepts_scores_overdue_and_the_new_classes():
    data = json.loads((CASES / "spec_example.json").read_text("utf-8"))
    data["accepted_flags"] = ["SCORES_OVERDUE"]
    data["medications"] += [
        {"name": "zolpidem", "class": "sedative_hypnotic", "start": "2025-06-01"},
        {"name": "Adderall XR", "start": "2025-06-01"},
        {"name": "Sublimaze", "start": "2025-06-01"},
    ]
    facts = parse_course(data)
    assert facts.accepted_flags == frozenset({"SCORES_OVERDUE"})
    classes = [m.drug_class for m in facts.medications]
    assert classes[1:] == [MedClass.SEDATIVE_HYPNOTIC, MedClass.PSYCHOSTIMULANT, MedClass.OPIOID]
    output = json.loads(evaluate_json(json.dumps(data)))
    assert output["flags"][0]["source"] == "000 step 3; 001 medications to avoid or adjust"
    assert set(output) == {
        "status", "provisional", "adequate_trial", "primary_instrument", "baseline", "current",
        "percent_reduction", "sessions_completed", "trajectory", "instruments", "flags",
    }


def test_a_day_helper_matches_the_builders():
    assert day(0).isoformat() == "2026-02-02"
