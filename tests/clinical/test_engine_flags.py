"""SPEC §4: every flag is raised when its rule holds, and not on either side of its thresholds."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from clinical.engine import OPTIMIZATION_STRATEGIES, FlagCode
from clinical.facts import FailedTrial
from clinical.vocab import Diagnosis, FlagSeverity, MedClass, Phase
from tests.clinical.builders import (
    NON,
    PARTIAL,
    REMISSION,
    RESPONSE,
    adverse,
    at,
    day,
    dissociated,
    im,
    iv,
    madrs,
    med,
    nasal,
    oral,
    phq9,
    run,
    series,
    stopped,
)

PHQ9_ITEM9 = [0, 0, 0, 0, 0, 0, 0, 0]  # items 1–8; item 9 is appended
MADRS_ITEMS = [3, 3, 3, 3, 3, 3, 3, 3, 3]  # items 1–9; item 10 is appended


def severity(evaluation, code) -> FlagSeverity | None:
    flag = evaluation.flag(code)
    return flag.severity if flag else None


# -- Safety ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("item9", "raised"), [(0, False), (1, True), (3, True)])
def test_it_raises_suicidal_ideation_on_phq9_item_9_of_1_or_more(item9, raised):
    evaluation = run([iv(0)], assessments=[phq9(1, items=PHQ9_ITEM9 + [item9])])
    assert bool(evaluation.flag("SUICIDAL_IDEATION")) is raised
    if raised:
        assert severity(evaluation, "SUICIDAL_IDEATION") == FlagSeverity.CRITICAL
        assert "item 9" in evaluation.flag("SUICIDAL_IDEATION").message


@pytest.mark.parametrize(("item10", "raised"), [(3, False), (4, True), (6, True)])
def test_it_raises_suicidal_ideation_on_madrs_item_10_of_4_or_more(item10, raised):
    evaluation = run([iv(0)], assessments=[madrs(1, items=MADRS_ITEMS + [item10])])
    assert bool(evaluation.flag("SUICIDAL_IDEATION")) is raised


def test_it_reads_suicidal_ideation_from_the_latest_assessment_with_items():
    earlier = phq9(1, items=PHQ9_ITEM9 + [2])
    later = phq9(3, items=PHQ9_ITEM9 + [0])
    assert not run([iv(0)], assessments=[earlier, later]).flag("SUICIDAL_IDEATION")
    imported_later = phq9(3, total=0)
    assert run([iv(0)], assessments=[earlier, imported_later]).flag("SUICIDAL_IDEATION")


def test_it_raises_suicidal_ideation_from_a_baseline_without_sessions():
    assert run(assessments=[phq9(-1, items=PHQ9_ITEM9 + [1])]).flag("SUICIDAL_IDEATION")


@pytest.mark.parametrize("diagnosis", [Diagnosis.BIPOLAR_I, Diagnosis.BIPOLAR_II])
def test_it_raises_bipolar_no_mood_stabilizer(diagnosis):
    evaluation = run([iv(0)], NON, patient_fields={"diagnosis": diagnosis})
    assert severity(evaluation, "BIPOLAR_NO_MOOD_STABILIZER") == FlagSeverity.CRITICAL


@pytest.mark.parametrize("name", ["lithium", "valproate", "lamotrigine", "carbamazepine"])
def test_it_accepts_each_mood_stabilizer_for_bipolar(name):
    stabilizer = med(name, MedClass(name))
    evaluation = run(
        [iv(0)], NON, medications=[stabilizer], patient_fields={"diagnosis": Diagnosis.BIPOLAR_II}
    )
    assert not evaluation.flag("BIPOLAR_NO_MOOD_STABILIZER")


@pytest.mark.parametrize(
    ("start", "stop", "raised"),
    [
        (-30, 0, True),  # stopped the day before the as-of day (day 1)
        (-30, 1, False),  # stops on the as-of day: still active
        (1, None, False),  # starts on the as-of day
        (2, None, True),  # starts after it
    ],
)
def test_it_reads_the_mood_stabilizer_on_the_as_of_day(start, stop, raised):
    lithium = med("lithium", start=start, stop=stop)
    evaluation = run(
        [iv(0)], NON, medications=[lithium], patient_fields={"diagnosis": Diagnosis.BIPOLAR_I}
    )
    assert bool(evaluation.flag("BIPOLAR_NO_MOOD_STABILIZER")) is raised


def test_it_raises_no_bipolar_flag_for_mdd():
    assert not run([iv(0)], NON).flag("BIPOLAR_NO_MOOD_STABILIZER")


def test_it_raises_psychotic_features():
    evaluation = run([iv(0)], NON, patient_fields={"psychotic_features": True})
    assert severity(evaluation, "PSYCHOTIC_FEATURES") == FlagSeverity.CRITICAL
    assert not run([iv(0)], NON).flag("PSYCHOTIC_FEATURES")


@pytest.mark.parametrize(
    ("session", "raised"),
    [
        (iv(0, "0.76"), True),
        (iv(0, "1.0"), True),
        (im(0, "0.8"), True),
        (iv(0, "0.75"), False),  # at the threshold
        (iv(0, "1.0", enhanced_monitoring=True), False),
        (stopped(iv(0, "1.0")), True),  # r2: a stopped session still gave drug
        (stopped(iv(0, "1.0", enhanced_monitoring=True)), False),
    ],
)
def test_it_raises_dose_above_standard_without_enhanced_monitoring(session, raised):
    evaluation = run([session], NON)
    assert bool(evaluation.flag("DOSE_ABOVE_STANDARD")) is raised
    if raised:
        assert severity(evaluation, "DOSE_ABOVE_STANDARD") == FlagSeverity.CRITICAL


def test_it_raises_dose_above_standard_for_an_earlier_session_too():
    evaluation = run([iv(0, "1.0"), iv(2, "0.5")], NON)
    assert "2026-02-02 (1.0 mg/kg IV ketamine)" in evaluation.flag("DOSE_ABOVE_STANDARD").message


# -- Concurrent medications --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "expected"),
    [
        (series(4), NON, FlagSeverity.WARNING),
        (series(4), PARTIAL, FlagSeverity.WARNING),
        (series(4), RESPONSE, FlagSeverity.INFO),  # adequate trial, responding
        (series(4), REMISSION, FlagSeverity.INFO),
        (series(3), RESPONSE, FlagSeverity.WARNING),  # trial not yet adequate
        (series(3), REMISSION, FlagSeverity.WARNING),
    ],
)
def test_it_grades_benzodiazepine_by_status_and_trial(sessions, outcome, expected):
    evaluation = run(sessions, outcome, medications=[med("clonazepam")])
    assert severity(evaluation, "BENZODIAZEPINE") == expected


@pytest.mark.parametrize(("stop", "raised"), [(None, True), (7, True), (6, False)])
def test_it_raises_benzodiazepine_only_while_active(stop, raised):
    # as of day 7: the current score the day after the last session on day 6
    evaluation = run(series(4), NON, medications=[med("Klonopin", stop=stop)])
    assert bool(evaluation.flag("BENZODIAZEPINE")) is raised


def test_it_raises_benzodiazepine_for_a_brand_name():
    evaluation = run(series(4), NON, medications=[med("Ativan")])
    assert "Ativan is active" in evaluation.flag("BENZODIAZEPINE").message


@pytest.mark.parametrize(
    ("sessions", "raised"),
    [
        ([iv(0), iv(2, benzodiazepine_24h=True)], True),
        ([iv(0), stopped(iv(2, benzodiazepine_24h=True))], False),
        ([iv(0), iv(2)], False),
    ],
)
def test_it_raises_benzodiazepine_taken_for_a_completed_session(sessions, raised):
    evaluation = run(sessions, NON)
    assert bool(evaluation.flag("BENZODIAZEPINE_TAKEN")) is raised
    if raised:
        assert severity(evaluation, "BENZODIAZEPINE_TAKEN") == FlagSeverity.WARNING
        assert "2026-02-04" in evaluation.flag("BENZODIAZEPINE_TAKEN").message


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        ("NALTREXONE_HOLD", "naltrexone", FlagSeverity.WARNING),
        ("MEMANTINE", "memantine", FlagSeverity.WARNING),
        ("MAOI_WASHOUT", "phenelzine", FlagSeverity.WARNING),
        ("LAMOTRIGINE", "lamotrigine", FlagSeverity.INFO),
        ("OPIOID", "oxycodone", FlagSeverity.INFO),
    ],
)
def test_it_raises_each_medication_flag_while_the_medication_is_active(code, name, expected):
    active = run(series(2), NON, medications=[med(name)])
    assert severity(active, code) == expected
    assert name in active.flag(code).message
    stopped_before = run(series(2), NON, medications=[med(name, stop=2)])  # as of day 3
    assert not stopped_before.flag(code)
    on_the_day = run(series(2), NON, medications=[med(name, stop=3)])
    assert on_the_day.flag(code)


# -- DOSE_ESCALATION ---------------------------------------------------------------------------


def test_it_raises_dose_escalation_after_two_sessions_at_current_dose():
    evaluation = run(series(2), NON)
    flag = evaluation.flag("DOSE_ESCALATION")
    assert flag.suggested_dose_mg_per_kg == Decimal("0.6")
    assert flag.severity == FlagSeverity.INFO
    assert "enhanced" not in flag.suggestion


def test_it_does_not_raise_dose_escalation_after_one_session_at_current_dose():
    assert not run([iv(0), iv(2, "0.6")], NON).flag("DOSE_ESCALATION")


@pytest.mark.parametrize(
    ("outcome", "raised"),
    [(NON, True), (PARTIAL, True), (RESPONSE, False), (REMISSION, False), ((8, 6), False)],
)
def test_it_raises_dose_escalation_only_without_response(outcome, raised):
    assert bool(run(series(2), outcome).flag("DOSE_ESCALATION")) is raised


@pytest.mark.parametrize(
    ("dose", "step", "enhanced"),
    [("0.3", "0.5", False), ("0.5", "0.6", False), ("0.6", "0.75", False), ("0.75", "1.0", True)],
)
def test_it_suggests_the_next_ladder_step(dose, step, enhanced):
    flag = run(series(2, dose=dose), NON).flag("DOSE_ESCALATION")
    assert flag.suggested_dose_mg_per_kg == Decimal(step)
    assert ("enhanced cardiovascular monitoring" in flag.suggestion) is enhanced


def test_it_does_not_raise_dose_escalation_at_the_maximum():
    sessions = series(2, dose="1.0", enhanced_monitoring=True)
    assert not run(sessions, NON).flag("DOSE_ESCALATION")


@pytest.mark.parametrize(
    ("fields", "raised"),
    [
        (dissociated("moderate"), True),
        (dissociated("severe"), False),
        (adverse("mild"), True),
        (adverse("moderate"), False),
        (adverse("severe"), False),
    ],
)
def test_it_holds_dose_escalation_on_poor_tolerability_at_current_dose(fields, raised):
    sessions = [iv(0), iv(2, **fields)]
    assert bool(run(sessions, NON).flag("DOSE_ESCALATION")) is raised


def test_it_reads_tolerability_over_the_whole_course_for_dose_escalation():
    # r2: 0.75 is not below the poorly tolerated 0.5, so it is not suggested (as written).
    sessions = [iv(0, "0.5", **dissociated("severe")), iv(2, "0.6"), iv(4, "0.6")]
    evaluation = run(sessions, NON)
    assert not evaluation.flag("DOSE_ESCALATION")
    assert evaluation.withheld == (
        "Dose escalation to 0.75 mg/kg is not suggested: poorly tolerated in this course at "
        "0.5 mg/kg IV ketamine (severe dissociation on 2026-02-02).",
    )


def test_it_raises_dose_escalation_for_im():
    assert run(series(2, im), NON).flag("DOSE_ESCALATION")


def test_it_does_not_raise_dose_escalation_for_other_routes():
    assert not run(series(2, nasal), NON).flag("DOSE_ESCALATION")
    assert not run(series(2, oral), NON).flag("DOSE_ESCALATION")


def test_it_counts_a_route_change_as_a_new_dose_for_dose_escalation():
    assert not run([iv(0), im(2)], NON).flag("DOSE_ESCALATION")


@pytest.mark.parametrize(
    ("phase", "raised"),
    [
        (Phase.INDUCTION, True),
        (Phase.EXTENDED_INDUCTION, True),
        (Phase.TRANSITION, False),
        (Phase.MAINTENANCE, False),
        (Phase.ENDED, False),
    ],
)
def test_it_raises_optimization_flags_only_in_induction_phases(phase, raised):
    assert bool(run(series(2), NON, phase=phase).flag("DOSE_ESCALATION")) is raised


# -- ESKETAMINE_ESCALATION ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "raised"),
    [
        ([nasal(0, 56)], NON, True),
        ([nasal(0, 56)], PARTIAL, True),
        ([nasal(0, 56)], RESPONSE, False),
        ([nasal(0, 84)], NON, False),
        ([nasal(0, 28)], NON, False),
        ([nasal(0, 56), nasal(3, 84)], NON, False),
        ([iv(0)], NON, False),
    ],
)
def test_it_raises_esketamine_escalation_at_56_mg(sessions, outcome, raised):
    evaluation = run(sessions, outcome)
    assert bool(evaluation.flag("ESKETAMINE_ESCALATION")) is raised
    if raised:
        assert "84 mg" in evaluation.flag("ESKETAMINE_ESCALATION").suggestion


def test_it_does_not_raise_esketamine_escalation_in_maintenance():
    assert not run([nasal(0, 56)], NON, phase=Phase.MAINTENANCE).flag("ESKETAMINE_ESCALATION")


# -- DOSE_REDUCTION ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "outcome", "raised"),
    [
        (dissociated("severe"), RESPONSE, True),
        (dissociated("severe"), REMISSION, True),
        (adverse("moderate"), RESPONSE, True),
        (adverse("severe"), RESPONSE, True),
        (dissociated("moderate"), RESPONSE, False),
        (adverse("mild"), RESPONSE, False),
        (dissociated("severe"), PARTIAL, False),
        (dissociated("severe"), NON, False),
    ],
)
def test_it_raises_dose_reduction_on_response_with_side_effects(fields, outcome, raised):
    evaluation = run([iv(0, "0.75"), iv(2, "0.75", **fields)], outcome)
    assert bool(evaluation.flag("DOSE_REDUCTION")) is raised
    if raised:
        assert evaluation.flag("DOSE_REDUCTION").suggested_dose_mg_per_kg == Decimal("0.4")


def test_it_raises_dose_reduction_in_any_phase():
    sessions = [iv(0, **dissociated("severe"))]
    assert run(sessions, RESPONSE, phase=Phase.MAINTENANCE).flag("DOSE_REDUCTION")


def test_it_ignores_side_effects_before_the_current_dose_for_dose_reduction():
    sessions = [iv(0, "0.75", **dissociated("severe")), iv(2, "0.6")]
    assert not run(sessions, RESPONSE).flag("DOSE_REDUCTION")


def test_it_suggests_56_mg_for_intranasal_84_mg_dose_reduction():
    flag = run([nasal(0, 84, **adverse("moderate"))], RESPONSE).flag("DOSE_REDUCTION")
    assert flag.suggestion == "Consider 56 mg."
    assert flag.suggested_dose_mg_per_kg is None


# -- LOWER_DOSE_TRIAL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "raised"),
    [
        ([iv(0), iv(2, **dissociated("severe"))], NON, True),
        ([iv(0), iv(2, **dissociated("moderate"))], NON, False),
        ([iv(0), iv(2, **dissociated("severe"))], PARTIAL, False),
        ([im(0), im(2, **dissociated("severe"))], NON, False),
        ([iv(0, **dissociated("severe")), iv(2, "0.6")], NON, False),
    ],
)
def test_it_raises_lower_dose_trial_on_severe_dissociation_without_response(
    sessions, outcome, raised
):
    evaluation = run(sessions, outcome)
    assert bool(evaluation.flag("LOWER_DOSE_TRIAL")) is raised
    if raised:
        assert "0.3–0.4 mg/kg" in evaluation.flag("LOWER_DOSE_TRIAL").suggestion


# -- INFUSION_RATE -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "raised"),
    [
        (series(4), NON, True),
        (series(4), PARTIAL, True),
        (series(3), NON, False),
        (series(3) + [stopped(iv(8))], NON, False),
        (series(4), RESPONSE, False),
        (series(4, im), NON, False),
        (series(2, im) + series(2, iv, start=5), NON, True),  # 4 completed in the course
    ],
)
def test_it_raises_infusion_rate_after_four_completed_iv_sessions(sessions, outcome, raised):
    assert bool(run(sessions, outcome).flag("INFUSION_RATE")) is raised


@pytest.mark.parametrize(
    ("level", "words"),
    [("none", "faster"), ("mild", "faster"), ("moderate", "slower"), ("severe", "slower")],
)
def test_it_suggests_the_infusion_rate_from_dissociation_at_current_dose(level, words):
    sessions = series(3) + [iv(6, **dissociated(level))]
    assert words in run(sessions, NON).flag("INFUSION_RATE").suggestion


# -- INCREASE_FREQUENCY ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "raised"),
    [
        (at(9), True),  # 4.5 days apart on average
        (at(8), False),  # exactly 4 days
        (at(8, 9, 1), True),  # one minute more
    ],
)
def test_it_raises_increase_frequency_above_four_days_apart(last, raised):
    sessions = [iv(0), iv(4), replace(iv(8), at=last)]
    evaluation = run(sessions, NON)
    assert bool(evaluation.flag("INCREASE_FREQUENCY")) is raised
    if raised:
        assert "2–3 treatments a week" in evaluation.flag("INCREASE_FREQUENCY").suggestion


def test_it_reads_increase_frequency_from_the_last_three_sessions_only():
    sessions = [iv(0), iv(20), iv(22), iv(24)]
    assert not run(sessions, NON).flag("INCREASE_FREQUENCY")
    assert run([iv(0), iv(7)] + [iv(14)], NON).flag("INCREASE_FREQUENCY")


def test_it_needs_three_completed_sessions_for_increase_frequency():
    assert not run([iv(0), iv(20)], NON).flag("INCREASE_FREQUENCY")
    assert not run([iv(0), iv(10), stopped(iv(20))], NON).flag("INCREASE_FREQUENCY")


@pytest.mark.parametrize(
    ("outcome", "raised"),
    [(NON, True), (PARTIAL, True), (None, False), (RESPONSE, False), (REMISSION, False)],
)
def test_it_raises_increase_frequency_unless_responding(outcome, raised):
    sessions = [iv(0), iv(5), iv(10)]
    assert bool(run(sessions, outcome).flag("INCREASE_FREQUENCY")) is raised


# -- NO_SIGNAL_AFTER_4 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "raised"),
    [
        (series(4), NON, True),
        (series(3), NON, False),
        (series(3) + [stopped(iv(8))], NON, False),
        (series(4), PARTIAL, False),
        (series(4, nasal), NON, True),
    ],
)
def test_it_raises_no_signal_after_four_sessions(sessions, outcome, raised):
    evaluation = run(sessions, outcome)
    assert bool(evaluation.flag("NO_SIGNAL_AFTER_4")) is raised
    if raised:
        assert severity(evaluation, "NO_SIGNAL_AFTER_4") == FlagSeverity.WARNING


# -- EXTEND_INDUCTION --------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "raised"), [(5, False), (6, True), (9, True), (10, False)])
def test_it_raises_extend_induction_after_six_to_nine_sessions_of_partial_response(count, raised):
    assert bool(run(series(count), PARTIAL).flag("EXTEND_INDUCTION")) is raised


def test_it_raises_extend_induction_for_non_response_with_an_improving_trajectory():
    sessions = series(6)
    improving = [madrs(-1, 36), madrs(4, 34), madrs(8, 32), madrs(11, 29)]
    plateau = [madrs(-1, 36), madrs(4, 29), madrs(8, 32), madrs(11, 29)]
    assert run(sessions, assessments=improving).flag("EXTEND_INDUCTION")
    assert not run(sessions, assessments=plateau).flag("EXTEND_INDUCTION")


def test_it_does_not_raise_extend_induction_on_response():
    assert not run(series(6), RESPONSE).flag("EXTEND_INDUCTION")


# -- ROUTE_SWITCH ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "outcome", "raised"),
    [
        ([iv(0), iv(2), iv(4, "0.75"), iv(6, "0.75")], PARTIAL, True),
        ([iv(0), iv(2), iv(4, "0.75"), iv(6, "0.75")], NON, True),
        ([iv(0), iv(2), iv(4, "0.75"), iv(6, "0.75")], RESPONSE, False),
        (series(4, dose="0.6"), PARTIAL, False),  # below 0.75, no severe dissociation
        (series(3) + [iv(6, **dissociated("severe"))], PARTIAL, True),
        (series(3, dose="0.75"), PARTIAL, False),  # not yet an adequate trial
        (series(4, dose="0.75") + series(2, nasal, start=10), PARTIAL, False),  # new route
        (series(8, nasal, mg=84, **dissociated("severe")), NON, True),
        (series(7, nasal, mg=84, **dissociated("severe")), NON, False),
    ],
)
def test_it_raises_route_switch_after_an_adequate_trial_on_the_current_route(
    sessions, outcome, raised
):
    assert bool(run(sessions, outcome).flag("ROUTE_SWITCH")) is raised


def test_it_suggests_iv_after_intranasal_and_intranasal_after_iv():
    from_nasal = run(series(8, nasal, mg=84, **dissociated("severe")), NON).flag("ROUTE_SWITCH")
    assert from_nasal.suggestion == "Switch to IV ketamine."
    from_iv = run(series(4, dose="0.75"), NON).flag("ROUTE_SWITCH")
    assert "intranasal esketamine 56 → 84 mg × 8 sessions, or to IM" in from_iv.suggestion


# -- LITHIUM_AUGMENTATION ----------------------------------------------------------------------

ESCALATED = [iv(0), iv(2), iv(4, "0.6"), iv(6, "0.6")]  # adequate, with a dose change


@pytest.mark.parametrize(
    ("sessions", "outcome", "fields", "raised"),
    [
        (ESCALATED, NON, {}, True),
        (ESCALATED, PARTIAL, {}, True),
        (ESCALATED, RESPONSE, {}, False),
        (ESCALATED, NON, {"medications": [med("lithium")]}, False),
        (ESCALATED[:3], NON, {}, False),  # 3 sessions: not adequate
        (series(4), NON, {}, False),  # no optimization recorded
        (series(4), NON, {"accepted": ["INFUSION_RATE"]}, True),
        (series(4), NON, {"accepted": ["NO_SIGNAL_AFTER_4"]}, False),
        (series(4), NON, {"medications": [med("lithium", start=3, stop=5)]}, True),
    ],
)
def test_it_raises_lithium_augmentation_after_an_optimized_adequate_trial(
    sessions, outcome, fields, raised
):
    assert bool(run(sessions, outcome, **fields).flag("LITHIUM_AUGMENTATION")) is raised


@pytest.mark.parametrize("code", sorted(OPTIMIZATION_STRATEGIES))
def test_an_accepted_strategy_reads_by_its_label_never_its_code(code):
    # The words reach the referrer's report ("optimization attempts") and the lithium and
    # discontinuation messages: a clinician's words, as the course page names the flag.
    evaluation = run(series(4), NON, accepted=[code])
    assert evaluation.optimizations == (f"{FlagCode(code).label} accepted",)
    assert code not in " ".join(evaluation.optimizations)


def test_lithium_augmentation_names_the_accepted_strategy_by_its_label():
    flag = run(series(4), NON, accepted=["INFUSION_RATE"]).flag("LITHIUM_AUGMENTATION")
    assert "(Infusion rate accepted)" in flag.message and "INFUSION_RATE" not in flag.message


# -- DISCONTINUATION_REVIEW --------------------------------------------------------------------

PLATEAU = [madrs(-1, 50), madrs(14, 35), madrs(17, 35), madrs(21, 34)]


def optimized(count: int) -> list:
    return series(2) + series(count - 2, dose="0.75", start=4)


@pytest.mark.parametrize(("count", "raised"), [(9, False), (10, True), (12, True)])
def test_it_raises_discontinuation_review_after_ten_sessions(count, raised):
    evaluation = run(optimized(count), assessments=PLATEAU)
    assert bool(evaluation.flag("DISCONTINUATION_REVIEW")) is raised
    if raised:
        assert severity(evaluation, "DISCONTINUATION_REVIEW") == FlagSeverity.WARNING


def test_discontinuation_review_names_the_accepted_strategy_by_its_label():
    evaluation = run(series(10), assessments=PLATEAU, accepted=["DOSE_ESCALATION"])
    message = evaluation.flag("DISCONTINUATION_REVIEW").message
    assert message.endswith("optimizations: Dose escalation accepted.")


def test_it_does_not_raise_discontinuation_review_while_improving():
    improving = [madrs(-1, 50), madrs(14, 40), madrs(17, 37), madrs(21, 34)]
    assert not run(optimized(10), assessments=improving).flag("DISCONTINUATION_REVIEW")


def test_it_does_not_raise_discontinuation_review_without_an_optimization():
    assert not run(series(10), assessments=PLATEAU).flag("DISCONTINUATION_REVIEW")


def test_it_does_not_raise_discontinuation_review_on_response():
    responding = [madrs(-1, 50), madrs(14, 25), madrs(17, 25), madrs(21, 24)]
    assert not run(optimized(10), assessments=responding).flag("DISCONTINUATION_REVIEW")


# -- MAINTENANCE_PLAN --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "outcome", "raised"),
    [(4, RESPONSE, True), (4, REMISSION, True), (3, RESPONSE, False), (4, PARTIAL, False)],
)
def test_it_raises_maintenance_plan_after_four_sessions_of_response(count, outcome, raised):
    assert bool(run(series(count), outcome).flag("MAINTENANCE_PLAN")) is raised


def test_it_does_not_raise_maintenance_plan_once_in_maintenance():
    assert not run(series(4), RESPONSE, phase=Phase.MAINTENANCE).flag("MAINTENANCE_PLAN")


# -- TRD_NOT_VERIFIED --------------------------------------------------------------------------


def trials(*entries) -> dict:
    return {"failed_trials": tuple(FailedTrial(drug, MedClass.SSRI, ok) for drug, ok in entries)}


@pytest.mark.parametrize(
    ("entries", "raised"),
    [
        ((), True),
        ((("sertraline", True),), True),
        ((("sertraline", True), ("escitalopram", True)), False),
        ((("sertraline", True), ("escitalopram", False)), True),
        ((("sertraline", True), ("Sertraline", True)), True),  # the same drug twice
    ],
)
def test_it_raises_trd_not_verified_below_two_failed_adequate_trials(entries, raised):
    evaluation = run(patient_fields=trials(*entries))
    assert bool(evaluation.flag("TRD_NOT_VERIFIED")) is raised
    if raised:
        assert severity(evaluation, "TRD_NOT_VERIFIED") == FlagSeverity.WARNING


@pytest.mark.parametrize("phase", list(Phase))
def test_it_raises_trd_not_verified_in_any_phase(phase):
    assert run(series(2), NON, phase=phase, patient_fields=trials()).flag("TRD_NOT_VERIFIED")


# -- RELAPSE_RISK ------------------------------------------------------------------------------


def maintenance(*assessments, started=10, phase=Phase.MAINTENANCE):
    return run(
        series(6),
        assessments=list(assessments),
        phase=phase,
        maintenance_started=None if started is None else day(started),
    )


@pytest.mark.parametrize(
    ("reference", "latest", "raised"),
    [
        (5, 7, True),  # + 2
        (5, 6, False),
        (9, 11, True),
        (10, 11, True),  # above 10
        (9, 10, False),
        (10, 10, False),
    ],
)
def test_it_raises_relapse_risk_on_a_rise_of_two_or_above_ten(reference, latest, raised):
    evaluation = maintenance(phq9(-1, 20), phq9(10, reference), phq9(20, latest))
    assert bool(evaluation.flag("RELAPSE_RISK")) is raised
    if raised:
        assert severity(evaluation, "RELAPSE_RISK") == FlagSeverity.WARNING


def test_it_takes_the_latest_phq9_on_or_before_the_maintenance_day_as_reference():
    evaluation = maintenance(phq9(8, 3), phq9(10, 6, hour=23), phq9(20, 7))
    assert not evaluation.flag("RELAPSE_RISK")  # 7 against 6, not against 3


def test_it_needs_the_latest_phq9_after_the_maintenance_day():
    assert not maintenance(phq9(5, 4), phq9(10, 12)).flag("RELAPSE_RISK")


def test_it_raises_relapse_risk_above_ten_without_a_reference():
    assert maintenance(phq9(20, 11)).flag("RELAPSE_RISK")
    assert not maintenance(phq9(20, 10)).flag("RELAPSE_RISK")


def test_it_raises_relapse_risk_only_in_maintenance_with_a_start_date():
    readings = (phq9(10, 5), phq9(20, 12))
    assert not maintenance(*readings, phase=Phase.TRANSITION).flag("RELAPSE_RISK")
    assert not maintenance(*readings, started=None).flag("RELAPSE_RISK")


# -- ESKETAMINE_MONITORING ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "raised"),
    [
        (nasal(0, discharged_at=at(0) + timedelta(minutes=119)), True),
        (nasal(0, discharged_at=at(0) + timedelta(hours=2)), False),
        (nasal(0), False),  # no discharge time recorded
        (stopped(nasal(0, discharged_at=at(0) + timedelta(minutes=119))), True),  # r2
        (stopped(nasal(0, discharged_at=at(0) + timedelta(hours=2))), False),
        (iv(0, discharged_at=at(0) + timedelta(minutes=60)), False),
    ],
)
def test_it_raises_esketamine_monitoring_below_two_hours(session, raised):
    evaluation = run([session], NON)
    assert bool(evaluation.flag("ESKETAMINE_MONITORING")) is raised
    if raised:
        assert severity(evaluation, "ESKETAMINE_MONITORING") == FlagSeverity.WARNING
        assert "119 min" in evaluation.flag("ESKETAMINE_MONITORING").message


# -- BP_ELEVATED -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bp", "expected"),
    [
        ((140, 90), None),
        ((141, 80), FlagSeverity.WARNING),
        ((130, 91), FlagSeverity.WARNING),
        ((180, 110), FlagSeverity.WARNING),
        ((181, 100), FlagSeverity.CRITICAL),
        ((170, 111), FlagSeverity.CRITICAL),
        (None, None),
    ],
)
def test_it_grades_bp_elevated_at_the_latest_completed_session(bp, expected):
    evaluation = run([iv(0, bp_pre=(120, 80)), iv(2, bp_pre=bp)], NON)
    assert severity(evaluation, "BP_ELEVATED") == expected


def test_it_reads_bp_from_the_latest_session_with_one_completed_or_stopped():
    assert not run([iv(0, bp_pre=(200, 120)), iv(2, bp_pre=(120, 80))], NON).flag("BP_ELEVATED")
    # r2: a stopped session's reading is the latest
    sessions = [iv(0, bp_pre=(150, 95)), stopped(iv(2, bp_pre=(120, 80)))]
    assert not run(sessions, NON).flag("BP_ELEVATED")
    sessions = [iv(0, bp_pre=(120, 80)), stopped(iv(2, bp_pre=(150, 95)))]
    assert run(sessions, NON).flag("BP_ELEVATED")


def test_it_uses_the_clinic_bp_settings():
    from clinical.engine import EngineSettings

    settings = EngineSettings(bp_warning=(130, 85))
    evaluation = run([iv(0, bp_pre=(135, 80))], NON, settings=settings)
    assert severity(evaluation, "BP_ELEVATED") == FlagSeverity.WARNING


def test_every_flag_is_tested_here():
    tested = {
        "SUICIDAL_IDEATION",
        "BIPOLAR_NO_MOOD_STABILIZER",
        "PSYCHOTIC_FEATURES",
        "DOSE_ABOVE_STANDARD",
        "BENZODIAZEPINE",
        "BENZODIAZEPINE_TAKEN",
        "NALTREXONE_HOLD",
        "MEMANTINE",
        "MAOI_WASHOUT",
        "LAMOTRIGINE",
        "OPIOID",
        "DOSE_ESCALATION",
        "ESKETAMINE_ESCALATION",
        "DOSE_REDUCTION",
        "LOWER_DOSE_TRIAL",
        "INFUSION_RATE",
        "INCREASE_FREQUENCY",
        "NO_SIGNAL_AFTER_4",
        "EXTEND_INDUCTION",
        "ROUTE_SWITCH",
        "LITHIUM_AUGMENTATION",
        "DISCONTINUATION_REVIEW",
        "MAINTENANCE_PLAN",
        "TRD_NOT_VERIFIED",
        "RELAPSE_RISK",
        "ESKETAMINE_MONITORING",
        "BP_ELEVATED",
        "SCORES_OVERDUE",  # r2: tests/clinical/test_engine_r2.py
    }
    assert tested == {code.value for code in FlagCode}
