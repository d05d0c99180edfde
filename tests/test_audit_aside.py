"""A page view's audit row written on the audit connection while the page renders
(audit.aside): the same row, chained as before, committed before the page is sent."""

import threading
import time

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from audit import aside
from audit import log as audit_log
from audit.log import audited, record, verify_chain
from audit.models import Action, AuditEvent, ChainHead
from tests.conftest import PAGE_DATABASES, in_thread, result, sent, verified_login
from tests.factories import CourseFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the audit connection is PostgreSQL's (audit.aside)"),
    pytest.mark.django_db(transaction=True, databases=PAGE_DATABASES),
]


@pytest.fixture
def course_page(client, clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    course = CourseFactory(created_by=clinician)
    verified_login(client, clinician)
    return reverse("courses:detail", args=[course.pk]), course


def audit_writes(queries) -> list[str]:
    return [sql for sql in sent(queries) if f'INSERT INTO "{AuditEvent._meta.db_table}"' in sql]


def chain_head_held():
    """Another transaction holding the chain head (no audit row can be written) until the
    returned event is set; its thread and outcome, for tests.conftest.result."""
    holding, release = threading.Event(), threading.Event()

    def hold_the_chain_head():
        with transaction.atomic():
            ChainHead.objects.select_for_update().get()
            holding.set()
            release.wait(20)

    holder, held = in_thread(hold_the_chain_head)
    assert holding.wait(20)
    return release, holder, held


def test_a_page_view_is_written_on_the_audit_connection_and_chained(client, course_page):
    url, course = course_page
    with CaptureQueriesContext(connection) as page:
        response = client.get(url)

    assert response.status_code == 200
    assert audit_writes(page.captured_queries) == []  # not on the page's connection
    row = AuditEvent.objects.get(action=Action.VIEW, patient_id=course.patient_id)
    assert row.summary == f"viewed course {course.pk}"
    assert ChainHead.objects.get().last_id == row.pk
    assert verify_chain() is None


def test_the_page_is_not_sent_before_its_audit_row_is_committed(client, course_page):
    """While another transaction holds the chain head, the view's row cannot be written:
    the page waits for it, and is sent once the row is committed."""
    url, course = course_page
    release, holder, held = chain_head_held()
    viewer, answered = in_thread(lambda: client.get(url).status_code)

    viewer.join(1.0)
    assert viewer.is_alive(), "the page was answered while its audit row could not be written"
    assert not AuditEvent.objects.filter(action=Action.VIEW).exists()

    release.set()
    result(holder, held)
    assert result(viewer, answered) == 200
    assert AuditEvent.objects.filter(action=Action.VIEW, patient_id=course.patient_id).count() == 1
    assert verify_chain() is None


def test_a_row_that_cannot_be_written_fails_the_request(client, course_page, monkeypatch):
    url, _ = course_page
    monkeypatch.setattr(audit_log, "one_statement", lambda event: ("SELECT 1 / 0", []))

    with pytest.raises(DatabaseError, match=r"SQLSTATE 22012"):
        client.get(url)

    monkeypatch.undo()  # the connection is usable again by the next request
    assert client.get(url).status_code == 200
    assert AuditEvent.objects.filter(action=Action.VIEW).count() == 1


def test_a_lost_audit_connection_is_opened_again(client, course_page):
    url, _ = course_page
    assert client.get(url).status_code == 200
    lost = connections[aside.ALIAS].connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [lost])

    # Found lost: the row is written on the page's connection, then the next page opens
    # another audit connection.
    with CaptureQueriesContext(connection) as page:
        assert client.get(url).status_code == 200
    assert len(audit_writes(page.captured_queries)) == 1
    assert client.get(url).status_code == 200
    assert connections[aside.ALIAS].connection.info.backend_pid != lost
    assert AuditEvent.objects.filter(action=Action.VIEW).count() == 3
    assert verify_chain() is None


def test_without_a_chain_head_the_row_is_written_on_the_page_connection(clinician):
    assert not ChainHead.objects.exists()  # a fresh database
    with aside.waiting():
        event = record(clinician, Action.VIEW, summary="the first row")
        assert not AuditEvent.objects.exists()  # sent aside, which found no head to chain to

    row = AuditEvent.objects.get()
    assert (row.pk, row.summary) == (event.pk, "the first row")
    assert ChainHead.objects.get().last_id == row.pk
    assert verify_chain() is None


def test_a_connection_lost_while_waiting_writes_the_row_on_the_page_connection(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    release, holder, held = chain_head_held()
    with CaptureQueriesContext(connection) as page, aside.waiting():
        record(clinician, Action.VIEW, summary="lost")  # sent aside: waits for the head
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)",
                           [connections[aside.ALIAS].connection.info.backend_pid])
        release.set()
        result(holder, held)

    assert len(audit_writes(page.captured_queries)) == 1  # written again, here
    assert AuditEvent.objects.filter(summary="lost").count() == 1
    assert connections[aside.ALIAS].connection is None  # closed: the next page opens one
    assert verify_chain() is None


