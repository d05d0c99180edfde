"""SPEC §5 input: what is read, and every refusal as one line naming the field."""

import copy
import json
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinical.engine import DEFAULTS, EngineSettings
from clinical.jsonio import InputError, evaluate_json, load_course, parse_course
from clinical.vocab import Intensity, MedClass, Phase, Route, SessionStatus

BASE = json.loads((Path(__file__).parent / "cases" / "spec_example.json").read_text("utf-8"))
NEW_YORK = ZoneInfo("America/New_York")


def document(**changes) -> dict:
    """The SPEC example, with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def with_session(**fields) -> dict:
    data = document()
    data["sessions"][0].update(fields)
    return data


def without(data: dict, path: str) -> dict:
    """Remove ``a.b`` or ``sessions.0.route`` from a copy of ``data``."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    del target[int(last) if last.isdigit() else last]
    return data


def refusal(data) -> InputError:
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    with pytest.raises(InputError) as caught:
        load_course(text)
    error = caught.value
    assert "\n" not in str(error)
    assert str(error).startswith(f"{error.field}: ")
    return error


# -- What is read ------------------------------------------------------------------------------


def test_it_reads_the_spec_example():
    facts = load_course(json.dumps(BASE))
    assert facts.phase == Phase.INDUCTION
    assert facts.patient.weight_kg == Decimal(82)
    session = facts.sessions[0]
    assert session.route == Route.IV
    assert session.dose_mg_per_kg == Decimal("0.5")
    assert session.dissociation == Intensity.MILD
    assert session.status == SessionStatus.COMPLETED
    assert session.bp_pre == (128, 82)
    assert facts.assessments[0].total == 36
    assert facts.assessments[1].items is None
    assert facts.medications[0].drug_class == MedClass.BENZODIAZEPINE


def test_it_reads_numbers_as_exact_decimals():
    text = json.dumps(BASE).replace('"dose_mg_per_kg": 0.5', '"dose_mg_per_kg": 0.75')
    facts = load_course(text)
    assert facts.sessions[0].dose_mg_per_kg == Decimal("0.75")


def test_it_reads_a_time_without_offset_in_the_clinic_zone():
    facts = load_course(json.dumps(BASE))
    assert facts.sessions[0].at == datetime(2026, 2, 2, 9, 0, tzinfo=NEW_YORK)
    tokyo = EngineSettings(timezone=ZoneInfo("Asia/Tokyo"))
    assert (
        load_course(json.dumps(BASE), tokyo).sessions[0].at.utcoffset().total_seconds() == 9 * 3600
    )


def test_it_keeps_an_explicit_offset():
    facts = load_course(json.dumps(with_session(at="2026-02-02T14:00:00Z")))
    assert facts.sessions[0].at == datetime(2026, 2, 2, 9, 0, tzinfo=NEW_YORK)


def test_it_reads_a_date_only_as_of_as_the_end_of_that_day():
    facts = load_course(json.dumps(document(as_of="2026-02-02")))
    assert facts.as_of == datetime.combine(date(2026, 2, 2), time.max, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("name", "drug_class"),
    [
        ("clonazepam", MedClass.BENZODIAZEPINE),
        ("KLONOPIN", MedClass.BENZODIAZEPINE),  # a brand, any letter case
        ("naltrexone", MedClass.NALTREXONE),
        ("not-a-real-drug", MedClass.UNCLASSIFIED),
    ],
)
def test_it_classifies_an_omitted_class_from_the_catalogue(name, drug_class):
    data = document(medications=[{"name": name, "start": "2025-06-01"}])
    assert load_course(json.dumps(data)).medications[0].drug_class == drug_class


def test_it_takes_optional_fields_as_omitted_or_null():
    data = document()
    for key in ("maintenance_started", "as_of", "medications", "accepted_flags"):
        del data[key]
    data["sessions"] = [
        {
            "at": "2026-02-02T09:00",
            "route": "intranasal",
            "dose_mg": 56,
            "dissociation": "none",
            "adverse_event_severity": "none",
            "status": "stopped",
        }
    ]
    facts = parse_course(data, DEFAULTS)
    assert facts.sessions[0].bp_pre is None
    assert facts.sessions[0].status == SessionStatus.STOPPED
    assert facts.accepted_flags == frozenset()


