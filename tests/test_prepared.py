"""ketacare.prepared: a queryset compiled once gives, run again with other values, what the
queryset itself gives with them, on SQLite and on PostgreSQL."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from courses.models import Course, TreatmentSession
from ketacare.prepared import Prepared, prepared
from patients.models import Patient, WeightRecord
from tests.conftest import sent
from tests.factories import CourseFactory, PatientFactory, SessionFactory, WeightFactory, at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_refusals():
    """Each test starts with no statement refused by the server (they are the process's)."""
    from ketacare import prepared as module

    yield
    module._refused.clear()


@pytest.fixture
def history(clinician):
    for i, name in enumerate(("Abel", "Bree", "Cato")):
        patient = PatientFactory(last_name=name)
        WeightFactory(patient=patient, measured_on=date(2026, 1, 1) + timedelta(days=i),
                      weight_kg=Decimal("70.5") + i, recorded_by=clinician)
        course = CourseFactory(patient=patient, started_on=date(2026, 1, 5 + i))
        for day in range(i + 1):
            SessionFactory(course=course, started_at=at(date(2026, 1, 10 + day + i)))


def sessions_between(start, end):
    latest = WeightRecord.objects.filter(patient=OuterRef("course__patient")).order_by(
        "-measured_on")
    return (TreatmentSession.objects.filter(started_at__gte=start, started_at__lt=end)
            .annotate(weight=Subquery(latest.values("weight_kg")[:1]))
            .order_by("started_at", "id")
            .values_list("pk", "course__patient__last_name", "started_at", "weight"))


def test_rows_are_the_querysets_own_for_every_value(history):
    built = []

    def build(start, end):
        built.append(1)
        return sessions_between(start, end)

    query = Prepared(build, start=datetime, end=datetime)
    for first, last in ((10, 12), (11, 20), (13, 14), (1, 2)):
        start, end = at(date(2026, 1, first), 0), at(date(2026, 1, last), 0)
        assert query.rows(start=start, end=end) == list(sessions_between(start, end))
    assert len(built) == 2  # compiled (twice, with different markers) on the first run only
    rows = query.rows(start=at(date(2026, 1, 1), 0), end=at(date(2026, 2, 1), 0))
    assert len(rows) == 6 and rows[0][3] == Decimal("70.5")  # converted as the ORM does


def test_dates_numbers_and_dicts(history):
    query = Prepared(lambda since, at_least: Course.objects.filter(started_on__gte=since)
                     .annotate(n=Count("sessions")).filter(n__gte=at_least)
                     .order_by("started_on").values("patient__last_name", "n"),
                     since=date, at_least=int)
    assert query.dicts(since=date(2026, 1, 6), at_least=1) == [
        {"patient__last_name": "Bree", "n": 2}, {"patient__last_name": "Cato", "n": 3}]
    assert query.dicts(since=date(2026, 1, 1), at_least=3) == [
        {"patient__last_name": "Cato", "n": 3}]


def test_objects_are_instances_with_their_related_rows_and_annotations(history):
    query = Prepared(lambda patient: WeightRecord.objects.filter(patient__last_name=patient)
                     .select_related("recorded_by", "patient")
                     .annotate(sessions=Count("patient__courses__sessions")), patient=str)
    for name in ("Abel", "Cato", "Nobody"):
        got = query.objects(patient=name)
        expected = list(WeightRecord.objects.filter(patient__last_name=name)
                        .select_related("recorded_by", "patient")
                        .annotate(sessions=Count("patient__courses__sessions")))
        assert [(w.pk, w.weight_kg, w.recorded_by.username, w.patient.last_name, w.sessions)
                for w in got] == [
            (w.pk, w.weight_kg, w.recorded_by.username, w.patient.last_name, w.sessions)
            for w in expected]
    assert query.objects(patient="Cato")[0].sessions == 3


def test_uuids_and_a_union(history):
    """A UUID value (stored natively on PostgreSQL, as hex on SQLite) in one half of a UNION."""
    sessions = list(TreatmentSession.objects.order_by("pk"))
    for n, session in enumerate(sessions):
        session.submission_token = uuid.UUID(int=1000 + n)
        session.save(update_fields=["submission_token"])

    def build(token, since):
        columns = ("pk", "submission_token")
        return (TreatmentSession.objects.filter(started_at__gte=since).order_by()
                .values_list(*columns)
                .union(TreatmentSession.objects.filter(submission_token=token).order_by()
                       .values_list(*columns)))

    query = Prepared(build, token=uuid.UUID, since=datetime)
    late = at(date(2026, 1, 15), 0)
    for token in (sessions[0].submission_token, sessions[3].submission_token, uuid.uuid4()):
        assert sorted(query.rows(token=token, since=late)) == sorted(build(token, late))
    assert (sessions[0].pk, sessions[0].submission_token) in query.rows(
        token=sessions[0].submission_token, since=late)


def test_a_value_that_is_not_a_parameter_or_changes_the_shape_is_refused(history):
    query = Prepared(lambda since: Patient.objects.values_list("pk"), since=datetime)
    with pytest.raises(ValueError, match="since is not a parameter"):
        query.rows(since=timezone.now())
    shaped = Prepared(lambda n: Patient.objects.values_list("pk")[:n], n=int)
    with pytest.raises(ValueError, match="shape"):
        shaped.rows(n=3)
    with pytest.raises(TypeError):
        Prepared(lambda: Patient.objects.values_list("pk")).objects()


def test_prepared_makes_one_per_key(history):
    first = prepared(("test", 1), lambda: Patient.objects.values_list("last_name")[:1])
    assert prepared(("test", 1), lambda: Patient.objects.none()) is first
    assert first.rows() == [("Abel",)]


def test_together_gives_each_querys_own_rows_in_one_round_trip_on_postgresql(history):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketacare.prepared import sends_together, together

    between = Prepared(sessions_between, start=datetime, end=datetime)
    names = Prepared(lambda: Patient.objects.order_by("last_name").values("last_name"))
    start, end = at(date(2026, 1, 11), 0), at(date(2026, 1, 14), 0)
    # Plain SQL with a literal percent sign beside the parameters.
    plain = (f"SELECT COUNT(*), '100%%' FROM {Patient._meta.db_table} WHERE last_name <> %s",
             ["Abel"])
    with CaptureQueriesContext(connection) as queries:
        sessions, patients, counted = together(
            (between, {"start": start, "end": end}), (names, {}), plain)
    assert len(sent(queries)) == (1 if sends_together() else 3)
    assert sessions == list(sessions_between(start, end)) and len(sessions) == 4
    assert names.as_dicts(patients) == [{"last_name": name} for name in ("Abel", "Bree", "Cato")]
    assert counted == [(2, "100%")]
    # An empty result among them, and a single query.
    assert together((between, {"start": end, "end": end}), plain) == [[], [(2, "100%")]]
    assert together(plain) == [[(2, "100%")]]


def test_the_registry_of_prepared_queries_keeps_the_most_recently_used():
    from ketacare import prepared as module

    def build():
        return Patient.objects.values_list("pk")

    saved = dict(module._made)
    try:
        hot = module.prepared(("bounded", "hot"), build)
        for n in range(module.KEPT + 10):  # a crawl of every page number
            assert isinstance(module.prepared(("bounded", n), build), module.Prepared)
            assert module.prepared(("bounded", "hot"), build) is hot  # used on every page
        assert len(module._made) == module.KEPT
        assert ("bounded", 0) not in module._made  # the least recently used went first
        assert ("bounded", module.KEPT + 9) in module._made
    finally:
        module._made.clear()
        module._made.update(saved)


def test_together_refuses_named_parameters_for_plain_sql():
    from ketacare.prepared import together

    with pytest.raises(TypeError, match="list or a tuple"):
        together(("SELECT %(a)s", {"a": 1}))


# -- statements prepared on the server (PostgreSQL) --------------------------------------------

def _postgresql_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("statements are prepared on PostgreSQL's server only")


def _sent_raw(run):
    """What ``run`` sent, as the query log has it (PREPARE and EXECUTE included)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = run()
    return result, [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]


def _fetch(sql, params):
    from django.db import connection

    from ketacare.prepared import execute

    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)  # it closes the connection
def test_a_statement_is_prepared_once_per_connection_and_gives_the_plain_rows(history):
    _postgresql_only()
    from django.db import connection

    table = Patient._meta.db_table
    named = (f"SELECT last_name, '5%%' FROM {table} WHERE last_name <> %(name)s "  # noqa: S608
             f"AND last_name <> upper(%(name)s) AND id > %(above)s ORDER BY last_name")
    positional = (f"SELECT count(*) FROM {table} WHERE last_name = ANY(%s) "  # noqa: S608
                  f"AND %s::date > '2026-01-01'")
    with connection.cursor() as cursor:
        cursor.execute(named, {"name": "Bree", "above": 0})
        plain = cursor.fetchall()
    rows, first = _sent_raw(lambda: _fetch(named, {"name": "Bree", "above": 0}))
    assert rows == plain == [("Abel", "5%"), ("Cato", "5%")]
    assert [sql.split()[0] for sql in first] == ["PREPARE", "EXECUTE"]
    # Run again with other values: no PREPARE, the new values' rows.
    rows, again = _sent_raw(lambda: _fetch(named, {"name": "Abel", "above": 0}))
    assert rows == [("Bree", "5%"), ("Cato", "5%")]
    assert [sql.split()[0] for sql in again] == ["EXECUTE"]
    # Positional placeholders, a list and a date among the values.
    assert _fetch(positional, [["Abel", "Cato"], date(2026, 2, 1)]) == [(2,)]
    assert _fetch(positional, [["Abel"], date(2025, 2, 1)]) == [(0,)]
    # A new database connection has none: it prepares again.
    connection.close()
    rows, fresh = _sent_raw(lambda: _fetch(named, {"name": "Cato", "above": 0}))
    assert rows == [("Abel", "5%"), ("Bree", "5%")]
    assert [sql.split()[0] for sql in fresh] == ["PREPARE", "EXECUTE"]


def test_the_query_log_reads_a_prepared_statement_as_its_sql(history):
    _postgresql_only()
    from ketacare.prepared import readable

    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608
    _, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert [readable(statement) for statement in logged] == [None, sql]
    assert readable("SELECT 1") == "SELECT 1"


def test_a_prepared_statement_outlives_a_rolled_back_transaction(history):
    _postgresql_only()
    from django.db import transaction

    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction.atomic():
        assert _fetch(sql, [0]) == [(3,)]
        raise Undone
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert rows == [(3,)] and [s.split()[0] for s in logged] == ["EXECUTE"]


def test_a_statement_the_server_will_not_prepare_runs_as_it_is(history, caplog):
    _postgresql_only()
    from django.db import transaction

    from ketacare import prepared as module

    sql = "SELECT %s IS NULL"  # the server cannot tell the placeholder's type
    with transaction.atomic():
        assert _fetch(sql, [None]) == [(True,)]
        # The refusal did not spoil the transaction around it.
        assert Patient.objects.count() == 3
    assert sql in module._refused
    # Named by its SQLSTATE (indeterminate datatype); neither the statement nor values logged.
    assert "not prepared" in caplog.text and "42P18" in caplog.text
    assert "IS NULL" not in caplog.text
    rows, logged = _sent_raw(lambda: _fetch(sql, [1]))
    assert rows == [(False,)] and logged == ["SELECT 1 IS NULL"]


def test_statements_are_sent_as_they_are_when_preparing_is_off(history, settings):
    _postgresql_only()
    settings.PREPARED_STATEMENTS = False
    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert rows == [(3,)] and logged == [sql.replace("%s", "0")]


@pytest.mark.django_db(transaction=True)  # it closes the connection
def test_the_statements_prepared_on_a_connection_stay_bounded(history, monkeypatch):
    _postgresql_only()
    from django.db import connection

    from ketacare import prepared as module

    monkeypatch.setattr(module, "KEPT", 3)
    connection.close()  # a connection with none prepared yet
    table = Patient._meta.db_table
    for offset in range(3):  # statements shaped by a constant (a page's offset)
        assert _fetch(f"SELECT id FROM {table} ORDER BY id OFFSET {offset}"  # noqa: S608
                      " LIMIT %s", [1])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (3,)
    _, logged = _sent_raw(lambda: _fetch(f"SELECT id FROM {table} LIMIT %s", [1]))  # noqa: S608
    assert [sql.split()[0] for sql in logged] == ["DEALLOCATE", "PREPARE", "EXECUTE"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (1,)


def test_a_prepared_querysets_constants_are_written_in_on_postgresql(history):
    """Only the values that change are parameters: the constants are literals, so a plan
    prepared on the server knows them (a partial index on a phase can serve it)."""
    from django.db import connection

    from ketacare.prepared import sends_together

    def build(start):
        return (TreatmentSession.objects.order_by("pk")
                .filter(started_at__gte=start, route="iv",
                        course__patient__last_name__contains="re")
                .values_list("pk"))

    query = Prepared(build, start=datetime)
    start = at(date(2026, 1, 1), 0)
    sql, params = query.statement(connection, start=start)
    if sends_together():
        assert params == [connection.ops.adapt_datetimefield_value(start)]
        # The LIKE pattern too, its percent signs doubled for the placeholders' formatting.
        assert "'iv'" in sql and "'%%re%%'" in sql
    else:
        assert len(params) == 3
    # Bree's sessions, as the queryset gives them: the pattern's "%" are wildcards still.
    for day in (date(2026, 1, 1), date(2026, 1, 12)):
        expected = list(build(at(day, 0)))
        assert query.rows(start=at(day, 0)) == expected
    assert len(list(build(start))) == 2


def test_a_statement_not_prepared_for_want_of_the_connection_is_tried_again(history,
                                                                            monkeypatch):
    _postgresql_only()
    from django.db import OperationalError, connection

    from ketacare import prepared as module

    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id >= %s"  # noqa: S608 (its own)
    with connection.cursor() as cursor:
        wrapper = type(cursor)
        real = wrapper.execute

        def lost_on_prepare(self, statement, params=None):
            if statement.startswith("PREPARE"):
                raise OperationalError("server closed the connection unexpectedly")
            return real(self, statement, params)

        monkeypatch.setattr(wrapper, "execute", lost_on_prepare)
        assert _fetch(sql, [0]) == [(3,)]  # run as it is this time
        monkeypatch.setattr(wrapper, "execute", real)
    assert sql not in module._refused
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert rows == [(3,)] and [s.split()[0] for s in logged] == ["PREPARE", "EXECUTE"]


def test_a_statement_failing_for_a_reason_of_its_run_is_prepared_next_time(history):
    """Only the server's refusal of the statement itself keeps it unprepared: a table not
    there yet (as before a migration) fails this run, and the statement is prepared once the
    table is there."""
    _postgresql_only()
    from django.db import ProgrammingError, connection, transaction

    from ketacare import prepared as module

    sql = "SELECT count(*) FROM ketacare_later WHERE n > %s"
    with pytest.raises(ProgrammingError), transaction.atomic():
        _fetch(sql, [0])  # run as it is, and failing as it would
    assert sql not in module._refused
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE ketacare_later (n integer)")
        cursor.execute("INSERT INTO ketacare_later VALUES (1), (2)")
    rows, logged = _sent_raw(lambda: _fetch(sql, [1]))
    assert rows == [(1,)] and [s.split()[0] for s in logged] == ["PREPARE", "EXECUTE"]


def test_a_statement_prepared_behind_our_back_is_run_by_its_name(history):
    """A statement already prepared on the connection (the count of them lost) is not an
    error: it is run by its name."""
    _postgresql_only()
    from django.db import connection

    from ketacare import prepared as module

    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608
    assert _fetch(sql, [0]) == [(3,)]
    with connection.cursor() as cursor:
        module._prepared_names(cursor).clear()
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert rows == [(3,)] and [s.split()[0] for s in logged] == ["PREPARE", "EXECUTE"]
    assert sql not in module._refused
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert [s.split()[0] for s in logged] == ["EXECUTE"]


def test_a_percent_sign_without_parameters_means_what_it_means_unprepared(history):
    """Without parameters the driver does not read "%%" as an escaped "%", so neither do we."""
    from django.db import connection

    sql = "SELECT '5%%', '5%'"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        plain = cursor.fetchall()
    assert _fetch(sql, None) == plain == [("5%%", "5%")]


def test_a_batch_of_prepared_and_refused_statements_gives_each_its_rows(history):
    """together() with a statement the server will not prepare among prepared ones: each
    query's rows in its place."""
    from ketacare.prepared import together

    count = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608
    names = f"SELECT last_name FROM {Patient._meta.db_table} ORDER BY 1"  # noqa: S608
    for _ in range(2):  # preparing, then prepared
        assert together((count, [0]), ("SELECT %s IS NULL", [None]), (names, [])) == [
            [(3,)], [(True,)], [("Abel",), ("Bree",), ("Cato",)]]


@pytest.mark.django_db(transaction=True)  # it sets the connection's settings
def test_nothing_is_prepared_on_a_connection_per_request(history, monkeypatch):
    """With CONN_MAX_AGE 0 (a connection per request, as behind PgBouncer) a PREPARE would be
    one more round trip on every request, for a plan never kept: statements go as they are."""
    _postgresql_only()
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    sql = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE id > %s"  # noqa: S608
    rows, logged = _sent_raw(lambda: _fetch(sql, [0]))
    assert rows == [(3,)] and logged == [sql.replace("%s", "0")]
