"""Logging a session: the weight-based dose, the hard limits of SPEC §2, the audit row."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from courses.models import TreatmentSession
from tests.factories import CourseFactory, WeightFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(clinician):
    course = CourseFactory(
        started_on=date(2026, 2, 1), patient__sex="male", patient__height_cm=Decimal("180.0")
    )
    WeightFactory(patient=course.patient, measured_on=date(2026, 1, 1), weight_kg=Decimal("90.0"))
    WeightFactory(patient=course.patient, measured_on=date(2026, 2, 10), weight_kg=Decimal("82.0"))
    return course


def post_session(client, course, **overrides):
    data = {
        "started_at": "2026-02-05T09:00", "route": "iv", "dose_mg_per_kg": "0.5",
        "weight_basis": "actual", "infusion_minutes": "40", "dissociation": "mild",
        "status": "completed", "bp_pre_systolic": "128", "bp_pre_diastolic": "82",
        "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return client.post(reverse("courses:session-new", args=[course.pk]), data)


def errors(response) -> dict:
    form = response.context["form"]
    return {name: " ".join(messages) for name, messages in form.errors.items()}


def test_it_computes_mg_from_the_weight_in_force_on_the_session_date(as_user, clinician, course):
    client = as_user(clinician)
    assert post_session(client, course).status_code == 302
    assert post_session(client, course, started_at="2026-02-12T09:00").status_code == 302
    early, late = TreatmentSession.objects.order_by("started_at")
    assert (early.weight_kg_used, early.dose_mg) == (Decimal("90.0"), Decimal("45.0"))
    assert (late.weight_kg_used, late.dose_mg) == (Decimal("82.0"), Decimal("41.0"))
    assert early.clinician == clinician


def test_it_uses_ideal_body_weight_when_chosen(as_user, clinician, course):
    # Devine, man of 180 cm: 50 + 2.3 × (70.87 − 60) = 75.0 kg
    response = post_session(as_user(clinician), course, weight_basis="ideal")
    assert response.status_code == 302
    session = TreatmentSession.objects.get()
    assert (session.weight_kg_used, session.dose_mg) == (Decimal("75.0"), Decimal("37.5"))


@pytest.mark.parametrize(
    "overrides,field,words",
    [
        ({"dose_mg_per_kg": "1.05"}, "dose_mg_per_kg",
         "Dose must be at most 1.0 mg/kg (you entered 1.05 mg/kg)."),
        ({"dose_mg_per_kg": "half"}, "dose_mg_per_kg", "The dose must be a number in mg/kg."),
        ({"dose_mg_per_kg": "0.04"}, "dose_mg_per_kg",
         "Dose must be at least 0.05 mg/kg (you entered 0.04 mg/kg)."),
        ({"dose_mg_per_kg": ""}, "dose_mg_per_kg", "mg/kg"),
        ({"dose_mg_per_kg": "0.8"}, "enhanced_monitoring", "enhanced"),
        ({"route": "intranasal", "dose_mg": "70"}, "dose_mg",
         "Dose must be 28, 56 or 84 mg for intranasal esketamine (you entered 70 mg)."),
        ({"route": "oral", "dose_mg": "5"}, "dose_mg",
         "Dose must be between 10 and 1,000 mg for oral ketamine (you entered 5 mg)."),
        ({"route": "sublingual", "dose_mg": "1001"}, "dose_mg",
         "Dose must be between 10 and 1,000 mg for sublingual ketamine (you entered 1001 mg)."),
        ({"infusion_minutes": "4"}, "infusion_minutes",
         "Infusion time must be between 5 and 240 minutes."),
        ({"infusion_minutes": "241"}, "infusion_minutes", "between 5 and 240 minutes"),
        ({"infusion_minutes": "forty"}, "infusion_minutes",
         "Infusion time must be a whole number in minutes."),
        ({"spo2_min": "101"}, "spo2_min", "Lowest SpO2 must be between 50 and 100 %."),
        ({"spo2_min": "low"}, "spo2_min", "Lowest SpO2 must be a whole number in %."),
        ({"bp_pre_systolic": "310", "bp_pre_diastolic": "90"}, "bp_pre_systolic",
         "Systolic BP before must be between 50 and 300 mmHg."),
        ({"infusion_minutes": ""}, "infusion_minutes", "infusion minutes"),
        ({"started_at": "2026-01-20T09:00"}, "started_at", "before the course started"),
        ({"started_at": "2099-01-01T09:00"}, "started_at", "future"),
        ({"started_at": "yesterday"}, "started_at", "valid date"),
        ({"status": "stopped"}, "stop_reason", "reason"),
        ({"bp_pre_diastolic": ""}, "bp_pre_systolic", "both systolic and diastolic"),
        ({"bp_pre_diastolic": "140"}, "bp_pre_diastolic", "lower than systolic"),
        ({"discharged_at": "2026-02-05T08:00"}, "discharged_at", "after the session started"),
        ({"ae-0-description": "nausea"}, "", "severity"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(as_user, clinician, course, overrides, field,
                                               words):
    response = post_session(as_user(clinician), course, **overrides)
    assert response.status_code == 200
    if field:
        assert words in errors(response).get(field, ""), errors(response)
    else:
        assert words in str(response.context["events"].errors)
    assert not TreatmentSession.objects.exists()
    assert not AuditEvent.objects.filter(object_type="courses.TreatmentSession").exists()


def test_it_refuses_a_weight_based_dose_without_a_weight_on_record(as_user, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1))
    response = post_session(as_user(clinician), course)
    assert "No weight is recorded on or before 2026-02-05" in errors(response)["weight_basis"]
    assert not TreatmentSession.objects.exists()


def test_it_saves_above_075_once_enhanced_monitoring_is_confirmed(as_user, clinician, course):
    response = post_session(
        as_user(clinician), course, dose_mg_per_kg="1.0", enhanced_monitoring="on"
    )
    assert response.status_code == 302
    assert TreatmentSession.objects.get().enhanced_monitoring


def test_it_keeps_fixed_routes_in_mg_and_drops_weight_fields(as_user, clinician, course):
    response = post_session(
        as_user(clinician), course, route="intranasal", dose_mg="84", dose_mg_per_kg="0.5",
        infusion_minutes="40",
    )
    assert response.status_code == 302
    session = TreatmentSession.objects.get()
    assert session.dose_mg == Decimal("84.0")
    assert session.dose_mg_per_kg is None and session.infusion_minutes is None
    assert session.weight_basis == ""


def test_it_saves_adverse_events_and_audits_the_session(as_user, clinician, course):
    response = post_session(
        as_user(clinician), course, **{"ae-0-description": "nausea", "ae-0-severity": "moderate"}
    )
    assert response.status_code == 302
    session = TreatmentSession.objects.get()
    assert [(e.description, e.severity) for e in session.adverse_events.all()] == [
        ("nausea", "moderate")
    ]
    event = AuditEvent.objects.get(object_type="courses.TreatmentSession")
    assert event.action == Action.CREATE and event.actor == clinician
    assert event.patient_id == course.patient_id and event.before is None
    assert event.after["dose_mg"] == "45.0"
    assert event.after["adverse_events"] == [["nausea", "moderate"]]


def test_it_prefills_the_next_session_from_the_last(as_user, clinician, course):
    client = as_user(clinician)
    post_session(client, course, dose_mg_per_kg="0.6", infusion_minutes="45")
    form = client.get(reverse("courses:session-new", args=[course.pk])).context["form"]
    assert form.initial["dose_mg_per_kg"] == Decimal("0.600")
    assert form.initial["infusion_minutes"] == 45


def test_the_prefill_skips_a_voided_session_and_the_preview_has_every_weight(
        as_user, clinician, course):
    from courses.actions import void_session

    client = as_user(clinician)
    post_session(client, course, dose_mg_per_kg="0.6", infusion_minutes="45",
                 weight_basis="ideal")
    post_session(client, course, started_at="2026-02-12T09:00", dose_mg_per_kg="0.75",
                 infusion_minutes="50")
    latest = TreatmentSession.objects.latest("started_at")
    void_session(clinician, latest, read_version=latest.version, reason="wrong patient")
    response = client.get(reverse("courses:session-new", args=[course.pk]))
    initial = response.context["form"].initial
    assert {name: initial[name] for name in (
        "route", "dose_mg_per_kg", "weight_basis", "dose_mg", "infusion_minutes")} == {
        "route": "iv", "dose_mg_per_kg": Decimal("0.600"), "weight_basis": "ideal",
        "dose_mg": None, "infusion_minutes": 45}
    dose_data = response.context["dose_data"]
    assert {name: dose_data[name] for name in ("weights", "ideal")} == {
        "weights": [{"on": "2026-01-01", "kg": "90.0"}, {"on": "2026-02-10", "kg": "82.0"}],
        "ideal": "75.0"}


def test_it_refuses_sessions_on_an_ended_course(as_user, clinician, course):
    course.phase = "ended"
    course.save()
    response = post_session(as_user(clinician), course)
    assert response.status_code == 302
    assert not TreatmentSession.objects.exists()


@pytest.mark.parametrize("form_class", ["SessionForm", "SessionAmendForm"])
def test_the_session_forms_fields_speak_plainly_however_many_are_opened(form_class, course):
    """Set once on each form class (courses.forms._plain_session_fields), not on every form:
    each class has them, and opening more forms adds nothing twice."""
    from courses import forms
    from ketacare.validators import plausible_datetime

    make = getattr(forms, form_class)
    instance = TreatmentSession(course=course)
    opened = [make(course=course, **({"instance": instance} if "Amend" in form_class else {}))
              for _ in range(3)]
    form = opened[-1]
    assert form.fields["started_at"].validators.count(plausible_datetime) == 1
    assert form.fields["weight_basis"].required is False
    assert form.fields["hr_pre"].error_messages["invalid"] == (
        "Heart rate before must be a whole number in beats a minute.")
    assert form.fields["bp_40_systolic"].widget.attrs.get("data-rems-required") == "1"
    # A vital's label says its unit, once however many forms were opened.
    assert (form.fields["bp_pre_systolic"].label, form.fields["hr_peak"].label) == (
        "BP before, systolic (mmHg)", "Heart rate peak (bpm)")
    assert form.fields["sedation_details"].widget.attrs["aria-label"].endswith(": details")
    # Each form has its own copies: changing one changes no other.
    form.fields["hr_pre"].widget.attrs["data-test"] = "1"
    assert "data-test" not in opened[0].fields["hr_pre"].widget.attrs


def test_the_form_gives_each_milligram_route_its_own_dose_hint(as_user, clinician):
    """The dose field's help text names every route's doses (read without JavaScript); the
    form also carries each route's own, which static/js/session-form.js shows once the route
    is chosen: an intranasal dose is not hinted at with oral ranges."""
    import json
    import re

    course = CourseFactory()
    page = as_user(clinician).get(reverse("courses:session-new", args=[course.pk]))
    html = page.content.decode()
    assert "Intranasal: 28, 56 or 84 mg. Sublingual and oral: 10–1,000 mg." in html
    data = json.loads(re.search(r'id="dose-data" type="application/json">(.*?)</script>',
                                html).group(1))
    assert data["dose_hints"] == {
        "intranasal": "Intranasal esketamine: 28, 56 or 84 mg.",
        "sublingual": "Sublingual ketamine: 10–1,000 mg.",
        "oral": "Oral ketamine: 10–1,000 mg.",
    }
