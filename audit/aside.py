"""A page view's audit row, written on a second connection while the page renders.

Every page that shows a patient writes an audit row, and the row must be committed before the
page leaves: a read of a record must not go unlogged after a crash. On the page's own
connection that commit (the write-ahead log reaching the disk, 0.3-1 ms by the machine) came
before any of the page's own work. Instead, the row's statement is sent on a connection of its
own, the ``audit`` database alias (the same database), as soon as the view records the view,
without waiting for its answer; :class:`AuditAsideMiddleware` waits for that answer before the
response goes out. The same row, committed before the page is sent; the disk's wait overlaps
the page's reading and rendering.

When a row goes to the audit connection (:func:`available`):

- on PostgreSQL, with the ``audit`` alias configured (``ketacare.settings`` adds it when
  connections are kept, ``DB_CONN_MAX_AGE`` > 0; ``AUDIT_VIEWS_ASIDE=0`` turns it off);
- inside a request (the middleware): a task or a shell writes at once;
- when the page's own connection is in autocommit and outside any transaction: inside one the
  row belongs to that transaction (it commits or rolls back with it) and is written there.

The two connections never wait for each other: before the page's connection writes an audit
row itself, or opens an action's transaction (``audit.log.audited``), it waits for the rows it
sent here (:func:`wait`), so an action holds no lock that the row's statement needs (the
chain head; the actor's account row, which the row's foreign key reads at the commit) while
that statement waits. A row that would have to be written again on the page's connection
while that connection is inside a transaction is not: the request fails instead (the row must
not roll back with someone else's transaction). The audit connection gives up on a lock after
ten seconds (its ``lock_timeout``: a page that used to wait longer now fails), and on an
answer after fifteen (a connection dropped without a word).

The statement is sent with libpq's asynchronous calls (``psycopg.pq``), its values as
parameters, never in the statement's text (which the server logs with an error; it logs
parameters only where ``log_statement`` or ``log_min_duration_statement`` catches a statement,
as for every other query: set ``log_parameter_max_length=0`` there), on the alias's
connection, which nothing else uses. Django opens and closes it as it does the default one
(``CONN_MAX_AGE``), without the health check before each request (a round trip of every
page): a connection found lost is closed, and the row written on the page's own connection
(at worst a read is logged twice, never not at all). If the row cannot be written, the request
fails: the page is not sent.
"""

import re
import select
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import cache

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db import Error as DjangoDatabaseError
from psycopg import pq

ALIAS = "audit"
ANSWER_TIMEOUT_S = 15  # above the connection's lock_timeout (10 s, ketacare.settings)


class _Sent(threading.local):
    """This thread's request (``open``: rows may be sent only inside one) and the row sent on
    its audit connection and not yet waited for, as what to do with its answer (``then``) and
    how to write it otherwise (``instead``). One at a time: :func:`send` waits for the last."""

    def __init__(self):
        self.open = False
        self.pending: tuple[Callable, Callable] | None = None


_sent = _Sent()


def available() -> bool:
    """Whether a row written now may go to the audit connection (module docstring)."""
    return (_sent.open and connection.vendor == "postgresql"
            and not connection.in_atomic_block and connection.get_autocommit()
            and ALIAS in settings.DATABASES and settings.AUDIT_VIEWS_ASIDE)


def send(sql: str, params: list, then: Callable[[tuple | None], None],
         instead: Callable[[], object]) -> None:
    """Send ``sql`` (one statement, autocommitted; ``%s`` placeholders) with ``params`` on the
    audit connection without waiting; ``then`` gets its first row (as text), or None, when
    it is waited for. If the connection cannot be used, ``instead`` writes the row on the
    page's own connection. Call only when :func:`available`."""
    wait()  # one statement in flight on the connection at a time
    values = [_text(value) for value in params]
    aside = connections[ALIAS]
    try:
        aside.ensure_connection()
        pgconn = aside.connection.pgconn
        pgconn.send_query_params(_numbered(sql), values)
        while pgconn.flush():  # a long statement may not fit in the socket's buffer at once
            pgconn.consume_input()
            _ready(pgconn.socket, write=True)
    except (psycopg.Error, DjangoDatabaseError):  # not sent: nothing was written
        aside.close()
        instead()
        return
    _sent.pending = (then, instead)


