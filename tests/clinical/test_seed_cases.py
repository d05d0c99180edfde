"""End to end through JSON: the seed-000 case examples of SPEC §3, the SPEC §5 example and the US
Core PHQ-9 example of SPEC §6. The inputs live in ``cases/*.json`` for the command's tests too."""

import json
from pathlib import Path

import pytest

from clinical.instruments import PHQ9
from clinical.jsonio import evaluate_json

CASES = Path(__file__).parent / "cases"


def evaluated(name: str) -> dict:
    return json.loads(evaluate_json((CASES / f"{name}.json").read_text(encoding="utf-8")))


def codes(result: dict) -> list[tuple[str, str]]:
    return [(flag["code"], flag["severity"]) for flag in result["flags"]]


@pytest.mark.parametrize(
    ("name", "status", "baseline", "current", "percent"),
    [
        ("seed000_case1_after_6_infusions", "non_response", 36, 29, 19.4),
        ("seed000_case1_after_taper_and_escalation", "response", 36, 14, 61.1),
        ("seed000_case2_after_6_iv", "partial_response", 32, 22, 31.3),
        ("seed000_case2_after_8_intranasal", "response", 32, 12, 62.5),
        ("seed000_case3_discontinuation", "partial_response", 50, 34, 32.0),
    ],
)
def test_it_classifies_the_seed_cases_as_the_spec_states(name, status, baseline, current, percent):
    result = evaluated(name)
    assert result["status"] == status
    assert result["primary_instrument"] == "madrs"
    assert (result["baseline"], result["current"]) == (baseline, current)
    assert result["percent_reduction"] == percent
    assert result["adequate_trial"] is True
    assert result["provisional"] is False


def test_case_1_after_six_infusions_is_non_response_with_the_benzodiazepine_warning():
    result = evaluated("seed000_case1_after_6_infusions")
    assert result["sessions_completed"] == 6
    assert codes(result) == [
        ("BENZODIAZEPINE", "warning"),
        ("NO_SIGNAL_AFTER_4", "warning"),
        ("DOSE_ESCALATION", "info"),
        ("INFUSION_RATE", "info"),
        ("EXTEND_INDUCTION", "info"),
    ]
    benzodiazepine = result["flags"][0]
    assert benzodiazepine["message"] == (
        "MADRS 36 → 29 (19.4 %) after 6 completed sessions; clonazepam is active."
    )
    assert benzodiazepine["source"] == "000 step 3; 001 medications to avoid or adjust"
    assert result["flags"][2]["suggested_dose_mg_per_kg"] == 0.6


def test_case_1_after_taper_and_escalation_is_response_and_plans_maintenance():
    result = evaluated("seed000_case1_after_taper_and_escalation")
    assert result["sessions_completed"] == 10
    assert codes(result) == [("MAINTENANCE_PLAN", "info")]  # clonazepam stopped: no flag


def test_case_2_after_six_iv_infusions_is_partial_response():
    result = evaluated("seed000_case2_after_6_iv")
    assert codes(result) == [
        ("INFUSION_RATE", "info"),
        ("EXTEND_INDUCTION", "info"),
        ("ROUTE_SWITCH", "info"),
    ]
    assert "slower" in result["flags"][0]["suggestion"]
    assert "intranasal esketamine" in result["flags"][2]["suggestion"]


def test_case_2_after_eight_intranasal_sessions_is_response_not_remission():
    result = evaluated("seed000_case2_after_8_intranasal")
    assert result["sessions_completed"] == 14  # one course: the route switch is inside it
    assert result["instruments"]["madrs"]["status"] == "response"  # 12 > 10
    assert codes(result) == [("MAINTENANCE_PLAN", "info")]


def test_case_3_after_twelve_treatments_raises_the_discontinuation_review():
    result = evaluated("seed000_case3_discontinuation")
    assert result["sessions_completed"] == 12
    assert result["trajectory"] == "plateau"
    assert codes(result)[0] == ("DISCONTINUATION_REVIEW", "warning")
    review = result["flags"][0]
    assert "000 knowing when to discontinue" in review["source"]
    assert "ECT, TMS, VNS" in review["suggestion"]


def test_the_spec_example_input_gives_the_spec_example_output():
    result = evaluated("spec_example")
    flag = result["flags"][0]
    assert flag["message"] and flag["suggestion"] and flag["source"]  # "..." in the SPEC
    flag.update(message="...", suggestion="...", source="...")
    assert result == {
        "status": "non_response",
        "provisional": True,
        "adequate_trial": False,
        "primary_instrument": "madrs",
        "baseline": 36,
        "current": 29,
        "percent_reduction": 19.4,
        "sessions_completed": 1,
        "trajectory": "insufficient",
        "instruments": {
            "madrs": {
                "status": "non_response",
                "baseline": 36,
                "current": 29,
                "percent_reduction": 19.4,
            },
            "phq9": {
                "status": "insufficient_data",
                "baseline": None,
                "current": None,
                "percent_reduction": None,
            },
        },
        "flags": [
            {
                "code": "BENZODIAZEPINE",
                "severity": "warning",
                "message": "...",
                "suggestion": "...",
                "source": "...",
                "suggested_dose_mg_per_kg": None,
            }
        ],
    }


US_CORE_PHQ9 = [2, 2, 2, 2, 1, 1, 2, 0, 0]


def test_the_us_core_phq9_example_totals_12_moderate():
    assert PHQ9.total(US_CORE_PHQ9) == 12
    assert PHQ9.band(12) == "moderate"


def test_the_us_core_phq9_example_raises_no_item_9_flag():
    document = json.loads((CASES / "spec_example.json").read_text(encoding="utf-8"))
    document["assessments"].append(
        {"at": "2026-02-03T11:00", "instrument": "phq9", "items": US_CORE_PHQ9}
    )
    result = json.loads(evaluate_json(json.dumps(document)))
    assert "SUICIDAL_IDEATION" not in [flag["code"] for flag in result["flags"]]
    assert result["instruments"]["phq9"]["current"] == 12


def test_every_case_file_is_valid_json_with_the_spec_keys():
    for path in sorted(CASES.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert {"patient", "phase", "sessions", "assessments"} <= set(document), path.name
