"""The audit trail: written with the change, chained by hash, and checked."""

import pytest
from django.db import IntegrityError, connection, transaction

from audit.log import _digest, record, verify_chain
from audit.models import Action, AppendOnlyError, AuditEvent
from patients import actions
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def tamper(sql: str, params: list) -> None:
    """Change the table directly, as someone with database access could; the ORM refuses."""
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=AuditEvent._meta.db_table), params)


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
    tamper("UPDATE {table} SET summary = %s WHERE id = %s", ["nothing to see", second.pk])
    problem = verify_chain()
    assert problem.event_id == second.pk and "altered" in str(problem)


def test_verify_names_the_row_after_a_deleted_one(clinician):
    for n in range(3):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    first, second, third = AuditEvent.objects.order_by("id")
    tamper("DELETE FROM {table} WHERE id = %s", [second.pk])
    problem = verify_chain()
    assert problem.event_id == third.pk and "removed" in str(problem)


def test_verify_notices_rows_removed_from_the_end(clinician):
    for n in range(2):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    last = AuditEvent.objects.order_by("-id").first()
    tamper("DELETE FROM {table} WHERE id = %s", [last.pk])
    assert "removed" in str(verify_chain())


def test_verify_notices_a_row_altered_and_rehashed(clinician):
    # Recomputing the altered row's own hash is not enough: the next row still names the old one.
    for n in range(3):
        record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
    first, second, third = AuditEvent.objects.order_by("id")
    second.summary = "nothing to see"
    tamper("UPDATE {table} SET summary = %s, hash = %s WHERE id = %s",
           [second.summary, _digest(second), second.pk])
    problem = verify_chain()
    assert problem.event_id == third.pk and "altered" in str(problem)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: AuditEvent.objects.update(summary="x"), id="manager-update"),
        pytest.param(lambda: AuditEvent.objects.filter(pk__gt=0).update(summary="x"),
                     id="queryset-update"),
        pytest.param(lambda: AuditEvent.objects.all().delete(), id="queryset-delete"),
        pytest.param(lambda: AuditEvent.objects.filter(action=Action.VIEW).delete(),
                     id="filtered-delete"),
        pytest.param(lambda: AuditEvent.objects.get().delete(), id="instance-delete"),
        pytest.param(
            lambda: AuditEvent.objects.bulk_update(
                [AuditEvent.objects.get()], ["summary"]
            ),
            id="bulk-update",
        ),
        pytest.param(
            lambda: AuditEvent.objects.update_or_create(
                pk=AuditEvent.objects.get().pk, defaults={"summary": "x"}
            ),
            id="update-or-create",
        ),
    ],
)
def test_the_orm_refuses_to_change_or_remove_audit_rows(clinician, change):
    record(clinician, Action.VIEW, PatientFactory(), summary="view")
    # In its own savepoint: bulk_update() and update_or_create() run in a transaction.
    with pytest.raises(AppendOnlyError, match="append-only"), transaction.atomic():
        change()
    assert AuditEvent.objects.get().summary == "view"
    assert verify_chain() is None


@pytest.mark.parametrize("save_kwargs", [{}, {"update_fields": ["summary"]}])
def test_a_saved_audit_row_cannot_be_saved_again(clinician, save_kwargs):
    event = record(clinician, Action.VIEW, PatientFactory(), summary="view")
    event.summary = "nothing to see"
    with pytest.raises(AppendOnlyError, match="append-only"):
        event.save(**save_kwargs)
    event.refresh_from_db()
    assert event.summary == "view"
    assert verify_chain() is None


def test_a_new_row_with_an_existing_id_does_not_overwrite_it(clinician):
    event = record(clinician, Action.VIEW, PatientFactory(), summary="view")
    impostor = AuditEvent(pk=event.pk, at=event.at, action=Action.VIEW, summary="forged",
                          prev_hash=event.prev_hash, hash="f" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        impostor.save()
    event.refresh_from_db()
    assert event.summary == "view"
    assert verify_chain() is None


def test_a_new_row_cannot_be_forced_into_an_update(clinician):
    event = record(clinician, Action.VIEW, PatientFactory(), summary="view")
    impostor = AuditEvent(pk=event.pk, at=event.at, action=Action.VIEW, summary="forged",
                          prev_hash=event.prev_hash, hash="f" * 64)
    with pytest.raises(AppendOnlyError):
        impostor.save(force_update=True)
    assert AuditEvent.objects.get().summary == "view"


def test_failed_logins_are_audited_without_the_password(client, clinician):
    client.post("/accounts/login/", {"username": clinician.username, "password": "wrong-guess"})
    event = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert event.summary == clinician.username
    assert "wrong-guess" not in str(event.before) + str(event.after) + event.summary