def wait() -> None:
    """Wait for the row sent on this thread's audit connection, if any; raise if it failed."""
    if _sent.pending is not None:
        then, instead = _sent.pending
        _sent.pending = None  # taken: writing it again may wait() in turn
        _answer(then, instead)


def _answer(then: Callable, instead: Callable) -> None:
    aside = connections[ALIAS]
    if aside.connection is None:  # closed since (nothing in this app does): not known
        again(instead)
        return
    pgconn = aside.connection.pgconn
    results, complete = [], False
    try:
        while not complete:
            # The socket is read only while no whole message is in hand: an answer already
            # read counts even if the connection was lost just after it.
            while pgconn.is_busy():
                if not _ready(pgconn.socket, timeout=ANSWER_TIMEOUT_S):
                    raise psycopg.OperationalError("no answer")  # as lost
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # the server is ready for the next query: the statement ended
                complete = True
            else:
                results.append(result)
    except psycopg.OperationalError:  # lost before it ended
        pass
    failed = [result for result in results if result.status != pq.ExecStatus.TUPLES_OK]
    if (complete and results and not failed
            and pgconn.transaction_status == pq.TransactionStatus.IDLE):
        # Ended outside any transaction, without error: committed (an error at the commit, a
        # deferred foreign key's check, comes after the rows).
        first = results[0]
        then(tuple(None if (value := first.get_value(0, column)) is None
                   else value.decode() for column in range(first.nfields))
             if first.ntuples else None)
        return
    if not (complete and results) or pgconn.status != pq.ConnStatus.OK:
        # Lost before it ended (a server restart, an idle timeout, a dropped connection):
        # whether the row was committed is unknown, so it is written again; a read may be
        # logged twice, never not at all.
        aside.close()  # the next request opens another
        again(instead)
        return
    code = failed[0].error_field(pq.DiagnosticField.SQLSTATE) if failed else None
    # The SQLSTATE only: the server's message may quote the row's values.
    raise DatabaseError("The audit row of a page view was not written "
                        f"(SQLSTATE {code.decode() if code else 'unknown'}).")


def again(instead: Callable) -> None:
    """Write a row again on the page's connection, unless that connection is inside a
    transaction, with which the row would roll back: then the request fails."""
    if connection.in_atomic_block:
        raise DatabaseError("The audit row of a page view could not be confirmed, and cannot "
                            "be written inside a transaction.")
    instead()


@cache
def _numbered(sql: str) -> bytes:
    """``sql`` with its ``%s`` placeholders numbered as PostgreSQL's own ($1, $2, ...)."""
    if sql.count("%") != sql.count("%s"):
        raise ValueError("only %s placeholders, and no other %, in a statement sent aside")
    count = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _: f"${next(count)}", sql).encode()


def _text(value) -> bytes | None:
    """A parameter in PostgreSQL's text format; its type is the column's or the cast's."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, str | int | Decimal):
        text = str(value)
        if "\x00" in text:  # libpq would cut it there: refused, as psycopg refuses it
            raise ValueError("PostgreSQL text cannot contain NUL (0x00) bytes")
        return text.encode()
    raise TypeError(f"no text format for a parameter of type {type(value).__name__}")


def _ready(fd: int, write: bool = False, timeout: float | None = None) -> bool:
    """Wait until the socket can be written (or read); False if ``timeout`` seconds passed."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


@contextmanager
def waiting():
    """Let the block send rows to the audit connection, and wait for them as it ends, whether
    it raised or not. Not nested: a request is one block."""
    if _sent.open:
        raise RuntimeError("audit.aside.waiting() is already open in this thread")
    _sent.open = True
    try:
        yield
    finally:
        try:
            wait()
        finally:
            _sent.open, _sent.pending = False, None


class AuditAsideMiddleware:
    """Waits for a request's audit rows sent to the audit connection before its response
    leaves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with waiting():
            return self.get_response(request)
