"""Querysets compiled once per process, run again with new values.

Building a queryset with subqueries and compiling it to SQL can cost more than running it: the
day sheet's appointments with their row facts took 2.5 ms to compile and 1.5 ms to run on the
benchmark machine, and a page pays that on every render. :class:`Prepared` compiles its
queryset the first time it runs, with markers in place of the values that change from one run
to the next (a day's bounds, a date), and afterwards runs the same SQL with the new values in
their places. The ORM still writes the SQL, for each backend its own; only once.

Rows come as tuples (or dicts, or model instances as Django makes them), converted from the
database as Django converts them. :func:`together` runs several such queries (and plain SQL)
that do not depend on each other in one round trip on PostgreSQL. A value that changes the
SQL's shape (a list for ``IN``, a ``LIMIT``) cannot be one of the values that change: build
it into the queryset as a constant.

On PostgreSQL the statements are also prepared on the server (:func:`execute`): planning the
same statement again on every request cost as much as running it (the day sheet's seven reads:
2.4 ms of planning, 1.4 ms of execution), and a prepared statement is planned once per
connection.
"""

import functools
import hashlib
import itertools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    connections,
    transaction,
)
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

logger = logging.getLogger(__name__)

_numbers = itertools.count(1)


def _marker(kind: type):
    """A value of ``kind`` that no real value is, distinct from every other marker."""
    n = next(_numbers)
    if kind is datetime:
        return datetime(1901, 2, 3, 4, 5, 6, n % 1_000_000, tzinfo=UTC)
    if kind is date:
        return date(1901, 1, 1) + timedelta(days=n)
    if kind is int:
        # Within every integer field's range, or the ORM may fold a lookup on it away.
        return 20_000 + n % 12_000
    if kind is str:
        return f"\x1fmarker {n}\x1f"
    if kind is UUID:
        return UUID(int=n)
    raise TypeError(f"no marker for {kind}")


