"""Registering patients, their weights, trials and medications; the list and its search."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from clinical.vocab import MedClass
from patients.models import Medication, Patient, WeightRecord
from tests.conftest import sent
from tests.factories import MedicationFactory, PatientFactory

pytestmark = pytest.mark.django_db

NEW_PATIENT = {
    "record_number": "mrn-777", "first_name": "Alex", "last_name": "Sample",
    "date_of_birth": "1980-05-05", "sex": "female", "height_cm": "170", "diagnosis": "mdd",
    "weight_kg": "72.5",
}


def test_it_registers_a_patient_with_a_first_weight(as_user, clinician):
    response = as_user(clinician).post(reverse("patients:new"), NEW_PATIENT)
    patient = Patient.objects.get()
    assert response.url == reverse("patients:detail", args=[patient.pk])
    assert patient.record_number == "MRN-777"
    assert patient.weights.get().weight_kg == Decimal("72.5")
    actions = list(
        AuditEvent.objects.exclude(action=Action.LOGIN).values_list("action", "object_type")
    )
    assert actions == [
        (Action.CREATE, "patients.Patient"), (Action.CREATE, "patients.WeightRecord")
    ]


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("weight_kg", "24.9", "Weight must be between 25 and 350 kg."),
        ("weight_kg", "351", "Weight must be between 25 and 350 kg."),
        ("weight_kg", "heavy", "Weight must be a number in kg."),
        ("height_cm", "99", "Height must be between 100 and 250 cm."),
        ("height_cm", "251", "Height must be between 100 and 250 cm."),
        ("date_of_birth", "2099-01-01", "future"),
        ("date_of_birth", "2999-01-01", "between 1900 and 2099"),
        ("diagnosis", "depression", "valid choice"),
        ("record_number", "", "required"),
        ("rems_enrolled_on", "2099-12-31", "The REMS enrolment date cannot be in the future."),
        ("rems_enrolled_on", "1980-05-04", "The REMS enrolment date is before the date of "
                                           "birth (1980-05-05)."),
        ("self_report_consent_on", "1979-01-01", "The consent date is before 2000"),
    ],
)
def test_it_refuses_bad_patient_input_and_saves_nothing(as_user, clinician, field, value, words):
    response = as_user(clinician).post(reverse("patients:new"), {**NEW_PATIENT, field: value})
    assert words in " ".join(response.context["form"].errors[field])
    assert not Patient.objects.exists() and not WeightRecord.objects.exists()
    assert not AuditEvent.objects.exclude(action=Action.LOGIN).exists()


def test_it_refuses_a_duplicate_record_number(as_user, clinician):
    PatientFactory(record_number="MRN-777")
    response = as_user(clinician).post(reverse("patients:new"), NEW_PATIENT)
    assert "already exists" in " ".join(response.context["form"].errors["record_number"])


def test_editing_audits_only_the_changed_fields(as_user, clinician):
    patient = PatientFactory(diagnosis="mdd")
    data = {**NEW_PATIENT, "record_number": patient.record_number, "diagnosis": "bipolar_ii",
            "first_name": patient.first_name, "last_name": patient.last_name,
            "date_of_birth": "1980-01-01", "height_cm": "165.0"}
    as_user(clinician).post(reverse("patients:edit", args=[patient.pk]), data)
    patient.refresh_from_db()
    assert patient.diagnosis == "bipolar_ii"
    event = AuditEvent.objects.get(action=Action.UPDATE)
    assert event.before == {"diagnosis": "mdd"}
    assert event.after == {"diagnosis": "bipolar_ii"}


def test_a_date_of_birth_after_the_record_begins_is_refused(as_user, clinician):
    patient = PatientFactory(date_of_birth=date(1980, 1, 1))
    MedicationFactory(patient=patient, started_on=date(2001, 6, 1))
    patient.weights.create(measured_on=date(2003, 2, 1), weight_kg=70, recorded_by=clinician)
    data = {**NEW_PATIENT, "record_number": patient.record_number,
            "first_name": patient.first_name, "last_name": patient.last_name,
            "diagnosis": patient.diagnosis, "height_cm": "165.0"}
    url = reverse("patients:edit", args=[patient.pk])
    refused = as_user(clinician).post(url, {**data, "date_of_birth": "2002-01-01"})
    assert refused.context["form"].errors["date_of_birth"] == [
        "Date of birth is after the patient's first medication start (2001-06-01)."]
    patient.refresh_from_db()
    assert patient.date_of_birth == date(1980, 1, 1)
    assert not AuditEvent.objects.filter(action=Action.UPDATE).exists()
    assert as_user(clinician).post(url, {**data, "date_of_birth": "2001-06-01"}).status_code == 302
    patient.refresh_from_db()
    assert patient.date_of_birth == date(2001, 6, 1)


def test_viewing_a_patient_is_audited(as_user, clinic_admin):
    patient = PatientFactory()
    as_user(clinic_admin).get(reverse("patients:detail", args=[patient.pk]))
    event = AuditEvent.objects.get(action=Action.VIEW)
    assert (event.actor, event.patient_id) == (clinic_admin, patient.pk)


def test_the_weight_in_force_is_the_latest_on_or_before_the_day(clinician):
    patient = PatientFactory()
    for day, kg in [(date(2026, 1, 1), "90"), (date(2026, 3, 1), "85")]:
        WeightRecord.objects.create(patient=patient, measured_on=day, weight_kg=Decimal(kg),
                                    recorded_by=clinician)
    assert patient.weight_on(date(2025, 12, 31)) is None
    assert patient.weight_on(date(2026, 1, 1)).weight_kg == Decimal("90")
    assert patient.weight_on(date(2026, 2, 28)).weight_kg == Decimal("90")
    assert patient.weight_on(date(2026, 3, 1)).weight_kg == Decimal("85")


def test_a_second_weight_on_the_same_day_corrects_the_first(as_user, clinician):
    patient = PatientFactory()
    client = as_user(clinician)
    url = reverse("patients:weight-new", args=[patient.pk])
    client.post(url, {"measured_on": "2026-01-05", "weight_kg": "80"})
    client.post(url, {"measured_on": "2026-01-05", "weight_kg": "81.5"})
    assert list(patient.weights.values_list("weight_kg", flat=True)) == [Decimal("81.5")]
    update = AuditEvent.objects.get(action=Action.UPDATE)
    assert (update.before["weight_kg"], update.after["weight_kg"]) == ("80.0", "81.5")


@pytest.mark.parametrize("form,field,data,words", [
    ("weight-new", "measured_on", {"measured_on": "1900-01-01", "weight_kg": "80"},
     "The measurement date is before the patient's date of birth (1970-03-14)."),
    ("weight-new", "measured_on", {"measured_on": "2099-01-01", "weight_kg": "80"},
     "The measurement date cannot be in the future."),
    ("medication-new", "started_on", {"name": "Zoloft", "dose": "50 mg",
                                      "started_on": "1970-03-13"},
     "The start date is before the patient's date of birth (1970-03-14)."),
    ("medication-new", "started_on", {"name": "Zoloft", "dose": "50 mg",
                                      "started_on": "2099-01-01"},
     "The start date cannot be in the future."),
    ("trial-new", "weeks", {"drug": "sertraline", "drug_class": "ssri", "dose": "200 mg",
                            "weeks": "0", "adequate": "on", "outcome": "no_response"},
     "A trial of 0 weeks is too short to be adequate (at least 4, usually 6 or more)"),
    ("trial-new", "weeks", {"drug": "sertraline", "drug_class": "ssri", "dose": "200 mg",
                            "weeks": "3", "adequate": "on", "outcome": "no_response"},
     "A trial of 3 weeks is too short to be adequate"),
])
def test_a_patients_small_forms_refuse_what_cannot_be_and_save_nothing(as_user, clinician, form,
                                                                      field, data, words):
    patient = PatientFactory(date_of_birth=date(1970, 3, 14))
    response = as_user(clinician).post(reverse(f"patients:{form}", args=[patient.pk]), data)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert not patient.weights.exists() and not patient.medications.exists()
    assert not patient.prior_trials.exists()
    assert not AuditEvent.objects.exclude(action=Action.LOGIN).exclude(action=Action.VIEW).exists()


def test_a_short_trial_is_kept_when_not_called_adequate(as_user, clinician):
    patient = PatientFactory(date_of_birth=date(1970, 3, 14))
    client = as_user(clinician)
    url = reverse("patients:trial-new", args=[patient.pk])
    trial = {"drug": "sertraline", "drug_class": "ssri", "dose": "50 mg", "weeks": "1",
             "outcome": "not_tolerated"}
    assert client.post(url, trial).status_code == 302
    assert client.post(url, {**trial, "drug": "venlafaxine", "drug_class": "snri",
                             "weeks": "4", "adequate": "on"}).status_code == 302
    assert list(patient.prior_trials.order_by("id").values_list("weeks", "adequate")) == [
        (1, False), (4, True)]


@pytest.mark.parametrize(
    "name,expected",
    [("KLONOPIN", MedClass.BENZODIAZEPINE), ("  lithium   carbonate ", MedClass.LITHIUM),
     ("Zoloft", MedClass.SSRI), ("Grandma's tonic", MedClass.UNCLASSIFIED)],
)
def test_adding_a_medication_fills_its_class_from_the_catalogue(as_user, clinician, name,
                                                                 expected):
    patient = PatientFactory()
    as_user(clinician).post(
        reverse("patients:medication-new", args=[patient.pk]),
        {"name": name, "dose": "1 mg", "started_on": "2026-01-01", "drug_class": ""},
    )
    assert Medication.objects.get().drug_class == expected


def test_an_unclassified_medication_can_be_classified(as_user, clinician):
    medication = MedicationFactory(name="Grandma's tonic", drug_class=MedClass.UNCLASSIFIED)
    client = as_user(clinician)
    url = reverse("patients:medication-classify", args=[medication.pk])
    client.post(url, {"drug_class": "unclassified"})
    medication.refresh_from_db()
    assert medication.drug_class == MedClass.UNCLASSIFIED  # refused: not a class
    client.post(url, {"drug_class": "other"})
    medication.refresh_from_db()
    assert medication.drug_class == MedClass.OTHER
    event = AuditEvent.objects.get(action=Action.UPDATE)
    assert (event.before, event.after) == ({"drug_class": "unclassified"}, {"drug_class": "other"})


def test_stopping_a_medication_keeps_it_in_history(as_user, clinician):
    medication = MedicationFactory(started_on=date(2025, 6, 1))
    client = as_user(clinician)
    url = reverse("patients:medication-stop", args=[medication.pk])
    refused = client.post(url, {"stopped_on": "2025-05-01"})
    assert "before the start date" in " ".join(refused.context["form"].errors["stopped_on"])
    client.post(url, {"stopped_on": "2026-01-10", "reason": "tapered"})
    medication.refresh_from_db()
    assert (medication.stopped_on, medication.stop_reason) == (date(2026, 1, 10), "tapered")
    assert Medication.objects.active_on(date(2026, 1, 10)).count() == 1  # stops that day
    assert Medication.objects.active_on(date(2026, 1, 11)).count() == 0
    body = client.get(reverse("patients:detail", args=[medication.patient_id])).content.decode()
    assert "Stopped medications" in body


def test_the_list_searches_by_name_or_record_number(as_user, clinician):
    PatientFactory(first_name="Alma", last_name="Quist", record_number="Q-100")
    PatientFactory(first_name="Bert", last_name="Rowe", record_number="R-200")
    client = as_user(clinician)
    names = lambda q: [p.last_name for p in client.get(  # noqa: E731
        reverse("patients:list"), {"q": q}).context["page"]]
    assert names("quist") == ["Quist"]
    assert names("r-200") == ["Rowe"]
    assert names("alma quist") == ["Quist"]
    assert names("nobody") == []


def test_a_name_is_found_as_the_lists_write_it_and_by_date_of_birth(as_user, clinician):
    PatientFactory(first_name="Tomas", last_name="Reed", date_of_birth=date(1980, 4, 4))
    PatientFactory(first_name="Tomas", last_name="Reeder", date_of_birth=date(1980, 4, 5))
    client = as_user(clinician)
    names = lambda q: sorted(p.last_name for p in client.get(  # noqa: E731
        reverse("patients:list"), {"q": q}).context["page"])
    assert names("Reed, Tomas") == ["Reed", "Reeder"]  # "Last, First", as every list shows
    assert names("reed,tomas") == ["Reed", "Reeder"]
    assert names("1980-04-04") == ["Reed"]
    assert names("tomas 1980-04-05") == ["Reeder"]
    assert names("1980-02-30") == []  # no such day: a word like any other, matching nothing


def test_a_search_matches_any_part_of_a_name_or_record_number_in_any_case(as_user, clinician):
    PatientFactory(first_name="Marianne", last_name="Oduya", record_number="MRN-0042_7")
    PatientFactory(first_name="Anne", last_name="Marr", record_number="X%1")
    client = as_user(clinician)
    names = lambda q: sorted(p.last_name for p in client.get(  # noqa: E731
        reverse("patients:list"), {"q": q}).context["page"])
    assert names("ANNE") == ["Marr", "Oduya"]
    assert names("arr") == ["Marr"]
    assert names("duy") == ["Oduya"]
    assert names("0042_7") == ["Oduya"]
    # Every word must match, each in any of the three, in any order.
    assert names("oduya marianne") == ["Oduya"]
    assert names("anne mrn") == ["Oduya"]
    assert names("anne x%") == ["Marr"]
    # % and _ are letters here, not wildcards; a word never spans two columns.
    assert names("%") == ["Marr"]
    assert names("mrn-0042_") == ["Oduya"]
    assert names("x_1") == []
    assert names("anne marr") == ["Marr"]
    assert names("annemarr") == []


@pytest.mark.parametrize("read", [500, 5])
def test_a_search_pages_its_matches_in_name_order(as_user, clinician, monkeypatch, read):
    """However many matches there are (below or above what a search reads at once), its
    pages hold them in the list's order: family name, given name, then the oldest first."""
    from patients import views

    monkeypatch.setattr(views, "MATCHES_READ", read)
    for i in range(30):
        PatientFactory(first_name=f"Ann{i % 3}", last_name=f"Dunn{29 - i:02d}")
    PatientFactory(first_name="Ann", last_name="Other")  # and others that do not match
    PatientFactory(first_name="Bea", last_name="Aadunn")
    client = as_user(clinician)

    def page(number):
        found = client.get(reverse("patients:list"), {"q": "dunn ann", "page": number})
        return found.context["page"]

    first, second = page(1), page(2)
    assert first.paginator.count == 30 and first.paginator.num_pages == 2
    shown = [(p.last_name, p.first_name) for p in [*first, *second]]
    assert shown == sorted(shown) and len(set(shown)) == 30
    assert shown[0] == ("Dunn00", "Ann2")
    # Words too short for an index: counted, and paged along the name index.
    short = client.get(reverse("patients:list"), {"q": "nn an"}).context["page"]
    assert short.paginator.count == 31  # and Ann Other
    assert [p.last_name for p in short][:2] == ["Dunn00", "Dunn01"]


