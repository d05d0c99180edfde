"""A save locks the audit chain head only for its audit rows, not while the course is
re-evaluated (audit.log: writers write their audit rows last, under ``audited``).

Every page of a patient's record audits the view, so every reader takes the chain head's lock
for a moment. A save that wrote its audit row first held that lock through the course's
re-evaluation, and every clinician opening a record waited for it.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments.actions import sign_assessment
from assessments.models import Assessment
from audit.log import audited, record, verify_chain
from audit.models import Action, AuditEvent, ChainHead
from courses import actions as course_actions
from courses import evaluation
from courses.actions import end_course, record_session
from courses.evaluation import refresh_evaluation
from courses.models import TreatmentSession
from patients.actions import create_patient, update_patient
from patients.models import Patient
from tests.conftest import PAGE_DATABASES, in_thread, result, sent, verified_login
from tests.factories import AppointmentFactory, CourseFactory, PatientFactory, at

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serializes all writers with one database lock, so a reader's audit row "
    "waits for any open write whatever its order; the chain head's row lock, and concurrent "
    "transactions, are PostgreSQL's",
)

AUDIT_TABLES = (AuditEvent._meta.db_table, ChainHead._meta.db_table)


def is_audit_write(sql: str) -> bool:
    return any(f'"{table}"' in sql for table in AUDIT_TABLES)


def written_after_the_first_audit_write(queries) -> list[str]:
    """The statements an action sent from its first audit write on (savepoints left out)."""
    statements = sent(queries)
    first = next(i for i, sql in enumerate(statements) if is_audit_write(sql))
    assert any(sql.lstrip().startswith(("INSERT", "UPDATE")) for sql in statements[:first]), (
        "the change comes before its audit rows"
    )
    return statements[first:]


def new_session(course) -> TreatmentSession:
    return TreatmentSession(
        course=course, started_at=at(course.started_on + timedelta(days=1)), route="iv",
        dose_mg_per_kg=Decimal("0.5"), dose_mg=Decimal("40.0"), infusion_minutes=40,
    )


# Each gives the action to run, ready, and the rows it records.

def log_a_session_fulfilling_an_appointment(clinician):
    course = CourseFactory(created_by=clinician)
    AppointmentFactory(course=course, starts_at=at(course.started_on + timedelta(days=1)))
    return (
        lambda: record_session(clinician, new_session(course), [("nausea", "mild")]),
        [(Action.CREATE, "courses.TreatmentSession"), (Action.UPDATE, "clinic.Appointment")],
    )


def end_a_course_with_booked_appointments(clinician):
    course = CourseFactory(created_by=clinician)
    AppointmentFactory.create_batch(2, course=course)
    return (
        lambda: end_course(clinician, course, course.started_on + timedelta(30), "completed"),
        [(Action.END, "courses.Course"), (Action.CANCEL, "clinic.Appointment"),
         (Action.CANCEL, "clinic.Appointment")],
    )


def sign_a_score(clinician):
    course = CourseFactory(created_by=clinician)
    return (
        lambda: sign_assessment(clinician, Assessment(
            course=course, instrument="madrs", items=[4, 4, 4, 4, 3, 4, 3, 4, 3, 3],
            administered_at=at(course.started_on, 12),
        )),
        [(Action.SIGN, "assessments.Assessment")],
    )


def register_a_patient_with_a_weight(clinician):
    patient = PatientFactory.build()
    return (
        lambda: create_patient(clinician, patient, Decimal("80.5")),
        [(Action.CREATE, "patients.Patient"), (Action.CREATE, "patients.WeightRecord")],
    )


def change_a_diagnosis(clinician):
    patient = Patient.objects.get(pk=CourseFactory(created_by=clinician).patient_id)
    before = {"psychotic_features": patient.psychotic_features}
    patient.psychotic_features = not patient.psychotic_features
    return (
        lambda: update_patient(clinician, patient, before, ["psychotic_features"]),
        [(Action.UPDATE, "patients.Patient")],
    )


@pytest.mark.parametrize("scenario", [
    log_a_session_fulfilling_an_appointment, end_a_course_with_booked_appointments,
    sign_a_score, register_a_patient_with_a_weight, change_a_diagnosis,
], ids=lambda scenario: scenario.__name__)
def test_an_action_writes_its_audit_rows_last(clinician, scenario):
    record(clinician, Action.VIEW, summary="creates the chain head")
    act, expected = scenario(clinician)
    with CaptureQueriesContext(connection) as queries:
        act()
    # From the first audit write to the commit, nothing but audit writes: the course's
    # re-evaluation, and the writes of an action it runs (fulfilling or cancelling an
    # appointment), come before. The rows keep the order in which they were recorded.
    tail = written_after_the_first_audit_write(queries)
    assert all(is_audit_write(sql) for sql in tail), tail
    if connection.vendor == "postgresql":
        assert len(tail) == len(expected)  # one statement a row
    rows = AuditEvent.objects.exclude(action=Action.VIEW).order_by("id")
    assert [(row.action, row.object_type) for row in rows] == expected
    assert verify_chain() is None


def test_an_action_that_fails_after_recording_writes_no_row(clinician, monkeypatch):
    kept = record(clinician, Action.VIEW, summary="kept")
    course = CourseFactory(created_by=clinician)

    def fails(course):
        raise RuntimeError("the re-evaluation failed")

    monkeypatch.setattr(course_actions, "refresh_evaluation", fails)
    with pytest.raises(RuntimeError):
        record_session(clinician, new_session(course), [])
    assert not TreatmentSession.objects.exists()
    assert list(AuditEvent.objects.values_list("summary", flat=True)) == ["kept"]
    assert ChainHead.objects.get().last_id == kept.pk
    assert verify_chain() is None


def test_rows_recorded_in_a_part_of_an_action_that_rolls_back_are_not_written(clinician):
    @audited()
    def inner(summary):
        record(clinician, Action.UPDATE, object_type="tests.Thing", summary=summary)
        raise RuntimeError("the inner action failed")

    @audited()
    def outer():
        record(clinician, Action.UPDATE, object_type="tests.Thing", summary="outer")
        with pytest.raises(RuntimeError):  # an action it runs fails, and is let go
            inner("inner action")
        with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
            record(clinician, Action.UPDATE, object_type="tests.Thing", summary="savepoint")
            raise RuntimeError("a part of the action failed")
        with transaction.atomic():  # a savepoint kept: its row is written at once, with it
            record(clinician, Action.UPDATE, object_type="tests.Thing", summary="kept part")
        record(clinician, Action.UPDATE, object_type="tests.Thing", summary="outer again")

    outer()
    assert list(AuditEvent.objects.values_list("summary", flat=True)) == [
        "kept part", "outer", "outer again",
    ]
    assert verify_chain() is None


def test_record_outside_an_action_writes_at_once(clinician):
    event = record(clinician, Action.VIEW, summary="a page view")
    assert AuditEvent.objects.get(pk=event.pk).summary == "a page view"

    @audited()
    def action():
        held = record(clinician, Action.UPDATE, object_type="tests.Thing", summary="held")
        assert held.pk is None and not AuditEvent.objects.filter(summary="held").exists()
        return held

    held = action()
    assert AuditEvent.objects.get(pk=held.pk).summary == "held"  # saved as the action ended


# Concurrent transactions (PostgreSQL: each thread has its own connection)

# How long the save's re-evaluation waits for the page view. A page view takes milliseconds;
# this only bounds how long a failing run (the view blocked by the save) takes.
PATIENCE = 20


@on_postgresql
@pytest.mark.django_db(transaction=True, databases=PAGE_DATABASES)
def test_a_page_view_is_not_blocked_while_a_save_re_evaluates_the_course(
    client, clinician, monkeypatch
):
    record(clinician, Action.VIEW, summary="creates the chain head")
    course = CourseFactory(created_by=clinician)
    refresh_evaluation(course)  # evaluated: the page shows it without evaluating again
    verified_login(client, clinician)

    evaluating = threading.Event()  # the save is inside its re-evaluation
    viewed = threading.Event()  # the page view has its response
    during_evaluation = []  # whether the view finished while the save was still evaluating
    real_evaluate = evaluation.evaluate

    def slow_evaluate(facts, rules):
        # The save's evaluation waits (up to PATIENCE) for the page view to finish: a view
        # that needs a lock the save holds never finishes in that time.
        if threading.current_thread() is saver:
            evaluating.set()
            during_evaluation.append(viewed.wait(PATIENCE))
        return real_evaluate(facts, rules)

    monkeypatch.setattr(evaluation, "evaluate", slow_evaluate)

    def save() -> TreatmentSession:
        return record_session(clinician, new_session(course), [])

    def view() -> int:
        assert evaluating.wait(PATIENCE), "the save never reached its re-evaluation"
        response = client.get(reverse("patients:detail", args=[course.patient_id]))
        viewed.set()
        return response.status_code

    saver, saved = in_thread(save)
    viewer, status = in_thread(view)
    assert result(viewer, status, timeout=PATIENCE + 10) == 200
    session = result(saver, saved, timeout=PATIENCE + 10)

    assert during_evaluation == [True], (
        "the page view waited for the save: the save held the audit chain head's lock "
        "during its re-evaluation"
    )
    # Both were audited, the view first: it was written while the save was re-evaluating.
    view_row = AuditEvent.objects.get(action=Action.VIEW, patient_id=course.patient_id)
    session_row = AuditEvent.objects.get(action=Action.CREATE, object_id=str(session.pk))
    assert view_row.pk < session_row.pk
    assert verify_chain() is None
