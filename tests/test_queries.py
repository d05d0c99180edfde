"""The patient list and the course page cost the same number of queries for 2 rows or 40,
rendered or from the cache (ketacare.fragments).

The rows here come from factories; each batch is audited as the app's actions audit theirs,
which is what tells the cache that the data changed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.log import record
from audit.models import Action
from courses.evaluation import refresh_evaluation
from tests.conftest import audit_statements
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
    at,
)

pytestmark = pytest.mark.django_db


def count_queries(client, url) -> int:
    """Statements sent for one page, leaving out the test transaction's savepoints."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return sum(1 for q in queries if "SAVEPOINT" not in q["sql"])


def test_patient_list_queries_do_not_grow_with_patients(as_user, clinician):
    client = as_user(clinician)
    def add_patients(n):
        for _ in range(n):
            course = CourseFactory(patient=PatientFactory())
            record(clinician, Action.CREATE, course, patient_id=course.patient_id)

    add_patients(2)
    few = count_queries(client, reverse("patients:list"))
    add_patients(20)
    # Rendered: session, user, data version, count, page of patients, their active courses.
    assert count_queries(client, reverse("patients:list")) == few == 6
    # From the cache: session, user, data version.
    assert count_queries(client, reverse("patients:list")) == 3


def add_rows(course, n):
    start = course.sessions.count()
    for i in range(start, start + n):
        day = course.started_on + timedelta(days=i + 1)
        SessionFactory(course=course, started_at=at(day))
        AssessmentFactory(course=course, administered_at=at(day, 8))
        MedicationFactory(patient=course.patient, name=f"med{i}", drug_class="other")
    refresh_evaluation(course)  # as the actions do when they add rows
    record(None, Action.CREATE, course, patient_id=course.patient_id)


def test_course_page_queries_do_not_grow_with_sessions(as_user, clinician):
    client = as_user(clinician)
    course = CourseFactory()
    add_rows(course, 2)
    url = reverse("courses:detail", args=[course.pk])
    few = count_queries(client, url)
    add_rows(course, 20)
    # Rendered: session, user, course+patient, the audit of the view, versions, sessions,
    # their adverse events, assessments, flag decisions, medications today, phase changes,
    # self-report plans with their invitations counted.
    assert count_queries(client, url) == few == 11 + audit_statements()
    # From the cache (the same data): none of the record's own queries.
    assert count_queries(client, url) == 4 + audit_statements()
