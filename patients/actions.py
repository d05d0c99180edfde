"""State changes to a patient's record. Each is atomic and writes its audit row (STYLE 3), last
(audit.log.audited): after the patient's courses are re-evaluated, just before the commit."""

from datetime import date

from django.db.models import F
from django.utils import timezone

from audit.log import audited, record, snapshot
from audit.models import Action
from clinical.catalogue import classify
from courses.evaluation import refresh_patient
from patients.models import Medication, Patient, PriorTrial, WeightRecord


def record_view(user, patient: Patient, what: str = "record") -> None:
    """Viewing a patient's record is itself audited (HIPAA audit controls)."""
    record(user, Action.VIEW, patient, patient_id=patient.pk, summary=f"viewed {what}")


@audited()
def create_patient(user, patient: Patient, weight_kg=None, weighed_on: date | None = None):
    patient.save()
    record(user, Action.CREATE, patient, patient_id=patient.pk, after=snapshot(patient))
    if weight_kg is not None:
        record_weight(user, patient, weight_kg, weighed_on or timezone.localdate())
    return patient


class StaleEdit(Exception):
    """Someone saved the record after this edit began: saving would silently undo their work."""


@audited()
def update_patient(user, patient: Patient, before: dict, changed: list[str],
                   read_version: int | None = None) -> Patient:
    """Save the changed fields, but only over the version the form was read at."""
    if not changed:
        return patient
    current = read_version if read_version is not None else patient.version
    if not Patient.objects.filter(pk=patient.pk, version=current).update(
        version=F("version") + 1
    ):
        raise StaleEdit
    patient.version = current + 1
    patient.save(update_fields=[*changed, "updated_at"])
    record(
        user, Action.UPDATE, patient, patient_id=patient.pk,
        before={k: before[k] for k in changed}, after=snapshot(patient, changed),
    )
    refresh_patient(patient)
    return patient


@audited()
def record_weight(user, patient: Patient, weight_kg, measured_on: date) -> WeightRecord:
    """A new weight for the day, or a corrected one for a day already weighed."""
    existing = WeightRecord.objects.filter(patient=patient, measured_on=measured_on).first()
    if existing:
        before = snapshot(existing)
        existing.weight_kg = weight_kg
        existing.recorded_by = user
        existing.save(update_fields=["weight_kg", "recorded_by"])
        record(user, Action.UPDATE, existing, patient_id=patient.pk, before=before,
               after=snapshot(existing))
        refresh_patient(patient)
        return existing
    weight = WeightRecord.objects.create(
        patient=patient, measured_on=measured_on, weight_kg=weight_kg, recorded_by=user
    )
    record(user, Action.CREATE, weight, patient_id=patient.pk, after=snapshot(weight))
    refresh_patient(patient)
    return weight


@audited()
def add_prior_trial(user, trial: PriorTrial) -> PriorTrial:
    trial.recorded_by = user
    trial.save()
    record(user, Action.CREATE, trial, patient_id=trial.patient_id, after=snapshot(trial))
    refresh_patient(trial.patient)
    return trial


@audited()
def add_medication(user, medication: Medication) -> Medication:
    """Save a medication; its class comes from the catalogue unless the clinician chose one."""
    if not medication.drug_class:
        medication.drug_class = classify(medication.name)
    medication.recorded_by = user
    medication.save()
    record(user, Action.CREATE, medication, patient_id=medication.patient_id,
           after=snapshot(medication))
    refresh_patient(medication.patient)
    return medication


@audited()
def stop_medication(user, medication: Medication, stopped_on: date, reason: str) -> Medication:
    """Stopping keeps the medication in the history with its stop date."""
    before = snapshot(medication, ["stopped_on", "stop_reason"])
    medication.stopped_on = stopped_on
    medication.stop_reason = reason
    medication.save(update_fields=["stopped_on", "stop_reason"])
    record(user, Action.STOP, medication, patient_id=medication.patient_id, before=before,
           after=snapshot(medication, ["stopped_on", "stop_reason"]))
    refresh_patient(medication.patient)
    return medication


@audited()
def classify_medication(user, medication: Medication, drug_class: str) -> Medication:
    before = snapshot(medication, ["drug_class"])
    medication.drug_class = drug_class
    medication.save(update_fields=["drug_class"])
    record(user, Action.UPDATE, medication, patient_id=medication.patient_id, before=before,
           after=snapshot(medication, ["drug_class"]))
    refresh_patient(medication.patient)
    return medication