@pytest.mark.parametrize(
    ("route", "dose_field", "value"),
    [
        ("iv", "dose_mg_per_kg", 0.05),
        ("iv", "dose_mg_per_kg", 1.0),
        ("im", "dose_mg_per_kg", 0.75),
        ("intranasal", "dose_mg", 28),
        ("intranasal", "dose_mg", 84),
        ("sublingual", "dose_mg", 10),
        ("oral", "dose_mg", 1000),
    ],
)
def test_it_accepts_doses_at_the_hard_limits(route, dose_field, value):
    fields = {"route": route, "dose_mg_per_kg": None, "dose_mg": None, dose_field: value}
    assert load_course(json.dumps(with_session(**fields))).sessions[0].route == route


@pytest.mark.parametrize(("minutes", "weight"), [(5, 25), (240, 350)])
def test_it_accepts_minutes_and_weight_at_the_hard_limits(minutes, weight):
    data = with_session(minutes=minutes)
    data["patient"]["weight_kg"] = weight
    assert load_course(json.dumps(data)).sessions[0].minutes == minutes


def test_it_accepts_items_and_total_that_agree():
    data = document()
    data["assessments"][0]["total"] = 36
    assert load_course(json.dumps(data)).assessments[0].total == 36


def test_it_evaluates_json_text_to_json_text():
    result = json.loads(evaluate_json(json.dumps(BASE)))
    assert result["status"] == "non_response"


# -- Refusals ----------------------------------------------------------------------------------


def test_it_refuses_a_dose_above_1_mg_per_kg_with_the_spec_message():
    data = document()
    data["sessions"] = [copy.deepcopy(BASE["sessions"][0]) for _ in range(3)]
    data["sessions"][2]["dose_mg_per_kg"] = 1.2
    error = refusal(data)
    assert str(error) == (
        "sessions[2].dose_mg_per_kg: must be at most 1.0 mg/kg (you entered 1.2 mg/kg)"
    )


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"dose_mg_per_kg": 0.04}, "sessions[0].dose_mg_per_kg", "at least 0.05"),
        ({"dose_mg_per_kg": 1.01}, "sessions[0].dose_mg_per_kg", "at most 1.0"),
        ({"route": "im", "dose_mg_per_kg": 1.5}, "sessions[0].dose_mg_per_kg", "at most 1.0"),
        ({"dose_mg_per_kg": None}, "sessions[0].dose_mg_per_kg", "required for route iv"),
        (
            {"route": "intranasal", "dose_mg_per_kg": None, "dose_mg": 42},
            "sessions[0].dose_mg",
            "28, 56 or 84",
        ),
        (
            {"route": "intranasal", "dose_mg_per_kg": None, "dose_mg": 112},
            "sessions[0].dose_mg",
            "28, 56 or 84",
        ),
        (
            {"route": "sublingual", "dose_mg_per_kg": None, "dose_mg": 9},
            "sessions[0].dose_mg",
            "between 10 and 1,000 mg for sublingual ketamine (you entered 9 mg)",
        ),
        (
            {"route": "oral", "dose_mg_per_kg": None, "dose_mg": 1001},
            "sessions[0].dose_mg",
            "between 10 and 1,000 mg",
        ),
        (
            {"route": "oral", "dose_mg_per_kg": None, "dose_mg": None},
            "sessions[0].dose_mg",
            "required for route oral",
        ),
        ({"route": "intranasal", "dose_mg": 56}, "sessions[0].dose_mg_per_kg", "only IV and IM"),
        ({"minutes": 4}, "sessions[0].minutes", "between 5 and 240"),
        ({"minutes": 241}, "sessions[0].minutes", "between 5 and 240"),
        ({"minutes": 40.5}, "sessions[0].minutes", "whole number"),
        ({"route": "subcutaneous"}, "sessions[0].route", "unknown spelling"),
        ({"dissociation": "intense"}, "sessions[0].dissociation", "unknown spelling"),
        ({"adverse_event_severity": "Mild"}, "sessions[0].adverse_event_severity", "unknown"),
        ({"status": "done"}, "sessions[0].status", "unknown spelling"),
        ({"at": "2026-02-30T09:00"}, "sessions[0].at", "malformed date-time"),
        ({"at": "next Monday"}, "sessions[0].at", "malformed date-time"),
        ({"at": 20260202}, "sessions[0].at", "ISO 8601"),
        ({"discharged_at": "2026-02-02T08:00"}, "sessions[0].discharged_at", "at or after"),
        ({"benzodiazepine_24h": "no"}, "sessions[0].benzodiazepine_24h", "true or false"),
        ({"enhanced_monitoring": 1}, "sessions[0].enhanced_monitoring", "true or false"),
        ({"dose_mg_per_kg": True}, "sessions[0].dose_mg_per_kg", "must be a number"),
        ({"dose_mg_per_kg": "0.5"}, "sessions[0].dose_mg_per_kg", "must be a number"),
        ({"bp_pre": "128/82"}, "sessions[0].bp_pre", "must be a list"),
        ({"bp_pre": [128]}, "sessions[0].bp_pre", "[systolic, diastolic]"),
        ({"bp_pre": [82, 128]}, "sessions[0].bp_pre", "systolic higher"),
        ({"bp_pre": [128, "82"]}, "sessions[0].bp_pre[1]", "must be a number"),
        ({"note": "fine"}, "sessions[0].note", "unknown field"),
    ],
)
def test_it_refuses_a_bad_session(fields, field, words):
    error = refusal(with_session(**fields))
    assert error.field == field
    assert words in error.reason


