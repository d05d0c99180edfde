"""Writing and verifying the audit trail.

Every action calls :func:`record` inside its own transaction, so the audit row and the change it
describes are saved together or not at all. Each row's hash covers its content and the previous
row's hash; :func:`verify_chain` recomputes them and names the first row that does not fit.

Writers are serialized by one row, the chain head (the last row's hash and id), which each write
locks, reads, and moves on. How a write is sent depends on the database:

- **PostgreSQL**: one statement (a data-modifying ``WITH``) locks the head ``FOR UPDATE``, inserts
  the row with ``prev_hash`` taken from the head and its hash computed in SQL, and moves the head
  to it. Every page that shows a patient audits the view, so this is on the page path: one round
  trip instead of five (BEGIN or SAVEPOINT, lock, insert, head update, COMMIT or RELEASE).
  Outside a transaction the statement is atomic by itself (autocommit), so the head is locked
  only while that one statement runs, not across three round trips; inside one it joins the
  caller's transaction, and the lock is held until the caller commits. The hash is the same
  SHA-256 of the same canonical JSON as in Python: the payload is built here with a random
  marker in place of the previous hash, and SQL puts the head's hash in its place. A writer
  that waited for the lock chains to the row the previous writer committed, because in READ
  COMMITTED PostgreSQL re-reads a row it waited to lock.
- **Anything else** (SQLite in development and tests), and on PostgreSQL when the head row does
  not exist yet (a fresh database) or the marker cannot be used: in Python, inside
  ``transaction.atomic``, the head is locked (created if missing) with ``select_for_update``,
  the row is inserted and the head is updated.

**Writers write their audit rows last.** A writer holds the head from its first audit row to
its commit, and every reader of a patient's record writes a row, so a lock held through a
course's re-evaluation made every clinician opening a record wait for it. An action therefore
runs under :func:`audited`, not ``transaction.atomic``: the rows it records are held back and
written as it ends, in the order recorded, still inside its transaction, after its other
writes. The head is then held only from those inserts to the commit, so nothing may follow
them but the commit: an action called by another (ending a course cancels its appointments)
hands its rows to the outer one, which writes them all at its own end. A row describes the
change as :func:`record` saw it (its "after" is taken when called, after the save), and an
action that fails writes none.

:func:`verify_chain` recomputes hashes in Python, so it accepts rows written either way.
"""

import contextlib
import functools
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit import aside
from audit.models import Action, AuditEvent, ChainHead
from ketacare.prepared import execute

GENESIS = "0" * 64


def _plain(value):
    """JSON-safe copy of ``value``, exactly as the JSONField will give it back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The instance's concrete field values (foreign keys as ids), for before/after."""
    names = fields or [f.name for f in instance._meta.concrete_fields]
    data = {}
    for name in names:
        field = instance._meta.get_field(name)
        data[name] = getattr(instance, field.attname)
    return _plain(data)


def _canonical(event: AuditEvent, prev_hash: str | None = None) -> str:
    """The text a row's hash covers: its content and ``prev_hash`` (by default the row's own),
    as canonical JSON. The one definition of the hashed payload, for both ways of writing."""
    payload = {
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "patient_id": event.patient_id,
        "summary": event.summary,
        "before": event.before,
        "after": event.after,
        "prev_hash": event.prev_hash if prev_hash is None else prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event).encode()).hexdigest()


