"""The audit trail: written with the change, chained by hash, and checked."""

import contextlib
import queue
import threading
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import log
from audit.log import GENESIS, _digest, record, verify_chain
from audit.models import Action, AppendOnlyError, AuditEvent, ChainHead
from patients import actions
from tests.conftest import in_thread, result, sent
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


# How the row is written: one statement on PostgreSQL, the Python path elsewhere (and as fallback)

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the one-statement write and its row lock are PostgreSQL's; other databases use "
    "the Python path, which the other tests cover",
)


@contextlib.contextmanager
def python_path():
    """Within it, record() writes through the Python path on any database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log, "_append_in_one_statement", lambda event: False)
        yield


def statements(queries) -> list[str]:
    """The statements sent, leaving out the test transaction's savepoints."""
    return sent(queries)


def assert_matches_its_row(event: AuditEvent) -> None:
    """What record() returned is what was stored, and its hash is the Python one."""
    assert not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    for field in AuditEvent._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(event, field.attname), field.name
    assert _digest(stored) == stored.hash == event.hash


def test_a_fresh_database_gets_its_chain_head_on_the_first_record(clinician):
    patient = PatientFactory()
    assert not ChainHead.objects.exists()
    with CaptureQueriesContext(connection) as queries:
        event = record(clinician, Action.VIEW, patient, summary="first")
    assert event.prev_hash == GENESIS
    head = ChainHead.objects.get()
    assert (head.last_id, head.last_hash) == (event.pk, event.hash)
    assert_matches_its_row(event)
    if connection.vendor == "postgresql":
        # The one statement found no head and wrote nothing; the Python path created it.
        sent = statements(queries)
        assert "FOR UPDATE" in sent[0] and len(sent) > 1
    second = record(clinician, Action.VIEW, summary="second")
    assert second.prev_hash == event.hash
    assert verify_chain() is None


@on_postgresql
def test_a_record_is_one_statement_on_postgresql(clinician):
    record(clinician, Action.VIEW, summary="creates the chain head")
    with CaptureQueriesContext(connection) as queries:
        event = record(clinician, Action.VIEW, PatientFactory.build(pk=7), patient_id=7,
                       summary="view", after={"weight_kg": "70.5"})
    assert len(statements(queries)) == 1
    assert_matches_its_row(event)
    assert verify_chain() is None


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_record_is_exactly_one_statement(clinician):
    record(clinician, Action.VIEW, summary="creates the chain head")
    assert connection.get_autocommit() and not connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        event = record(clinician, Action.VIEW, summary="view")
    assert len(queries) == 1  # no BEGIN, SAVEPOINT or COMMIT: autocommit makes it atomic
    assert_matches_its_row(event)
    assert ChainHead.objects.get().last_id == event.pk
    assert verify_chain() is None


def test_a_record_rolls_back_with_the_callers_transaction(clinician):
    kept = record(clinician, Action.VIEW, summary="kept")  # the chain head exists from here
    with pytest.raises(RuntimeError), transaction.atomic():
        record(clinician, Action.VIEW, summary="rolled back")
        raise RuntimeError("the action failed after auditing")
    assert list(AuditEvent.objects.values_list("summary", flat=True)) == ["kept"]
    assert ChainHead.objects.get().last_id == kept.pk
    after = record(clinician, Action.VIEW, summary="after")
    assert after.prev_hash == kept.hash
    assert verify_chain() is None


def test_rows_written_either_way_chain_and_verify(clinician):
    events = []
    for n in range(6):
        if n % 3 == 1:
            with python_path():
                events.append(record(clinician, Action.VIEW, summary=f"python {n}"))
        else:
            patient = PatientFactory()
            with CaptureQueriesContext(connection) as queries:
                events.append(record(clinician, Action.UPDATE, patient, summary=f"{n}",
                                     before={"n": n}, after={"n": n + 1, "note": "é"}))
            if connection.vendor == "postgresql" and n > 0:  # the first creates the head
                assert len(statements(queries)) == 1
    assert [e.prev_hash for e in events] == [GENESIS] + [e.hash for e in events[:-1]]
    for event in events:
        assert_matches_its_row(event)
    assert verify_chain() is None


AWKWARD = [
    pytest.param("f" * 64, None, None, id="hash-like-summary"),
    pytest.param(GENESIS, {"prev_hash": GENESIS}, {"prev_hash": "a" * 64}, id="genesis-text"),
    pytest.param('say "hello" \\ C:\\path\\ \\u00e9 \\" \'single\'', {"q": '"\\'},
                 {"k\"ey\\": "v\\\"al"}, id="quotes-backslashes"),
    pytest.param("Renée, 日本語, Ωmega, 🚑, \u2028 and \u00a0", {"name": "José 日本"},
                 {"name": "Zoë", "emoji": "🧪"}, id="non-ascii"),
    pytest.param("tab\there\nnewline\r\x01 control", {"s": "\x1f\n"}, None, id="controls"),
    pytest.param("%s %(x)s %% $1 ?", {"sql": "'); DROP TABLE x; --"}, {"pct": "100%"},
                 id="placeholders-and-sql"),
    pytest.param("nested", {"a": {"b": {"c": [1, 2.5, None, True, {"d": "é"}]}}, "z": []},
                 {"a": {"b": {"c": [1, 3, None, False]}}, "": {"": ""}}, id="nested"),
    pytest.param("values", {"dose": Decimal("0.50"), "big": 2**62, "neg": -1.25e-5},
                 {"empty": {}, "list": [[], [{}]], "null": None}, id="numbers-and-empties"),
]


