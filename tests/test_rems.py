"""Spravato REMS monitoring forms (SPEC §8, issue 13): filled from the record, queued by due
day, submitted and undone (audited), printed one per page, exported by admins."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from audit.models import Action, AuditEvent
from clinic.models import ClinicSettings
from clinical.vocab import MedClass, Route
from courses.models import TreatmentSession
from demo.clinic import load_demo_clinic
from demo.rems import SETTING
from patients.models import Patient
from rems.filling import due_on, fill, fill_all, forms_queryset
from rems.models import Submission
from tests.factories import (
    CourseFactory,
    IntranasalSessionFactory,
    MedicationFactory,
    PatientFactory,
)

pytestmark = pytest.mark.django_db


def values(form) -> dict[str, str]:
    return {item.label: item.value for section in form.sections for item in section.items}


@pytest.fixture
def enrolled(clinician):
    ClinicSettings(pk=1, **SETTING).save()
    clinician.telephone = "(217) 555-0142"
    clinician.email = "dr@clinic.example"
    clinician.save()
    today = timezone.localdate()
    patient = PatientFactory(rems_enrolled_on=today - timedelta(days=30), rems_number="RP-1")
    course = CourseFactory(patient=patient, started_on=today - timedelta(days=20),
                           created_by=clinician)
    return course


def session_on(course, days_ago: int, **kw):
    return IntranasalSessionFactory(
        course=course, clinician=course.created_by,
        started_at=timezone.now() - timedelta(days=days_ago), **kw)


def test_the_form_of_a_demo_patient_is_the_record_field_by_field():
    users, _ = load_demo_clinic()
    patient = Patient.objects.get(record_number="DEMO-007")
    clinic = ClinicSettings.load()
    sessions = list(forms_queryset().filter(course__patient=patient))
    assert len(sessions) == 6
    for number, session in enumerate(sessions):
        record = TreatmentSession.objects.get(pk=session.pk)
        got = values(fill(session, clinic))
        day = timezone.localdate(record.started_at)
        clinician = record.clinician
        expected = {
            "First name": patient.first_name, "Last name": patient.last_name,
            "Date of birth": str(patient.date_of_birth), "Sex": patient.get_sex_display(),
            "First treatment": "Yes" if number == 0 else "No",
            "REMS patient number": patient.rems_number,
            "Benzodiazepines": "No", "Non-benzodiazepine sedative hypnotics": "No",
            "Psychostimulants": "No", "Monoamine oxidase inhibitors (MAOIs)": "No",
            "Clinician": clinician.get_full_name(), "Clinician telephone": clinician.telephone,
            "Clinician email": clinician.email, "Setting name": clinic.setting_name,
            "Address": clinic.address, "City": clinic.city, "State": clinic.state,
            "ZIP": clinic.zip_code, "Telephone": clinic.telephone,
            "Date": str(day), "Dose": "56 mg", "Device lot number": record.device_lot,
            "Total minutes, first device to end of monitoring": str(
                int((record.discharged_at - record.started_at).total_seconds() // 60)),
            "Would have been ready to leave after (minutes)": str(record.ready_minutes),
            "Vital signs acceptable before administration": "Yes",
            "Vital signs acceptable before completion": "Yes",
            "Blood pressure before administration":
                f"{record.bp_pre_systolic}/{record.bp_pre_diastolic} mmHg",
            "Blood pressure 40 minutes after administration":
                f"{record.bp_40_systolic}/{record.bp_40_diastolic} mmHg",
            "Blood pressure before completion":
                f"{record.bp_discharge_systolic}/{record.bp_discharge_diastolic} mmHg",
            "Sedation": "Yes", "Sedation: details": record.sedation_details,
            "Dissociation": "Yes", "Dissociation: details": record.dissociation_seen_details,
            "Respiratory depression": "No",
            "Serious adverse event (hospitalisation or emergency care)": "No",
        }
        if number == 0:
            expected["Enrolled in the REMS"] = "Yes"
            expected["REMS enrolment date"] = str(patient.rems_enrolled_on)
        assert got == expected, number
    # The latest session has no lot number: listed missing, with the amendment at that field.
    latest = fill(sessions[-1], clinic)
    assert [item.label for item in latest.missing] == ["Device lot number"]
    assert latest.missing[0].fix_url.endswith("#id_device_lot")
    assert fill(sessions[0], clinic).submitted and not latest.submitted


def test_sections_follow_the_spec_order(enrolled):
    form = fill(forms_queryset().get(pk=session_on(enrolled, 1).pk), ClinicSettings.load())
    assert [s.title.split(" ")[0] for s in form.sections] == [
        "Patient", "Concomitant", "Monitoring", "Session", "During"]


def test_concomitant_medications_by_class_active_on_the_session_day(enrolled):
    today = timezone.localdate()
    patient = enrolled.patient
    MedicationFactory(patient=patient, name="zolpidem", drug_class=MedClass.SEDATIVE_HYPNOTIC,
                      started_on=today - timedelta(days=100))
    MedicationFactory(patient=patient, name="clonazepam", drug_class=MedClass.BENZODIAZEPINE,
                      started_on=today - timedelta(days=100),
                      stopped_on=today - timedelta(days=5))
    MedicationFactory(patient=patient, name="methylphenidate",
                      drug_class=MedClass.PSYCHOSTIMULANT, started_on=today)
    MedicationFactory(patient=patient, name="sertraline", drug_class=MedClass.SSRI,
                      started_on=today - timedelta(days=100))
    session = session_on(enrolled, 3)
    got = values(fill(forms_queryset().get(pk=session.pk), ClinicSettings.load()))
    assert got["Benzodiazepines"] == "No"  # stopped before the session
    assert got["Non-benzodiazepine sedative hypnotics"] == "Yes: zolpidem"
    assert got["Psychostimulants"] == "No"  # started after it
    assert got["Monoamine oxidase inhibitors (MAOIs)"] == "No"


def test_first_treatment_asks_enrolment_and_only_intranasal_enrolled_sessions_have_forms(
    enrolled,
):
    first, second = session_on(enrolled, 6), session_on(enrolled, 2)
    iv = IntranasalSessionFactory(course=enrolled, route=Route.IV, dose_mg_per_kg="0.5",
                                  started_at=timezone.now() - timedelta(days=1))
    other = IntranasalSessionFactory(course=CourseFactory())  # patient not enrolled
    ids = set(forms_queryset().values_list("pk", flat=True))
    assert ids == {first.pk, second.pk}
    assert iv.pk not in ids and other.pk not in ids
    forms = fill_all(forms_queryset())
    assert values(forms[0])["First treatment"] == "Yes"
    assert "REMS enrolment date" in values(forms[0])
    assert values(forms[1])["First treatment"] == "No"
    assert "REMS enrolment date" not in values(forms[1])


def test_due_is_seven_days_after_the_session_in_the_clinic_time_zone(enrolled, settings):
    # 02:30 UTC on 10 March is 22:30 on 9 March in New York: due on the 16th.
    session = session_on(enrolled, 1)
    session.started_at = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    assert str(due_on(session)) == "2026-03-16"


def test_queue_filters_and_colours(as_user, clinician, enrolled):
    overdue = session_on(enrolled, 9)
    amber = session_on(enrolled, 6)
    later = session_on(enrolled, 1, device_lot="")
    done = session_on(enrolled, 12)
    Submission.objects.create(session=done, submitted_on=timezone.localdate(),
                              confirmation="RC-9", recorded_by=clinician,
                              recorded_at=timezone.now())
    client = as_user(clinician)

    def shown(which):
        response = client.get(reverse("rems:queue"), {"show": which})
        assert response.status_code == 200
        return {form.session.pk: form.row_class for form in response.context["forms"]}

    assert shown("todo") == {overdue.pk: "danger", amber.pk: "warning", later.pk: ""}
    assert set(shown("overdue")) == {overdue.pk}
    assert set(shown("due")) == {amber.pk, later.pk}
    assert set(shown("incomplete")) == {later.pk}
    assert set(shown("submitted")) == {done.pk}
    assert len(shown("all")) == 4
    day = client.get(reverse("clinic:day")).content.decode()
    assert "1 overdue" in day and "2 due" in day


def test_the_queue_pages_its_forms_oldest_first(as_user, clinician, enrolled, monkeypatch):
    from rems import views

    monkeypatch.setattr(views, "PAGE", 2)
    sessions = [session_on(enrolled, days) for days in (9, 6, 4, 3, 1)]
    client = as_user(clinician)

    def page(which, number):
        response = client.get(reverse("rems:queue"), {"show": which, "page": number})
        return response, [form.session.pk for form in response.context["forms"]]

    first, shown = page("todo", 1)
    assert shown == [s.pk for s in sessions[:2]] and first.context["total"] == 5
    assert "?show=todo&amp;page=2" in first.content.decode()
    assert [page("todo", n)[1] for n in (2, 3)] == [[s.pk for s in sessions[2:4]],
                                                    [sessions[4].pk]]
    _, due = page("due", 1)
    assert due == [s.pk for s in sessions[1:3]]  # the overdue one is not due
    sessions[4].device_lot = ""
    sessions[4].save()
    assert page("incomplete", 1)[1] == [sessions[4].pk]


def test_day_sheet_rows_show_the_forms_to_submit(as_user, clinician, enrolled):
    from clinic.daysheet import REMS_OPEN, rems_forms_due

    overdue, due = session_on(enrolled, 9), session_on(enrolled, 2)
    found, counts = rems_forms_due(REMS_OPEN.rows(), {enrolled.pk}, timezone.localdate())
    assert counts == {"due": 1, "overdue": 1}
    assert [badge.state for badge in found[enrolled.pk]] == ["overdue", "due"]
    assert [badge.url for badge in found[enrolled.pk]] == [
        reverse("rems:form", args=[session.pk]) for session in (overdue, due)]


def test_recording_a_submission_checks_its_date_and_number_and_is_audited(
    as_user, clinician, enrolled,
):
    session = session_on(enrolled, 3)
    client = as_user(clinician)
    url = reverse("rems:submit", args=[session.pk])
    session_day = timezone.localdate(session.started_at)
    for data, error in [
        ({"submitted_on": str(session_day - timedelta(days=1)), "confirmation": "RC"},
         "before the session"),
        ({"submitted_on": str(timezone.localdate() + timedelta(days=1)), "confirmation": "RC"},
         "in the future"),
        ({"submitted_on": str(session_day), "confirmation": ""}, "confirmation number"),
    ]:
        response = client.post(url, data)
        assert response.status_code == 200
        assert error in response.content.decode()
    assert not Submission.objects.exists()
    response = client.post(url, {"submitted_on": str(session_day), "confirmation": "RC-77"})
    assert response.status_code == 302
    submission = Submission.objects.get(session=session)
    assert (submission.confirmation, submission.recorded_by) == ("RC-77", clinician)
    event = AuditEvent.objects.filter(action=Action.CREATE, object_type__icontains="submission")
    assert event.get().patient_id == enrolled.patient_id
    # Sent twice: not recorded twice.
    client.post(url, {"submitted_on": str(session_day), "confirmation": "RC-78"})
    assert Submission.objects.get().confirmation == "RC-77"
    # Undo needs a reason.
    undo = reverse("rems:undo", args=[session.pk])
    assert client.post(undo, {"reason": ""}).status_code == 200
    assert Submission.objects.exists()
    assert client.post(undo, {"reason": "wrong session"}).status_code == 302
    assert not Submission.objects.exists()
    cancel = AuditEvent.objects.get(action=Action.CANCEL)
    assert cancel.after == {"reason": "wrong session"}
    assert cancel.before["confirmation"] == "RC-77"


def test_an_incomplete_form_cannot_be_marked_submitted(as_user, clinician, enrolled):
    session = session_on(enrolled, 3, device_lot="")
    client = as_user(clinician)
    page = client.get(reverse("rems:form", args=[session.pk])).content.decode()
    assert 'id="rems-not-ready"' in page and "Mark submitted" not in page
    day = str(timezone.localdate(session.started_at))
    refused = client.post(reverse("rems:submit", args=[session.pk]),
                          {"submitted_on": day, "confirmation": "RC-1"})
    assert refused.status_code == 200
    assert ("The form cannot be marked submitted while it is incomplete: Device lot number is "
            "missing.") in refused.content.decode()
    assert not Submission.objects.exists()
    # Once the lot number is given, the same post records it.
    session.device_lot = "LOT-1"
    session.save()
    assert client.post(reverse("rems:submit", args=[session.pk]),
                       {"submitted_on": day, "confirmation": "RC-1"}).status_code == 302
    assert Submission.objects.get().session == session


def test_print_one_form_per_page(as_user, clinician, enrolled):
    first, second = session_on(enrolled, 3), session_on(enrolled, 1, device_lot="")
    client = as_user(clinician)
    response = client.get(reverse("rems:print"), {"form": [first.pk, second.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(response.content)).pages
    assert len(pages) == 2
    text = pages[1].extract_text()
    assert "Patient monitoring form" in text and "Missing" in text
    one = client.get(reverse("rems:pdf", args=[first.pk]))
    text = PdfReader(io.BytesIO(one.content)).pages[0].extract_text()
    assert "LOT-24A01" in text
    order = [text.index(title) for title in
             ("1. Patient", "2. Concomitant", "3. Monitoring", "4. Session", "5. During")]
    assert order == sorted(order)


def test_admins_export_a_period_with_submission_status(as_user, clinic_admin, clinician,
                                                       enrolled):
    submitted, open_ = session_on(enrolled, 10), session_on(enrolled, 2)
    session_on(enrolled, 19)  # outside the period
    Submission.objects.create(session=submitted, submitted_on=timezone.localdate(),
                              confirmation="RC-5", recorded_by=clinician,
                              recorded_at=timezone.now())
    today = timezone.localdate()
    response = as_user(clinic_admin).get(reverse("rems:export"), {
        "start": str(today - timedelta(days=14)), "end": str(today)})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(int(r["session"]), r["status"], r["confirmation number"]) for r in rows] == [
        (submitted.pk, "submitted", "RC-5"), (open_.pk, "due", "")]


def test_admins_read_the_form_without_the_submission_buttons(as_user, clinic_admin, enrolled):
    session = session_on(enrolled, 3)
    body = as_user(clinic_admin).get(reverse("rems:form", args=[session.pk])).content.decode()
    assert "LOT-24A01" in body and "Mark submitted" not in body


def _intranasal_post(**changes) -> dict:
    start = timezone.now() - timedelta(hours=3)
    local = lambda moment: timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    data = {
        "started_at": local(start), "route": "intranasal", "dose_mg": "84",
        "dose_mg_per_kg": "", "weight_basis": "", "infusion_minutes": "",
        "bp_pre_systolic": "128", "bp_pre_diastolic": "82", "hr_pre": "70",
        "bp_discharge_systolic": "125", "bp_discharge_diastolic": "80", "spo2_min": "96",
        "dissociation": "mild", "discharged_at": local(start + timedelta(minutes=125)),
        "status": "completed", "stop_reason": "", "note": "",
        "ae-TOTAL_FORMS": "0", "ae-INITIAL_FORMS": "0", "ae-MIN_NUM_FORMS": "0",
        "ae-MAX_NUM_FORMS": "10", "submission_token": "0b5c2a4e-7f1d-4c39-9a57-3e2f8d6b1c0b",
        "device_lot": "AB-12", "bp_40_systolic": "140", "bp_40_diastolic": "88",
        "ready_minutes": "100", "vitals_ok_before": "true", "vitals_ok_completion": "true",
        "sedation": "false", "sedation_details": "", "dissociation_seen": "true",
        "dissociation_seen_details": "mild", "respiratory_depression": "false",
        "respiratory_depression_details": "", "serious_adverse_event": "false",
        "serious_adverse_event_details": "",
    }
    return {**data, **changes}


def test_the_session_form_keeps_the_intranasal_answers(as_user, clinician, enrolled):
    client = as_user(clinician)
    url = reverse("courses:session-new", args=[enrolled.pk])
    page = client.get(url).content.decode()
    assert 'data-rems-required="1"' in page and 'class="intranasal-only' in page
    assert 'id="rems-not-enrolled"' not in page
    response = client.post(url, _intranasal_post())
    assert response.status_code == 302, response.context["form"].errors
    session = TreatmentSession.objects.get()
    assert (session.device_lot, session.bp_40_systolic, session.ready_minutes) == (
        "AB-12", 140, 100)
    assert session.dissociation_seen is True and session.sedation is False
    form = fill(forms_queryset().get(pk=session.pk), ClinicSettings.load())
    assert form.complete, form.missing


@pytest.mark.parametrize("changes,field,words", [
    ({"device_lot": "AB 12!"}, "device_lot", "1–20 letters"),
    ({"device_lot": "A" * 21}, "device_lot", "at most 20"),
    ({"ready_minutes": "126"}, "ready_minutes", "after the end of monitoring"),
    ({"sedation": "true"}, "sedation_details", "details"),
    ({"bp_40_diastolic": ""}, "bp_40_systolic", "both"),
    # The REMS yes/no for dissociation agrees with the session's own dissociation.
    ({"dissociation_seen": "false"}, "dissociation_seen",
     "The session's dissociation is mild: answer Yes, with what was seen, or correct"),
    ({"dissociation": "none"}, "dissociation_seen",
     "The session's dissociation is none: answer No, or correct"),
])
def test_the_session_form_refuses_bad_intranasal_answers(as_user, clinician, enrolled,
                                                         changes, field, words):
    response = as_user(clinician).post(
        reverse("courses:session-new", args=[enrolled.pk]), _intranasal_post(**changes))
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert not TreatmentSession.objects.exists()


def test_the_session_form_warns_when_no_rems_enrolment_is_recorded(as_user, clinician, enrolled):
    """Intranasal esketamine for a patient with no REMS enrolment makes no monitoring form:
    the REMS part of the session form says so, with the way to record it."""
    patient = enrolled.patient
    patient.rems_enrolled_on = None
    patient.save()
    page = as_user(clinician).get(reverse("courses:session-new", args=[enrolled.pk]))
    warning = page.content.decode().split('id="rems-not-enrolled"')[1].split("</div>")[0]
    assert "no monitoring form will be made" in warning
    assert f'{reverse("patients:edit", args=[patient.pk])}#id_rems_enrolled_on' in warning


def test_the_session_page_shows_its_rems_answers_and_opens_its_form(as_user, clinician,
                                                                     enrolled):
    session = session_on(enrolled, 2, sedation=True, sedation_details="drowsy at 30 minutes")
    client = as_user(clinician)
    page = client.get(reverse("courses:session-detail", args=[session.pk])).content.decode()
    part = page.split('id="session-rems"')[1].split("</section>")[0]
    assert "LOT-24A01" in part and "142/88" in part and "90 minutes" in part
    assert "sedation yes (drowsy at 30 minutes); dissociation yes (mild" in part
    form_url = reverse("rems:form", args=[session.pk])
    assert f'href="{form_url}"' in part and client.get(form_url).status_code == 200
    # Not enrolled: the answers stay, with no form to open.
    enrolled.patient.rems_enrolled_on = None
    enrolled.patient.save()
    page = client.get(reverse("courses:session-detail", args=[session.pk])).content.decode()
    part = page.split('id="session-rems"')[1].split("</section>")[0]
    assert "LOT-24A01" in part and form_url not in part and "no monitoring form" in part


def test_other_routes_keep_no_intranasal_answers(as_user, clinician, enrolled):
    from tests.factories import WeightFactory

    WeightFactory(patient=enrolled.patient, measured_on=enrolled.started_on)
    response = as_user(clinician).post(
        reverse("courses:session-new", args=[enrolled.pk]),
        _intranasal_post(route="iv", dose_mg="", dose_mg_per_kg="0.5", weight_basis="actual",
                         infusion_minutes="40"))
    assert response.status_code == 302, response.context["form"].errors
    session = TreatmentSession.objects.get()
    assert (session.device_lot, session.bp_40_systolic, session.dissociation_seen) == (
        "", None, None)
    assert not forms_queryset().exists()


def test_a_short_monitoring_is_allowed_and_shown_below_120(enrolled):
    session = session_on(enrolled, 2, ready_minutes=60)
    session.discharged_at = session.started_at + timedelta(minutes=90)
    session.save()
    got = values(fill(forms_queryset().get(pk=session.pk), ClinicSettings.load()))
    assert got["Total minutes, first device to end of monitoring"] == "90 (below 120)"


def test_a_voided_session_has_no_form_and_counts_for_nothing(clinician, enrolled):
    from courses.actions import void_session

    first, second = session_on(enrolled, 6), session_on(enrolled, 2)
    void_session(clinician, first, reason="entered on the wrong patient",
                 read_version=first.version)
    forms = fill_all(forms_queryset())
    assert [form.session.pk for form in forms] == [second.pk]
    assert values(forms[0])["First treatment"] == "Yes"  # the voided one was not a treatment


def test_the_lot_number_is_given_through_the_session_amendment(as_user, clinician, enrolled):
    session = session_on(enrolled, 2, device_lot="")
    form = fill(forms_queryset().get(pk=session.pk), ClinicSettings.load())
    url = form.missing[0].fix_url
    assert url == reverse("courses:session-amend", args=[session.pk]) + "#id_device_lot"
    client = as_user(clinician)
    page = client.get(url)
    assert page.status_code == 200 and 'id="id_device_lot"' in page.content.decode()
    local = lambda moment: timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    post = _intranasal_post(
        started_at=local(session.started_at), discharged_at=local(session.discharged_at),
        dose_mg="56", hr_pre="", bp_pre_diastolic="80", bp_discharge_systolic="126",
        bp_discharge_diastolic="78", bp_40_systolic="142", bp_40_diastolic="88",
        ready_minutes="90", dissociation_seen_details="mild, resolved by 60 minutes",
        dissociation="mild", device_lot="LOT-77B", reason="lot number from the box",
        version=str(session.version))
    del post["submission_token"]
    response = client.post(url.split("#")[0], post)
    assert response.status_code == 302, response.context["form"].errors
    session.refresh_from_db()
    assert session.device_lot == "LOT-77B"
    assert "device_lot" in {a.field for a in session.amendments.all()}, [
        (a.field, a.before, a.after) for a in session.amendments.all()]
    assert fill(forms_queryset().get(pk=session.pk), ClinicSettings.load()).complete


def test_the_amendment_shows_the_saved_yes_no_answers(as_user, clinician, enrolled):
    session = session_on(enrolled, 2, sedation=True, sedation_details="drowsy")
    page = as_user(clinician).get(reverse("courses:session-amend", args=[session.pk]))
    body = page.content.decode()
    assert re.search(r'name="sedation"[^>]*>\s*<option value="unknown">—</option>\s*'
                     r'<option value="true" selected>Yes</option>', body)
    assert re.search(r'name="respiratory_depression"[^>]*>.*?'
                     r'<option value="false" selected>No</option>', body, re.S)