@pytest.mark.parametrize(
    "missing", ["at", "route", "status", "dissociation", "adverse_event_severity"]
)
def test_it_refuses_a_session_without_a_required_field(missing):
    error = refusal(without(document(), f"sessions.0.{missing}"))
    assert (error.field, error.reason) == (f"sessions[0].{missing}", "is required")


@pytest.mark.parametrize(
    ("assessment", "field", "words"),
    [
        ({"items": [4, 4, 4, 4, 3, 4, 3, 4, 3, 7]}, "assessments[0].items", "item 10"),
        ({"items": [4, 4, 4, 4, 3, 4, 3, 4, 3, -1]}, "assessments[0].items", "must be 0–6"),
        ({"items": [4, 4, 4, 4, 3, 4, 3, 4, 3]}, "assessments[0].items", "needs 10 item scores"),
        ({"items": [4, 4, 4, 4, 3, 4, 3, 4, 3, 3, 0]}, "assessments[0].items", "got 11"),
        ({"items": [4, 4, 4, True, 3, 4, 3, 4, 3, 3]}, "assessments[0].items", "item 4"),
        ({"items": [4, 4, 4, 4.0, 3, 4, 3, 4, 3, 3]}, "assessments[0].items", "whole number"),
        ({"items": [4, 4, None, 4, 3, 4, 3, 4, 3, 3]}, "assessments[0].items", "item 3"),
        ({"items": "4444343433"}, "assessments[0].items", "must be a list"),
        ({"total": 35}, "assessments[0].total", "add up to 36"),
        ({"instrument": "hamd"}, "assessments[0].instrument", "unknown spelling"),
        ({"instrument": "phq9"}, "assessments[0].items", "PHQ-9 needs 9 item scores"),
        ({"at": "2026-02-01 10:00 EST"}, "assessments[0].at", "malformed"),
        ({"difficulty": "very"}, "assessments[0].difficulty", "unknown field"),
    ],
)
def test_it_refuses_a_bad_assessment(assessment, field, words):
    data = document()
    data["assessments"][0].update(assessment)
    error = refusal(data)
    assert error.field == field
    assert words in error.reason


@pytest.mark.parametrize(
    ("assessment", "words"),
    [
        ({"total": 61}, "MADRS total must be 0–60, got 61"),
        ({"total": -1}, "MADRS total must be 0–60, got -1"),
        ({"total": 29.5}, "whole number"),
        ({"total": "29"}, "must be a number"),
    ],
)
def test_it_refuses_an_imported_total_outside_its_range(assessment, words):
    data = document()
    data["assessments"][1].update(assessment)
    error = refusal(data)
    assert error.field == "assessments[1].total"
    assert words in error.reason


def test_it_refuses_a_phq9_item_above_3():
    data = document()
    data["assessments"].append(
        {"at": "2026-02-03T11:00", "instrument": "phq9", "items": [2, 2, 2, 2, 1, 1, 2, 0, 4]}
    )
    error = refusal(data)
    assert error.field == "assessments[2].items"
    assert error.reason.startswith("item 9 (Thoughts that you would be better off dead")


def test_it_refuses_an_assessment_without_items_or_total():
    data = without(document(), "assessments.1.total")
    error = refusal(data)
    assert error.field == "assessments[1].items"
    assert "required" in error.reason