def _adapt(connection, value):
    """``value`` as the ORM passes it to this database (SQLite takes dates as text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, UUID) and not connection.features.has_native_uuid_field:
        return value.hex  # as UUIDField stores it
    return value


class Prepared:
    """``Prepared(build, since=datetime)``: ``build(since=...)`` returns a ``values_list``
    queryset; ``.rows(since=value)`` its rows, compiled the first time only."""

    def __init__(self, build: Callable[..., QuerySet], using: str = DEFAULT_DB_ALIAS,
                 **kinds: type):
        self.build, self.using, self.kinds = build, using, kinds
        self._compiled: dict = {}
        self._lock = threading.Lock()

    def _compile(self, connection):
        # The SQL depends on the backend and on the time zone (dates in the clinic's zone).
        key = (connection.alias, connection.vendor, settings.TIME_ZONE, settings.USE_TZ)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                # Compiled twice with different markers: a value's places are where both
                # compilations hold their marker (a constant that happens to equal one of
                # them cannot be taken for it twice).
                other = {name: _marker(kind) for name, kind in self.kinds.items()}
                other_sql, other_params = self.build(**other).query.get_compiler(
                    connection=connection).as_sql()
                markers = {name: _marker(kind) for name, kind in self.kinds.items()}
                compiler = self.build(**markers).query.get_compiler(connection=connection)
                sql, params = compiler.as_sql()
                params = list(params)
                if sql != other_sql or len(params) != len(other_params):
                    raise ValueError("the values change the query's shape")
                places = {}
                for name, marker in markers.items():
                    ours, theirs = _adapt(connection, marker), _adapt(connection, other[name])
                    places[name] = [i for i, param in enumerate(params)
                                    if param == ours and other_params[i] == theirs]
                    if not places[name]:
                        raise ValueError(f"{name} is not a parameter of the query")
                if sends_together(connection.alias):
                    sql, params, places = _constants_inlined(connection, sql, params, places)
                selected = compiler.select[0:compiler.col_count]
                converters = list(compiler.get_converters([s[0] for s in selected]).items())
                names = [s[2] for s in selected]
                compiled = self._compiled[key] = (sql, params, places, converters, names,
                                                  _instances(compiler, connection.alias))
        return compiled

    def objects(self, **values) -> list:
        """The rows as model instances (a queryset of instances, select_related and
        annotations included), as Django builds them."""
        make = self._compile(connections[self.using])[5]
        if make is None:
            raise TypeError("not a queryset of model instances")
        return [make(row) for row in self.rows(**values)]

    def dicts(self, **values) -> list[dict]:
        """The rows as dicts, by the names of a ``values()`` queryset."""
        return self.as_dicts(self.rows(**values))

    def rows(self, **values) -> list[tuple]:
        return together((self, values), using=self.using)[0]

    def statement(self, connection, **values) -> tuple[str, list]:
        """The SQL and its parameters for these values."""
        sql, params, places, *_ = self._compile(connection)
        params = list(params)
        for name, indexes in places.items():
            adapted = _adapt(connection, values[name])
            for index in indexes:
                params[index] = adapted
        return sql, params

    def converted(self, connection, rows) -> list[tuple]:
        """Rows as the database sent them, converted as Django converts them."""
        converters = self._compile(connection)[3]
        if not converters:
            return [tuple(row) for row in rows]
        converted = []
        for row in map(list, rows):
            for position, (functions, expression) in converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            converted.append(tuple(row))
        return converted

    def as_dicts(self, rows: list[tuple]) -> list[dict]:
        """Rows of :meth:`rows` (or :func:`together`) as dicts, by the names of a
        ``values()`` queryset."""
        names = self._compile(connections[self.using])[4]
        return [dict(zip(names, row, strict=True)) for row in rows]


def _constants_inlined(connection, sql: str, params: list, places: dict):
    """The SQL with the parameters that never change written in it as literals (as the client
    binds every value on PostgreSQL anyway), and the rest renumbered: a statement prepared on
    the server then keeps a plan that knows its constants (a partial index on a phase can
    serve it) instead of planning every run for want of them."""
    varying = {index for indexes in places.values() for index in indexes}
    connection.ensure_connection()
    from psycopg import ClientCursor

    quoting = ClientCursor(connection.connection)
    pieces, kept, renumbered, index = [], [], {}, 0
    for piece in re.split(r"(%%|%s)", sql):
        if piece == "%s":
            if index in varying:
                renumbered[index] = len(kept)
                kept.append(params[index])
                pieces.append("%s")
            else:
                pieces.append(quoting.mogrify("%s", [params[index]]).replace("%", "%%"))
            index += 1
        else:
            pieces.append(piece)
    return ("".join(pieces), kept,
            {name: [renumbered[i] for i in indexes] for name, indexes in places.items()})


def literal(value: str) -> str:
    """A constant of the vocabulary as an SQL string literal, for statements written by hand
    (our own spellings, never input): written in the statement, the planner sees it (a
    partial index on it can serve), where a parameter would hide it from a prepared plan."""
    if not re.fullmatch(r"[A-Za-z0-9_]*", value):
        raise ValueError(f"not a plain spelling: {value!r}")
    return f"'{value}'"


def sends_together(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether :func:`together` sends its statements at once, in one round trip: on
    PostgreSQL through psycopg 3 with the parameters bound on the client (Django's default;
    not with the database OPTIONS server_side_binding), which several statements in one
    execute() need."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3 and connection.settings_dict["OPTIONS"].get(
        "server_side_binding") is not True


def together(*runs: tuple, using: str = DEFAULT_DB_ALIAS) -> list[list[tuple]]:
    """The rows of several queries, each given as ``(prepared, values)`` (a :class:`Prepared`
    and the dict of its values) or ``(sql, params)`` (plain SQL): in one round trip on
    PostgreSQL, where the statements are sent at once and their results read in turn;
    one query after another elsewhere. A page whose queries do not depend on each other
    waits for the database once instead of once per query (about 0.45 ms each on the
    benchmark machine)."""
    connection = connections[using]
    statements = []
    for run, values in runs:
        if isinstance(run, Prepared):
            statements.append(run.statement(connection, **values))
        else:  # plain SQL: its parameters in order (a dict would give only its keys)
            if not isinstance(values, list | tuple):
                raise TypeError("plain SQL takes its parameters as a list or a tuple")
            statements.append((run, list(values)))
    found = []
    with connection.cursor() as cursor:
        names = _prepared_names(cursor)
        statements = [_server_side(cursor, sql, params, names) for sql, params in statements]
        if len(statements) > 1 and sends_together(using):
            cursor.execute(";\n".join(sql for sql, _ in statements),
                           [param for _, params in statements for param in params])
            for n in range(len(statements)):
                if n:
                    cursor.nextset()
                found.append(cursor.fetchall())
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall())
    return [run.converted(connection, rows) if isinstance(run, Prepared)
            else [tuple(row) for row in rows] for (run, _), rows in zip(runs, found, strict=True)]


def _instances(compiler, alias: str):
    """How django.db.models.query.ModelIterable makes an instance of a row, for this query;
    None for rows that are not instances (values, values_list)."""
    klass_info = compiler.klass_info
    if not klass_info or compiler.query.values_select or compiler.query.combinator:
        return None
    select, annotations = compiler.select, dict(compiler.annotation_col_map or {})
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    attnames = [column[0].target.attname for column in select[start:end]]
    populators = get_related_populators(klass_info, select, alias)

    def make(row):
        instance = model.from_db(alias, attnames, row[start:end])
        for populator in populators:
            populator.populate(row, instance)
        for name, position in annotations.items():
            setattr(instance, name, row[position])
        return instance

    return make


_made: OrderedDict = OrderedDict()
_made_lock = threading.Lock()
KEPT = 512  # queries kept compiled, the least recently used dropped first


def prepared(key, build: Callable[..., QuerySet], **kinds: type) -> Prepared:
    """The :class:`Prepared` of ``key``, made with ``build`` the first time: for a query
    whose shape depends on a constant of its caller (a page's length, its offset), one per
    value. The KEPT most recently used are kept, so a crawl of every page number cannot grow
    the process without bound, nor push out the queries every page uses for longer than one
    request each."""
    with _made_lock:
        found = _made.get(key)
        if found is not None:
            _made.move_to_end(key)
            return found
        found = _made[key] = Prepared(build, **kinds)
        if len(_made) > KEPT:
            _made.popitem(last=False)
        return found


# -- statements prepared on the server (PostgreSQL) --------------------------------------------
#
# Each statement is prepared (PREPARE) the first time a connection runs it, then run by name
# (EXECUTE, its values bound on the client as for any statement): PostgreSQL parses it once per
# connection and, after a few runs, keeps one plan instead of planning it every time. Several
# EXECUTEs still go in one round trip (together). A prepared statement outlives a rolled-back
# transaction (PREPARE is not transactional), and belongs to its connection: a new connection
# prepares again. A pooler that shares server connections between clients (PgBouncer in
# transaction mode) cannot keep them: set DB_PREPARED_STATEMENTS=0 behind one.

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
_refused: set[str] = set()  # statements the server would not prepare: run as they are
# What PostgreSQL answers when it will not prepare a statement that runs as it is: a statement
# that cannot be prepared (a utility command: syntax error), or a parameter whose type only
# its value tells (indeterminate or ambiguous, could not be determined). Any other error (a
# table not there yet, a transaction already failed, the connection lost) is this run's: the
# statement runs as it is this time and is prepared again next time.
_NOT_PREPARABLE = {"42601", "42P18", "42P08", "42804"}
_ALREADY_PREPARED = "42P05"
_texts: dict[str, str] = {}  # a prepared statement's name: its SQL, for the query log's readers
_EXECUTE = re.compile(r"^EXECUTE (ketacare_[0-9a-f]+)\b")


def prepares(connection) -> bool:
    """Whether statements run through :func:`execute` (and :func:`together`) are prepared on
    this connection's server: on PostgreSQL, unless turned off, and only on a connection kept
    from one request to the next (``CONN_MAX_AGE`` not 0): on a connection per request every
    PREPARE would be one more round trip, and no statement would run often enough to keep a
    plan."""
    return (getattr(settings, "PREPARED_STATEMENTS", True)
            and connection.settings_dict.get("CONN_MAX_AGE") != 0
            and sends_together(connection.alias))


@functools.lru_cache(maxsize=KEPT)
def _server_form(sql: str) -> tuple[str, str, tuple]:
    """The statement's name, its text with $1, $2… for its placeholders (``%s`` each its own,
    ``%(name)s`` one per name), and the placeholders in the order of their numbers (None for
    a ``%s``)."""
    order: list = []

    def number(match) -> str:
        text, name = match.group(0), match.group(1)
        if text == "%%":
            return "%"
        if name is None or name not in order:
            order.append(name)
            return f"${len(order)}"
        return f"${order.index(name) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    name = "ketacare_" + hashlib.sha256(sql.encode()).hexdigest()[:24]
    if len(_texts) > 4 * KEPT:  # forget them all, and the cache that would not tell us again
        _texts.clear()
        _server_form.cache_clear()
    _texts[name] = sql
    return name, text, tuple(order)


def readable(sql: str) -> str | None:
    """A statement of the query log as it ran: each EXECUTE of a prepared statement written as
    that statement's SQL (placeholders, not values); None for a PREPARE, which a connection
    sends once, not per request."""
    if sql.startswith("PREPARE ketacare_"):
        return None
    if not sql.startswith("EXECUTE ketacare_"):
        return sql
    return ";\n".join(_texts.get(match.group(1), part) if (match := _EXECUTE.match(part))
                       else part for part in sql.split(";\n"))


def _prepared_names(cursor) -> set[str]:
    """The names of the statements prepared on this cursor's database connection (a Django
    connection is its thread's own; a new database connection starts with none). Statements
    shaped by a constant (a page's offset) could pile up on the server: past KEPT, all go."""
    connection = cursor.db
    held = getattr(connection, "_ketacare_prepared", None)
    if held is None or held[0] is not connection.connection:
        held = connection._ketacare_prepared = (connection.connection, set())
    if len(held[1]) >= KEPT and prepares(connection) and not connection.needs_rollback:
        cursor.execute("DEALLOCATE ALL")
        held[1].clear()
    return held[1]


def _server_side(cursor, sql: str, params, names: set[str]) -> tuple[str, list]:
    """``sql`` with ``params`` as the EXECUTE of the statement prepared on this connection
    (prepared now if it is not in ``names``); as it is where statements are not prepared."""
    connection = cursor.db
    if sql in _refused or not prepares(connection):
        return sql, params
    if params is None and "%" in sql:
        return sql, params  # without parameters "%%" is two characters, not an escaped "%"
    name, text, order = _server_form(sql)
    if isinstance(params, dict):
        values = [params[key] for key in order]
    else:
        values = list(params or ())
        if len(values) != len(order) or any(order):
            return sql, params  # a mix of placeholders: not ours to renumber
    if name not in names:
        if connection.needs_rollback:  # a failed transaction: the statement will fail anyway
            return sql, params
        try:
            # In a transaction, a refused statement must not abort it: a savepoint.
            with (transaction.atomic(using=connection.alias) if connection.in_atomic_block
                  else nullcontext()):
                cursor.execute(f"PREPARE {name} AS {text}")
        except DatabaseError as error:
            state = getattr(error.__cause__, "sqlstate", None)
            if state != _ALREADY_PREPARED:  # prepared by an earlier run we lost count of
                if state in _NOT_PREPARABLE:
                    _refused.add(sql)
                logger.warning("statement %s not prepared (%s, SQLSTATE %s): run as it is",
                               name, type(error).__name__, state)
                return sql, params
        names.add(name)
    if not values:
        return f"EXECUTE {name}", []
    return f"EXECUTE {name}({', '.join(['%s'] * len(values))})", values


def execute(cursor, sql: str, params=None) -> None:
    """``cursor.execute(sql, params)`` (``%s`` with a list, or ``%(name)s`` with a dict),
    through a statement prepared on the server where :func:`prepares`; read the rows from
    ``cursor`` as usual.

    Not a drop-in for every statement: a prepared statement's parameters take the types
    PostgreSQL inferred when it was prepared, and later values are cast to them (1.5 where an
    integer was inferred is rounded; a value out of its range fails). Give each placeholder
    values of one type, or cast it in the SQL (``%s::numeric``)."""
    sql, params = _server_side(cursor, sql, params, _prepared_names(cursor))
    cursor.execute(sql, params)
