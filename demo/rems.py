"""The demo clinic's Spravato REMS forms (SPEC §8): the esketamine patient DEMO-007 is enrolled,
the clinic has its healthcare setting and the clinician a telephone, and the patient's forms
are in every state: submitted, overdue, due, due within 2 days, incomplete (a lot number
missing on the latest session)."""

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from audit.log import record, snapshot
from audit.models import Action
from clinic.models import ClinicSettings
from clinical.vocab import Route
from courses.models import TreatmentSession
from patients.models import Patient
from rems import actions

ENROLLED = "DEMO-007"
SETTING = {
    "setting_name": "KetaCare Demo Clinic", "address": "100 Example Street, Suite 2",
    "city": "Springfield", "state": "IL", "zip_code": "62701", "telephone": "(217) 555-0100",
}


def _answers(session: TreatmentSession, lot: str) -> dict:
    return {
        "device_lot": lot, "bp_40_systolic": 138, "bp_40_diastolic": 86, "ready_minutes": 95,
        "vitals_ok_before": True, "vitals_ok_completion": True,
        "sedation": True, "sedation_details": "Drowsy, rousable, 20 minutes",
        "dissociation_seen": True, "dissociation_seen_details": "Mild, resolved by 60 minutes",
        "respiratory_depression": False, "serious_adverse_event": False,
    }


@transaction.atomic
def load_demo_rems(users: dict, today: date) -> None:
    patient = Patient.objects.filter(record_number=ENROLLED, rems_enrolled_on__isnull=True).first()
    if patient is None:
        return
    clinician = users["clinician"]
    settings = ClinicSettings.load()
    if not settings.setting_name:
        for name, value in SETTING.items():
            setattr(settings, name, value)
        settings.save()
    if not clinician.telephone:
        clinician.telephone = "(217) 555-0142"
        clinician.save(update_fields=["telephone"])
    sessions = list(TreatmentSession.objects.filter(
        course__patient=patient, route=Route.INTRANASAL).order_by("started_at"))
    before = snapshot(patient, ["rems_enrolled_on", "rems_number"])
    patient.rems_enrolled_on = timezone.localdate(sessions[0].started_at) - timedelta(days=2)
    patient.rems_number = "RP-4471902"
    patient.save(update_fields=["rems_enrolled_on", "rems_number"])
    record(clinician, Action.UPDATE, patient, patient_id=patient.pk, before=before,
           after=snapshot(patient, ["rems_enrolled_on", "rems_number"]),
           summary="demo: REMS enrolment")
    for number, session in enumerate(sessions):
        latest = number == len(sessions) - 1
        answers = _answers(session, "" if latest else f"LOT-24A{number:02d}")
        TreatmentSession.objects.filter(pk=session.pk).update(**answers)
        record(clinician, Action.CORRECT, session, patient_id=patient.pk, after=answers,
               summary="demo: REMS monitoring answers")
        day = timezone.localdate(session.started_at)
        if (today - day).days >= 10:  # the older ones were submitted on time
            actions.record_submission(clinician, session, day + timedelta(days=2),
                                      f"RC{day:%y%m%d}{number:02d}")