def record(
    actor,
    action: Action,
    obj: models.Model | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    patient_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    summary: str = "",
) -> AuditEvent:
    """Append one audit row, chained to the last. Call it inside the action's transaction: in
    an action (:func:`audited`) the row is written, and the event returned saved, as the action
    ends; anywhere else at once, except a page view's row in a request outside any transaction
    on PostgreSQL: sent to the audit connection at once, and waited for before the response
    leaves (:mod:`audit.aside`); the event returned has its id and hashes only then."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        at=timezone.now(),
        actor=user,
        actor_name=user.get_username() if user else (str(actor) if actor else ""),
        action=action,
        object_type=object_type or (obj._meta.label if obj is not None else ""),
        object_id=object_id or (str(obj.pk) if obj is not None else ""),
        patient_id=patient_id,
        summary=summary[:255],
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
    )
    held = _held_here()
    if held is not None:
        held.append(event)
        return event
    if action is Action.VIEW and aside.available():
        statement = one_statement(event)
        if statement is not None:
            aside.send(*statement, then=functools.partial(_written_aside, event),
                       instead=functools.partial(_append, event))
            return event
    return _append(event)


def _written_aside(event: AuditEvent, row: tuple | None) -> None:
    """A view's row written aside (audit.aside): its id and hashes; written here instead if
    there was no chain head to chain it to (a fresh database)."""
    if row is None:
        aside.again(functools.partial(_append_in_python, event))
    else:
        _written(event, (int(row[0]), row[1], row[2]))


@dataclass
class _Running:
    """An action running under :func:`audited`: how deep its atomic block is nested, and the
    rows it has recorded so far."""

    depth: int
    rows: list[AuditEvent]


class _Actions(threading.local):
    """The actions running in this thread, innermost last (a thread has its own connection,
    hence its own transaction)."""

    def __init__(self):
        self.running: list[_Running] = []


_actions = _Actions()


def _held_here() -> list[AuditEvent] | None:
    """Where a row recorded now waits: the innermost action's rows, when the row is recorded
    in that action's own atomic block. In a block nested inside it (a savepoint that could be
    rolled back alone) the row is written at once, and rolls back with that block."""
    if not (_actions.running and connection.in_atomic_block):
        return None
    innermost = _actions.running[-1]
    return innermost.rows if innermost.depth == len(connection.savepoint_ids) else None


@contextlib.contextmanager
def audited():
    """Run an action in one transaction, writing its audit rows last (module docstring):
    ``@audited()`` on the action, where ``@transaction.atomic`` would be, or ``with
    audited():``.

    Rows recorded in the block are written, in order, as it ends, still inside the
    transaction; an action run directly by another hands them to that one instead, which
    writes them at its own end. If the block fails, none are written and the change rolls
    back."""
    aside.wait()  # no lock of this transaction in the way of a row sent there (audit.aside)
    with transaction.atomic():
        this = _Running(depth=len(connection.savepoint_ids), rows=[])
        _actions.running.append(this)
        try:
            yield
        finally:
            _actions.running.pop()
        outer = _actions.running[-1] if _actions.running else None
        if outer is not None and outer.depth == this.depth - 1:
            outer.rows.extend(this.rows)  # our savepoint is released into the outer block
        else:
            for event in this.rows:
                _append(event)


def _append(event: AuditEvent) -> AuditEvent:
    """Write ``event``: lock the chain head, insert the row chained to it, move the head."""
    aside.wait()  # the rows sent to the audit connection first (audit.aside)
    if connection.vendor == "postgresql" and _append_in_one_statement(event):
        return event
    return _append_in_python(event)


@transaction.atomic
def _append_in_python(event: AuditEvent) -> AuditEvent:
    """Lock the chain head (creating it in a fresh database), insert the row, move the head."""
    head, _ = ChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS}
    )
    event.prev_hash = head.last_hash
    event.hash = _digest(event)
    event.save()
    head.last_hash, head.last_id = event.hash, event.pk
    head.save(update_fields=["last_hash", "last_id"])
    return event


# PostgreSQL: lock the head, insert the row chained to it, move the head, in one statement. The
# hash is sha256 of the canonical payload with the marker replaced by the head's hash. When the
# head row does not exist, nothing is inserted and no row comes back.
_ONE_STATEMENT_SQL = """
WITH head AS (
    SELECT {last_hash} FROM {chain_head} WHERE {head_id} = 1 FOR UPDATE
), written AS (
    INSERT INTO {audit_event} ({content_columns}, {prev_hash}, {hash})
    SELECT {content_values}, head.{last_hash},
           encode(sha256(convert_to(replace(%s, %s, head.{last_hash}), 'UTF8')), 'hex')
    FROM head
    RETURNING {event_id}, {prev_hash}, {hash}
), moved AS (
    UPDATE {chain_head} SET {last_hash} = written.{hash}, {last_id} = written.{event_id}
    FROM written
    WHERE {chain_head}.{head_id} = 1
)
SELECT {event_id}, {prev_hash}, {hash} FROM written
"""


@functools.cache
def _content_fields() -> list[models.Field]:
    """The AuditEvent columns set from the event itself: all but the id and the two hashes."""
    meta = AuditEvent._meta
    chain = {meta.pk.name, "prev_hash", "hash"}
    return [field for field in meta.concrete_fields if field.name not in chain]


@functools.cache
def _one_statement_sql() -> str:
    quote = connection.ops.quote_name
    event_meta, head_meta = AuditEvent._meta, ChainHead._meta
    fields = _content_fields()
    return _ONE_STATEMENT_SQL.format(
        audit_event=quote(event_meta.db_table),
        event_id=quote(event_meta.pk.column),
        prev_hash=quote(event_meta.get_field("prev_hash").column),
        hash=quote(event_meta.get_field("hash").column),
        content_columns=", ".join(quote(field.column) for field in fields),
        # JSON goes as text cast to jsonb; the rest as Django would send it for a save().
        content_values=", ".join(
            "%s::jsonb" if isinstance(field, models.JSONField) else "%s" for field in fields
        ),
        chain_head=quote(head_meta.db_table),
        head_id=quote(head_meta.pk.column),
        last_hash=quote(head_meta.get_field("last_hash").column),
        last_id=quote(head_meta.get_field("last_id").column),
    )


def _db_value(field: models.Field, event: AuditEvent):
    value = getattr(event, field.attname)
    if isinstance(field, models.JSONField):
        return None if value is None else json.dumps(value, cls=field.encoder)
    return field.get_db_prep_save(value, connection)


def one_statement(event: AuditEvent) -> tuple[str, list] | None:
    """The PostgreSQL statement that appends ``event`` and its parameters; None when the marker
    cannot be used (it must occur exactly once in the payload)."""
    marker = secrets.token_hex(32)
    payload = _canonical(event, prev_hash=marker)
    # The marker stands for the previous hash in SQL's replace(), so it must occur exactly once
    # (checked with overlaps too); random 64 hex digits in the content are a theoretical case.
    first = payload.find(marker)
    if first < 0 or payload.find(marker, first + 1) >= 0:
        return None
    return _one_statement_sql(), [
        *(_db_value(field, event) for field in _content_fields()), payload, marker]


def _written(event: AuditEvent, row: tuple | None) -> bool:
    """Take what the one statement returned into ``event``; False if it wrote nothing (no
    chain head yet: a fresh database)."""
    if row is None:
        return False
    event.pk, event.prev_hash, event.hash = row
    event._state.adding, event._state.db = False, connection.alias  # the same database
    return True


def _append_in_one_statement(event: AuditEvent) -> bool:
    """Write ``event`` with one PostgreSQL statement; False (nothing written) if it cannot be."""
    statement = one_statement(event)
    if statement is None:
        return False
    with connection.cursor() as cursor:
        execute(cursor, *statement)
        return _written(event, cursor.fetchone())


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"audit record {self.event_id}" if self.event_id else "audit trail"
        return f"{where}: {self.reason}"


def verify_chain(batch_size: int = 2000) -> ChainProblem | None:
    """Recompute every hash in order; return the first problem, or None when intact.

    The chain head is read first, so rows written while the check runs (by a live clinic) are
    simply beyond its end and do not look like tampering.
    """
    head = ChainHead.objects.filter(pk=1).first()
    end_id = head.last_id if head else 0
    expected_prev = GENESIS
    last_id = 0
    rows = AuditEvent.objects.filter(id__lte=end_id).order_by("id")
    for event in rows.iterator(chunk_size=batch_size):
        if event.prev_hash != expected_prev:
            return ChainProblem(
                event.pk, f"does not follow record {last_id or 'start'}: a record before it "
                "was removed or altered",
            )
        if _digest(event) != event.hash:
            return ChainProblem(event.pk, "its content does not match its hash (altered)")
        expected_prev, last_id = event.hash, event.pk
    if head and (head.last_id != last_id or head.last_hash != expected_prev):
        return ChainProblem(
            head.last_id or None, f"the chain ends at record {last_id or 'start'} but the last "
            f"record written was {head.last_id}: records at the end were removed",
        )
    return None
