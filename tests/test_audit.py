"""The audit trail: written with the change, chained by hash, and checked."""

import pytest
from django.db import transaction

from audit.log import record, verify_chain
from audit.models import Action, AuditEvent
from patients import actions
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_an_audit_row_is_rolled_back_with_the_change(clinician):
    patient = PatientFactory.build()
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.create_patient(clinician, patient)
        raise RuntimeError("the request failed after the action")
    assert not AuditEvent.objects.exists()


def test_rows_chain_and_verify(clinician):
    for n in range(3):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    events = list(AuditEvent.objects.order_by("id"))
    assert events[0].prev_hash == "0" * 64
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert verify_chain() is None


def test_verify_names_the_first_altered_row(clinician):
    for n in range(3):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    second = AuditEvent.objects.order_by("id")[1]
    AuditEvent.objects.filter(pk=second.pk).update(summary="nothing to see")
    problem = verify_chain()
    assert problem.event_id == second.pk and "altered" in str(problem)


def test_verify_names_the_row_after_a_deleted_one(clinician):
    for n in range(3):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    first, second, third = AuditEvent.objects.order_by("id")
    second.delete()
    problem = verify_chain()
    assert problem.event_id == third.pk and "removed" in str(problem)


def test_verify_notices_rows_removed_from_the_end(clinician):
    for n in range(2):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    AuditEvent.objects.order_by("-id").first().delete()
    assert "removed" in str(verify_chain())


def test_failed_logins_are_audited_without_the_password(client, clinician):
    client.post("/accounts/login/", {"username": clinician.username, "password": "wrong-guess"})
    event = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert event.summary == clinician.username
    assert "wrong-guess" not in str(event.before) + str(event.after) + event.summary