def test_the_list_shows_each_patients_course_not_ended(as_user, clinician):
    from courses.models import Course
    from tests.factories import CourseFactory

    patient = PatientFactory(last_name="Ames")
    CourseFactory(patient=patient, phase="ended", ended_on=date(2026, 1, 1),
                  started_on=date(2025, 10, 1))
    course = CourseFactory(patient=patient, phase="maintenance", started_on=date(2026, 2, 3))
    Course.objects.filter(pk=course.pk).update(evaluation={
        "status": "partial_response", "provisional": True,
        "flags": [{"code": "BENZODIAZEPINE", "severity": "warning", "message": "lorazepam"},
                  {"code": "BP_ELEVATED", "severity": "info", "message": "150/95"}],
    })
    PatientFactory(last_name="Bell")
    body = as_user(clinician).get(reverse("patients:list")).content.decode()
    ames, bell = body.split("Ames, ")[1].split("</tr>")[0], body.split("Bell, ")[1]
    assert f'<a href="/courses/{course.pk}/">Maintenance since 2026-02-03</a>' in ames
    assert '<span class="badge text-bg-warning">Partial response (provisional)</span>' in ames
    assert 'title="lorazepam">Benzodiazepine' in ames and "BP elevated" not in ames
    assert f'href="/patients/{patient.pk}/"' in body
    assert '<span class="text-muted">none</span>' in bell.split("</tr>")[0]


