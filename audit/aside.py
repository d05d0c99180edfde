"""A page view's audit row, written on a second connection while the page renders.

Every page that shows a patient writes an audit row, and the row must be committed before the
page leaves: a read of a record must not go unlogged after a crash. On the page's own
connection that commit (the write-ahead log reaching the disk, 0.3-1 ms by the machine) came
before any of the page's own work. Here the row's statement is sent on a connection of its
own, the ``audit`` database alias (the same database), as soon as the view asks for it, and
:class:`AuditAsideMiddleware` waits for its result before the response goes out: the same row,
committed before the page is sent, the disk's wait overlapped with reading and rendering.

Only where the order of the two connections cannot matter:

- PostgreSQL with the ``audit`` alias configured (``ketacare.settings``; ``AUDIT_VIEWS_ASIDE``
  turns it off), inside a request (the middleware): a task or a shell writes at once;
- the page's own connection outside any transaction: inside one, the row belongs to that
  transaction (it commits or rolls back with it) and is written there, as it always was.

The statement is sent with libpq's asynchronous calls (``psycopg.pq``) on the alias's
connection, which nothing else uses; Django opens and closes it as it does the default one
(``CONN_MAX_AGE``). It is not checked before each request (a round trip of every page): if
it turns out to be lost, it is closed and the row written on the page's own connection. If
the row cannot be written, the request fails as it did before (the page is not sent).
"""

import select
import threading
from collections.abc import Callable
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections
from psycopg import pq

ALIAS = "audit"


class _Waiting(threading.local):
    """The statement sent aside in this thread's request, if any, and what to do with its row;
    None outside a request (nothing may be sent aside)."""

    def __init__(self):
        self.sent: list[tuple[Callable, Callable]] | None = None


_waiting = _Waiting()


def available() -> bool:
    """Whether a row written now may go aside (module docstring)."""
    return (_waiting.sent is not None and connection.vendor == "postgresql"
            and not connection.in_atomic_block and ALIAS in settings.DATABASES
            and settings.AUDIT_VIEWS_ASIDE)


def send(sql: str, params: list, then: Callable[[tuple | None], None],
         instead: Callable[[], object]) -> None:
    """Send ``sql`` (one statement, autocommitted) on the audit connection without waiting;
    ``then`` gets its first row (as text), or None, once the middleware has waited for it.
    If the connection turns out to be lost, ``instead`` writes the row on the page's own
    connection. Call only when :func:`available`."""
    if _waiting.sent:  # one statement in flight on the connection at a time
        _finish()
    aside = connections[ALIAS]
    aside.ensure_connection()
    pgconn = aside.connection.pgconn
    try:
        pgconn.send_query(aside.ops.compose_sql(sql, params).encode())
        while pgconn.flush():  # a long statement may not fit in the socket's buffer at once
            select.select([], [pgconn.socket], [])
    except psycopg.OperationalError:  # lost before the statement left: nothing was written
        aside.close()
        instead()
        return
    _waiting.sent.append((then, instead))


def _finish() -> None:
    """Wait for the statement in flight and hand its row on; raise if it failed."""
    then, instead = _waiting.sent.pop()
    aside = connections[ALIAS]
    pgconn = aside.connection.pgconn
    results = []
    try:
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                select.select([pgconn.socket], [], [])  # waits without holding the GIL
                continue
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
    except psycopg.OperationalError:
        lost = True
    else:
        lost = pgconn.status != pq.ConnStatus.OK
    if lost:
        # A server restart, an idle timeout: the connection is not checked before each
        # request (that would be a round trip of every page). The row is written again on
        # the page's connection: if the lost one had committed it, the read is logged twice,
        # never not at all.
        aside.close()  # the next request opens another
        instead()
        return
    if not results or results[0].status != pq.ExecStatus.TUPLES_OK:
        code = results[0].error_field(pq.DiagnosticField.SQLSTATE) if results else None
        # The SQLSTATE only: the server's message may quote the row's values.
        raise DatabaseError("The audit row of a page view was not written "
                            f"(SQLSTATE {code.decode() if code else 'unknown'}).")
    first = results[0]
    then(tuple(None if (value := first.get_value(0, column)) is None else value.decode()
               for column in range(first.nfields)) if first.ntuples else None)


@contextmanager
def waiting():
    """Let the block send rows aside, and wait for them as it ends, whether it raised or not."""
    _waiting.sent = []
    try:
        yield
    finally:
        try:
            while _waiting.sent:
                _finish()
        finally:
            _waiting.sent = None


class AuditAsideMiddleware:
    """Waits for a request's audit rows sent aside before its response leaves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with waiting():
            return self.get_response(request)