@pytest.mark.parametrize(
    ("patient", "field", "words"),
    [
        ({"diagnosis": "mdd_recurrent"}, "patient.diagnosis", "unknown spelling"),
        ({"diagnosis": None}, "patient.diagnosis", "is required"),
        ({"psychotic_features": "no"}, "patient.psychotic_features", "true or false"),
        ({"psychotic_features": 0}, "patient.psychotic_features", "true or false"),
        ({"weight_kg": 24.9}, "patient.weight_kg", "between 25 and 350 kg, got 24.9"),
        ({"weight_kg": 350.5}, "patient.weight_kg", "between 25 and 350 kg, got 350.5"),
        ({"weight_kg": True}, "patient.weight_kg", "must be a number"),
        ({"weight_kg": "82"}, "patient.weight_kg", "must be a number"),
        ({"failed_trials": "sertraline"}, "patient.failed_trials", "must be a list"),
        ({"failed_trials": [{"drug": "x", "adequate": "yes"}]}, "patient.failed_trials[0]", ""),
        ({"failed_trials": [{"drug": "x", "class": "ssri"}]}, "patient.failed_trials[0]", ""),
        (
            {"failed_trials": [{"drug": "x", "class": "snri2", "adequate": True}]},
            "patient.failed_trials[0].class",
            "unknown spelling",
        ),
        ({"height": 180}, "patient.height", "unknown field"),
    ],
)
def test_it_refuses_a_bad_patient(patient, field, words):
    data = document()
    data["patient"].update(patient)
    error = refusal(data)
    assert error.field.startswith(field)
    assert words in error.reason


@pytest.mark.parametrize("missing", ["diagnosis", "psychotic_features"])
def test_it_refuses_a_patient_without_a_required_field(missing):
    error = refusal(without(document(), f"patient.{missing}"))
    assert error.field == f"patient.{missing}"


@pytest.mark.parametrize(
    ("medication", "field", "words"),
    [
        ({"class": "benzo"}, "medications[0].class", "unknown spelling"),
        ({"start": "06/01/2025"}, "medications[0].start", "malformed date"),
        ({"start": "2025-06-01T08:00"}, "medications[0].start", "malformed date"),
        ({"stop": "2025-05-01"}, "medications[0].stop", "on or after start"),
        ({"start": None}, "medications[0].start", "is required"),
        ({"name": ""}, "medications[0].name", "non-empty string"),
        ({"name": 7}, "medications[0].name", "non-empty string"),
    ],
)
def test_it_refuses_a_bad_medication(medication, field, words):
    data = document()
    data["medications"][0].update(medication)
    error = refusal(data)
    assert error.field == field
    assert words in error.reason


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"phase": "taper"}, "phase", "unknown spelling"),
        ({"phase": None}, "phase", "is required"),
        ({"patient": None}, "patient", "is required"),
        ({"patient": ["mdd"]}, "patient", "must be an object"),
        ({"maintenance_started": "2026-13-01"}, "maintenance_started", "malformed date"),
        ({"as_of": "yesterday"}, "as_of", "malformed date-time"),
        ({"sessions": "none"}, "sessions", "must be a list"),
        ({"sessions": ["2026-02-02"]}, "sessions[0]", "must be an object"),
        ({"medications": {"name": "x"}}, "medications", "must be a list"),
        ({"accepted_flags": ["DOSE_ESCALATE"]}, "accepted_flags[0]", "unknown flag code"),
        ({"accepted_flags": "DOSE_ESCALATION"}, "accepted_flags", "must be a list"),
        ({"clinic": "north"}, "clinic", "unknown field"),
    ],
)
def test_it_refuses_a_bad_course(changes, field, words):
    error = refusal(document(**changes))
    assert error.field == field
    assert words in error.reason


def test_it_refuses_a_course_without_a_phase():
    assert refusal(without(document(), "phase")).field == "phase"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "invalid JSON at line 1 column 1"),
        ("{", "invalid JSON"),
        ('{"patient": }', "invalid JSON at line 1 column 13"),
        ("[1, 2]", "must be an object"),
        ('{"phase": NaN}', "NaN is not a number"),
    ],
)
def test_it_refuses_text_that_is_not_a_json_object(text, words):
    error = refusal(text)
    assert error.field == "input"
    assert words in error.reason


def test_it_refuses_a_key_given_twice():
    text = json.dumps(BASE)[:-1] + ', "phase": "maintenance"}'
    error = refusal(text)
    assert (error.field, error.reason) == ("phase", "is given twice")


def test_it_names_an_unknown_spelling_on_one_line_even_with_a_newline_in_it():
    error = refusal(document(phase="induction\nmaintenance"))
    assert error.field == "phase"
    assert "\\n" in str(error)


def test_it_never_returns_a_partial_evaluation():
    with pytest.raises(InputError):
        evaluate_json(json.dumps(with_session(dose_mg_per_kg=1.2)))


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)
    assert str(InputError("weight_kg", "must be\na number")) == "weight_kg: must be a number"