def test_a_row_recorded_in_a_transaction_stays_in_it(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    with aside.waiting(), pytest.raises(RuntimeError), transaction.atomic():
        record(clinician, Action.VIEW, summary="rolled back")
        raise RuntimeError
    assert not AuditEvent.objects.filter(summary="rolled back").exists()


def test_two_views_in_one_request_are_both_written_in_order(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    with aside.waiting():
        first = record(clinician, Action.VIEW, summary="first")
        second = record(clinician, Action.VIEW, summary="second")
    assert first.pk < second.pk
    assert list(AuditEvent.objects.filter(action=Action.VIEW).order_by("pk")
                .values_list("summary", flat=True)) == ["first", "second"]
    assert verify_chain() is None


def test_a_view_that_fails_after_recording_still_has_its_row_written(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")

    def view(request):
        record(clinician, Action.VIEW, summary="then failed")
        raise ValueError("the view failed")

    with pytest.raises(ValueError):
        aside.AuditAsideMiddleware(view)(None)
    assert AuditEvent.objects.filter(summary="then failed").count() == 1


def test_a_connection_lost_after_its_answer_came_writes_the_row_once(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    with aside.waiting():
        record(clinician, Action.VIEW, summary="committed")
        while not AuditEvent.objects.filter(summary="committed").exists():
            time.sleep(0.01)  # committed
        time.sleep(0.2)  # and its answer sent (not read yet): lost only then
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)",
                           [connections[aside.ALIAS].connection.info.backend_pid])
    assert AuditEvent.objects.filter(summary="committed").count() == 1
    assert verify_chain() is None


def test_an_audit_connection_that_cannot_be_opened_falls_back(clinician, monkeypatch):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    connections[aside.ALIAS].close()
    monkeypatch.setitem(connections[aside.ALIAS].settings_dict, "PORT", "1")  # nothing there
    with CaptureQueriesContext(connection) as page, aside.waiting():
        record(clinician, Action.VIEW, summary="written here")
    assert len(audit_writes(page.captured_queries)) == 1
    assert AuditEvent.objects.filter(summary="written here").count() == 1


def test_an_action_after_a_view_in_one_request_does_not_deadlock_with_it(clinician):
    """The view's row waits for the chain head; the action then locks the actor's row, which
    that row's foreign key needs: the action waits for the view's row before it begins."""
    record(clinician, Action.LOGIN, summary="creates the chain head")
    release, holder, held = chain_head_held()

    def request():
        with aside.waiting():
            record(clinician, Action.VIEW, summary="viewed")  # waits for the head
            threading.Timer(0.3, release.set).start()
            with audited():
                User.objects.select_for_update().get(pk=clinician.pk)
                record(clinician, Action.UPDATE, clinician, summary="changed")

    page, done = in_thread(request)
    result(page, done, timeout=30)  # a deadlock would raise here (SQLSTATE 40P01)
    result(holder, held)
    assert list(AuditEvent.objects.filter(summary__in=["viewed", "changed"]).order_by("pk")
                .values_list("summary", flat=True)) == ["viewed", "changed"]
    assert verify_chain() is None


def test_a_row_refused_at_its_commit_fails_the_request(clinician):
    """The rows come back before the commit checks the foreign keys: a row refused there is
    not taken for written."""
    record(clinician, Action.LOGIN, summary="creates the chain head")
    nobody = User(pk=2**40, username="nobody")  # no such account: the actor's key fails
    with pytest.raises(DatabaseError, match="SQLSTATE 23503"), aside.waiting():
        record(nobody, Action.VIEW, summary="refused")
    assert not AuditEvent.objects.filter(summary="refused").exists()
    assert verify_chain() is None


def test_a_row_found_lost_inside_a_transaction_fails_rather_than_join_it(clinician):
    """Written again there, it would roll back with that transaction: the request fails."""
    record(clinician, Action.LOGIN, summary="creates the chain head")
    release, holder, held = chain_head_held()
    with pytest.raises(DatabaseError, match="inside a transaction"), aside.waiting():
        record(clinician, Action.VIEW, summary="in flight")  # waits for the head
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)",
                           [connections[aside.ALIAS].connection.info.backend_pid])
        release.set()
        result(holder, held)
        with transaction.atomic():
            aside.wait()
    assert not AuditEvent.objects.filter(summary="in flight").exists()


def test_text_with_a_nul_byte_is_refused_not_cut(clinician):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    with pytest.raises(ValueError, match="NUL"), aside.waiting():
        record(clinician, Action.VIEW, summary="cut\x00here")
    assert not AuditEvent.objects.filter(action=Action.VIEW).exists()


def test_an_answer_that_does_not_come_is_given_up_and_the_row_written_again(
        clinician, monkeypatch):
    record(clinician, Action.LOGIN, summary="creates the chain head")
    monkeypatch.setattr(aside, "ANSWER_TIMEOUT_S", 0.3)
    release, holder, held = chain_head_held()

    def request():
        with aside.waiting():
            record(clinician, Action.VIEW, summary="no answer")  # waits for the head

    page, done = in_thread(request)
    page.join(1.0)  # given up on the answer; written again, waiting for the head itself
    release.set()
    result(holder, held)
    result(page, done)
    # The first statement may still commit once it gets the head: twice at worst, never not.
    assert AuditEvent.objects.filter(summary="no answer").count() >= 1
    assert verify_chain() is None