def test_the_search_reads_the_trigram_indexes_on_postgresql(db):
    """Migration 0008's indexes hold exactly the expressions the search filters on: with
    sequential scans off, PostgreSQL answers it from them."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    sql, params = Patient.objects.search("quist 100").values("pk").order_by().query \
        .sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for column in ("first_name", "last_name", "record_number"):
        assert f"Bitmap Index Scan on patient_{column}_trgm" in plan, plan


def test_the_list_paginates(as_user, clinician):
    PatientFactory.create_batch(30)
    client = as_user(clinician)
    first = client.get(reverse("patients:list")).context["page"]
    second = client.get(reverse("patients:list"), {"page": 2}).context["page"]
    assert (len(first), len(second), first.paginator.num_pages) == (25, 5, 2)


# -- the patient page's record (patients.record) ------------------------------------------------

def test_postgresql_reads_the_patient_record_in_one_statement_as_the_orm_does(clinician):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from courses.models import Course, FlagDecision
    from patients.record import _in_one_statement, _through_the_orm
    from tests.factories import CourseFactory, PriorTrialFactory, UserFactory, WeightFactory, at

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's")
    patient = PatientFactory()
    ended = CourseFactory(patient=patient, started_on=date(2025, 1, 1), phase="ended",
                          ended_on=date(2025, 6, 1), end_reason="completed")
    current = CourseFactory(patient=patient, started_on=date(2026, 1, 1))
    for course, code in ((ended, "DOSE_ESCALATION"), (current, "MAINTENANCE_PLAN"),
                         (current, "BENZODIAZEPINE")):
        FlagDecision.objects.create(course=course, code=code, decision="declined",
                                    reason="not now", flag_message="seen", decided_by=clinician,
                                    decided_at=at(course.started_on))
    for name, stopped in (("lithium", None), ("Bupropion", date(2026, 2, 1))):
        MedicationFactory(patient=patient, name=name, stopped_on=stopped)
    nurse = UserFactory(first_name="Ada", last_name="Quill", credentials="RN")
    for day, kg, who in ((1, "80.5", nurse), (20, "79.0", clinician)):
        WeightFactory(patient=patient, measured_on=date(2026, 1, day), weight_kg=Decimal(kg),
                      recorded_by=who)
    # A stored evaluation with fractions: floats from the JSON column, as the ORM gives them.
    Course.objects.filter(pk=current.pk).update(
        evaluation={"status": "response", "percent_reduction": 52.1,
                    "flags": [{"code": "DOSE_ESCALATION", "suggested_dose_mg_per_kg": 0.1}]})
    PriorTrialFactory(patient=patient, drug="sertraline")
    PriorTrialFactory(patient=patient, drug="venlafaxine")

    with CaptureQueriesContext(connection) as queries:
        fast = _in_one_statement(patient.pk)
    assert len(sent(queries)) == 1
    slow = _through_the_orm(patient.pk)

    def data(record):
        lists = {}
        for name in ("medications", "courses", "decisions", "weights", "trials"):
            lists[name] = [{f.attname: getattr(obj, f.attname)
                            for f in obj._meta.concrete_fields} for obj in getattr(record, name)]
        lists["signers"] = [weight.recorded_by.signature for weight in record.weights]
        return lists

    assert data(fast) == data(slow)
    assert [m.name for m in fast.medications] == ["Bupropion", "lithium"]
    assert [c.pk for c in fast.courses] == [current.pk, ended.pk]
    assert [d.code for d in fast.decisions] == ["MAINTENANCE_PLAN", "BENZODIAZEPINE"]
    assert data(fast)["signers"] == [clinician.signature, "Ada Quill, RN"]
    import json

    evaluation = fast.courses[0].evaluation
    assert json.dumps(evaluation) == json.dumps(slow.courses[0].evaluation)
    assert type(evaluation["flags"][0]["suggested_dose_mg_per_kg"]) is float