@pytest.mark.parametrize("summary, before, after", AWKWARD)
def test_awkward_content_verifies(clinician, summary, before, after):
    record(clinician, Action.VIEW, summary="first")
    event = record(clinician, Action.UPDATE, PatientFactory(), summary=summary, before=before,
                   after=after)
    record(clinician, Action.VIEW, summary="last")
    assert_matches_its_row(event)
    assert verify_chain() is None


@pytest.mark.parametrize("where", ["summary", "before", "after"])
def test_content_holding_the_marker_is_written_the_python_way(clinician, monkeypatch, where):
    record(clinician, Action.VIEW, summary="first")
    marker = "ab" * 32
    monkeypatch.setattr(log, "secrets", SimpleNamespace(token_hex=lambda nbytes: marker))
    content = {"summary": "", "before": None, "after": None}
    content[where] = f"x{marker}y" if where == "summary" else {"h": marker}
    with CaptureQueriesContext(connection) as queries:
        event = record(clinician, Action.VIEW, **content)
    assert_matches_its_row(event)
    assert verify_chain() is None
    # The one statement was not even tried: the marker could have been replaced in the wrong
    # place. (Its replace() is only ever given a payload with the marker in one place.)
    assert not any("WITH head" in sql for sql in statements(queries))


def test_record_returns_a_saved_event_with_its_fields(clinician):
    patient = PatientFactory()
    event = record(clinician, Action.VIEW, patient, patient_id=patient.pk, summary="x" * 300)
    assert event.pk and event.hash == _digest(event) and event.prev_hash == GENESIS
    assert (event.actor, event.actor_name, event.object_type, event.object_id) == (
        clinician, clinician.username, "patients.Patient", str(patient.pk)
    )
    assert event.summary == "x" * 255
    assert_matches_its_row(event)


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_writer_commits", [True, False], ids=["commits", "rolls-back"])
def test_a_writer_waiting_for_the_lock_chains_to_what_was_committed(clinician,
                                                                    first_writer_commits):
    before = record(clinician, Action.VIEW, summary="before")
    pids = queue.Queue()

    def second_writer():
        connection.ensure_connection()
        pids.put(connection.connection.info.backend_pid)
        return record(None, Action.VIEW, object_type="tests.Thing", summary="second")

    failure = contextlib.nullcontext() if first_writer_commits else pytest.raises(RuntimeError)
    with failure, transaction.atomic():
        first = record(clinician, Action.VIEW, summary="first")
        thread, outcome = in_thread(second_writer)
        pid = pids.get(timeout=10)
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while True:  # until the second writer waits for the chain head this one holds
                cursor.execute("SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [pid])
                if cursor.fetchone()[0]:
                    break
                assert time.monotonic() < deadline, "the second writer never waited"
                time.sleep(0.01)
        if not first_writer_commits:
            raise RuntimeError("the first writer's action failed")
    second = result(thread, outcome)
    assert second.prev_hash == (first.hash if first_writer_commits else before.hash)
    assert AuditEvent.objects.count() == (3 if first_writer_commits else 2)
    assert ChainHead.objects.get().last_id == second.pk
    assert_matches_its_row(second)
    assert verify_chain() is None


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_intact_chain(clinician):
    record(clinician, Action.VIEW, summary="creates the chain head")
    writers, per_writer = 8, 25
    start = threading.Barrier(writers)

    def write(n: int) -> list[int]:
        start.wait(timeout=10)
        ids = []
        for i in range(per_writer):
            if i % 5 == 4:  # some inside a transaction with other work, as actions do
                with transaction.atomic():
                    ids.append(record(None, Action.UPDATE, object_type="tests.Thing",
                                      object_id=f"{n}-{i}", after={"n": n, "i": i}).pk)
                    AuditEvent.objects.filter(pk=ids[-1]).exists()
            else:
                ids.append(record(None, Action.VIEW, object_type="tests.Thing",
                                  object_id=f"{n}-{i}", summary=f"writer {n} é").pk)
        return ids

    threads = [in_thread(write, n) for n in range(writers)]
    ids = [pk for thread, outcome in threads for pk in result(thread, outcome, timeout=60)]
    assert len(set(ids)) == writers * per_writer
    assert AuditEvent.objects.count() == writers * per_writer + 1
    assert ChainHead.objects.get().last_id == AuditEvent.objects.order_by("id").last().pk
    assert verify_chain() is None
