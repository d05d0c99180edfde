"""Record numbers: letters, digits, - _ and . only, at most 32 characters. Numbers saved before
the rule are listed and audited by the migration, never rewritten, and an admin fixes them with
``manage.py record_numbers`` (audited)."""

import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from audit.log import verify_chain
from audit.models import Action, AuditEvent
from patients.models import Patient
from patients.record_numbers import RULE
from tests.factories import PatientFactory
from tests.test_patients import NEW_PATIENT

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("number", [
    "MRN\n1", "MRN\r\n1", 'MRN"1', "../../X", "/X", "MRN 1", "MRÑ1", "A;B", "A/B", "M" * 33,
    "<b>1</b>",
])
def test_the_patient_form_refuses_a_record_number_outside_the_rule(as_user, clinician, number):
    response = as_user(clinician).post(reverse("patients:new"),
                                       {**NEW_PATIENT, "record_number": number})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["record_number"])
    assert "letters, digits, hyphens (-), underscores (_) and full stops (.)" in errors or (
        "at most 32 characters" in errors)
    assert not Patient.objects.exists()


@pytest.mark.parametrize("number", ["MRN-00.1_a", "12345", "M" * 32, "  mrn-7  "])
def test_the_patient_form_accepts_a_record_number_in_the_rule(as_user, clinician, number):
    response = as_user(clinician).post(reverse("patients:new"),
                                       {**NEW_PATIENT, "record_number": number})
    assert response.status_code == 302
    assert Patient.objects.get().record_number == number.strip().upper()


def run_migration_check():
    migration = importlib.import_module("patients.migrations.0004_record_number_rule")
    migration.list_invalid_record_numbers(apps, SimpleNamespace(connection=connection))


def test_the_migration_lists_and_audits_bad_numbers_and_rewrites_none(capsys):
    good = PatientFactory(record_number="MRN-1")
    bad = [PatientFactory(), PatientFactory()]
    Patient.objects.filter(pk=bad[0].pk).update(record_number='A"\nB')
    Patient.objects.filter(pk=bad[1].pk).update(record_number="../X")
    run_migration_check()
    out = capsys.readouterr().out
    assert "2 record number(s) break the new rule" in out
    assert f"{bad[0].pk}, {bad[1].pk}" in out and "Nothing was changed" in out
    assert 'A"\nB' not in out  # ids only in the migration's output
    assert sorted(Patient.objects.values_list("record_number", flat=True)) == sorted(
        ["MRN-1", 'A"\nB', "../X"])
    flagged = AuditEvent.objects.filter(action=Action.FLAG).order_by("pk")
    assert [(e.patient_id, e.before) for e in flagged] == [
        (bad[0].pk, {"record_number": 'A"\nB'}), (bad[1].pk, {"record_number": "../X"})]
    assert flagged[0].actor_name == "migration patients.0004"
    assert not AuditEvent.objects.filter(patient_id=good.pk).exists()
    assert verify_chain() is None


def test_the_migration_is_silent_when_every_number_is_good(capsys):
    PatientFactory(record_number="MRN-1")
    run_migration_check()
    assert capsys.readouterr().out == "" and not AuditEvent.objects.exists()


def command(*args) -> str:
    out = StringIO()
    call_command("record_numbers", *args, stdout=out)
    return out.getvalue()


def test_an_admin_lists_and_fixes_a_bad_number_and_it_is_audited(clinic_admin):
    patient = PatientFactory()
    Patient.objects.filter(pk=patient.pk).update(record_number="A\nB")
    listed = command()
    assert f"patient {patient.pk}: 'A\\nB'" in listed and "1 record number(s)" in listed
    out = command("--fix", str(patient.pk), "mrn-ab", "--by", clinic_admin.username)
    assert "record number is now MRN-AB" in out
    patient.refresh_from_db()
    assert patient.record_number == "MRN-AB" and patient.version == 2
    event = AuditEvent.objects.get(action=Action.UPDATE)
    assert (event.actor, event.patient_id) == (clinic_admin, patient.pk)
    assert (event.before, event.after) == ({"record_number": "A\nB"},
                                           {"record_number": "MRN-AB"})
    assert "0 record number(s)" in command()


@pytest.mark.parametrize("args,words", [
    (["1", "MRN 2"], RULE), (["1", "M" * 33], RULE), (["999", "MRN-2"], "no patient 999"),
    (["1", "MRN-TAKEN"], "already has record number"),
])
def test_a_fix_is_refused_in_plain_words(clinic_admin, args, words):
    patient = PatientFactory()
    PatientFactory(record_number="MRN-TAKEN")
    args = [str(patient.pk) if a == "1" else a for a in args]
    with pytest.raises(CommandError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        command("--fix", *args, "--by", clinic_admin.username)


def test_only_an_active_clinic_admin_may_fix(clinician):
    patient = PatientFactory()
    with pytest.raises(CommandError, match="active clinic admin"):
        command("--fix", str(patient.pk), "MRN-2", "--by", clinician.username)
