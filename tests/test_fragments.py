"""The course page and the referral report are served from cached HTML (ketacare.fragments):
every change made through the app shows on the next page, whoever reads it."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts import actions as staff_actions
from accounts.models import Role
from assessments.actions import correct_assessment, sign_assessment
from assessments.models import Assessment
from audit.log import snapshot
from courses.actions import decide_flag, end_course, record_session, start_course
from courses.models import TreatmentSession
from ketacare import metrics
from ketacare.fragments import CSRF_SLOT, cached_html, fragment_key
from patients.actions import add_medication, create_patient, update_patient
from patients.models import Medication
from tests.conftest import verified_login
from tests.factories import (
    CourseFactory,
    PatientFactory,
    PriorTrialFactory,
    UserFactory,
    WeightFactory,
    at,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(clinician, referrer):
    course = CourseFactory(patient=PatientFactory(referring_provider=referrer),
                           started_on=date(2026, 2, 1), created_by=clinician)
    WeightFactory(patient=course.patient, weight_kg="80.0", measured_on=date(2026, 1, 1))
    PriorTrialFactory.create_batch(2, patient=course.patient)
    return course


def no_signal_after_six(clinician, course) -> None:
    """Baseline 36, six sessions, then 29: the engine raises NO_SIGNAL_AFTER_4."""
    score(clinician, course, 0, [4, 4, 4, 4, 3, 4, 3, 4, 3, 3])
    for day in range(1, 12, 2):
        log_session(clinician, course, day)
    score(clinician, course, 12, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2])


def log_session(clinician, course, day: int, **fields) -> TreatmentSession:
    return record_session(clinician, TreatmentSession(
        course=course, started_at=at(course.started_on + timedelta(days=day)), route="iv",
        dose_mg_per_kg=Decimal("0.5"), dose_mg=Decimal("40.0"), infusion_minutes=40, **fields,
    ), [])


def score(clinician, course, day: int, items: list[int]) -> Assessment:
    return sign_assessment(clinician, Assessment(
        course=course, instrument="madrs", items=items,
        administered_at=at(course.started_on + timedelta(days=day), 12),
    ))


def _without_countdown(body: str) -> str:
    """What differs between two requests: the logoff countdown (by a second) and the logout
    form's CSRF token."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)
    return re.sub(r'data-idle-seconds="\d+"', "", body)


def page(client, course) -> str:
    response = client.get(reverse("courses:detail", args=[course.pk]))
    assert response.status_code == 200
    return response.content.decode()


def report(client, course) -> str:
    response = client.get(reverse("reports:patient", args=[course.patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_course_page_shows_each_change_made_after_it_was_cached(as_user, clinician, course):
    client = as_user(clinician)
    first = page(client, course)
    assert _without_countdown(page(client, course)) == _without_countdown(first)  # cached
    assert "No sessions yet." in first

    log_session(clinician, course, 1, stop_reason="")
    assert "No sessions yet." not in page(client, course)

    original = score(clinician, course, 2, [4] * 10)
    assert ">40<" in page(client, course)
    correct_assessment(clinician, original, Assessment(
        course=course, instrument="madrs", items=[3] * 10, administered_at=original.administered_at,
    ), reason="item 1 mis-scored")
    body = page(client, course)
    assert ">30<" in body and "corrected" in body

    add_medication(clinician, Medication(patient=course.patient, name="lorazepam",
                                         dose="1 mg", started_on=course.started_on))
    assert "lorazepam" in page(client, course)


def test_a_decision_shows_at_once(as_user, clinician, course):
    no_signal_after_six(clinician, course)
    client = as_user(clinician)
    assert "reviewed with the patient" not in page(client, course)
    decide_flag(clinician, course, "NO_SIGNAL_AFTER_4", "declined",
                reason="reviewed with the patient")
    assert "reviewed with the patient" in page(client, course)


def test_a_renamed_clinician_is_signed_by_the_new_name(as_user, clinician, clinic_admin, course):
    no_signal_after_six(clinician, course)
    decide_flag(clinician, course, "NO_SIGNAL_AFTER_4", "declined", reason="reviewed")
    referrer = course.patient.referring_provider
    assert clinician.signature in page(as_user(clinician), course)
    assert clinician.signature in report(as_user(referrer), course)

    before = snapshot(clinician)
    clinician.last_name, clinician.credentials = "Okonkwo-Bell", "NP"
    staff_actions.update_user(clinic_admin, clinician, before, ["last_name", "credentials"])
    assert "Okonkwo-Bell, NP" in page(as_user(clinician), course)
    assert "Okonkwo-Bell, NP" in report(as_user(referrer), course)


def test_each_role_gets_its_own_page(as_user, clinician, clinic_admin, course):
    no_signal_after_six(clinician, course)
    assert "Decline…" in page(as_user(clinician), course)
    assert "Decline…" not in page(as_user(clinic_admin), course)  # the same course, just after
    assert "Decline…" in page(as_user(clinician), course)


def test_the_report_shows_a_new_session_and_an_edited_patient(as_user, clinician, referrer,
                                                              course):
    client = as_user(referrer)
    assert "No sessions yet." in report(client, course)
    log_session(clinician, course, 1, dissociation="moderate")
    body = report(client, course)
    assert "No sessions yet." not in body and "Moderate" in body

    patient = course.patient
    before = snapshot(patient)
    patient.diagnosis = "bipolar_ii"
    update_patient(clinician, patient, before, ["diagnosis"])
    assert patient.get_diagnosis_display() in report(client, course)


def test_a_new_course_shows_in_the_report(as_user, clinician, referrer, course):
    client = as_user(referrer)
    assert report(client, course).count("Course from") == 1
    end_course(clinician, course, course.started_on + timedelta(80), "completed")
    start_course(clinician, CourseFactory.build(patient=course.patient,
                                                started_on=course.started_on + timedelta(90),
                                                created_by=clinician))
    assert report(client, course).count("Course from") == 2


def test_fragments_are_rendered_once_per_version():
    renders = []

    def render():
        renders.append(1)
        return "<p>x</p>"

    def counted(outcome: str) -> float:
        return metrics._process.get_sample_value("ketacare_fragment_cache_lookups_total",
                                                 {"outcome": outcome}) or 0

    hits, misses = counted("hit"), counted("miss")
    for parts in [(1, "a"), (1, "a"), (1, "b"), (2, "a"), (1, "a")]:
        assert cached_html("test", parts, render) == "<p>x</p>"
    assert len(renders) == 3
    # Each lookup is counted for the operator's metrics (and the bench's hit rate).
    assert (counted("hit") - hits, counted("miss") - misses) == (2, 3)
    key = fragment_key("report", (1, "a long part with spaces: and colons", None))
    assert len(key) < 100 and " " not in key


def test_the_report_of_a_patient_with_no_course_shows_an_edit(as_user, clinician, referrer):
    patient = PatientFactory(referring_provider=referrer, diagnosis="mdd")
    client = as_user(referrer)
    url = reverse("reports:patient", args=[patient.pk])
    assert "No treatment course yet." in client.get(url).content.decode()
    before = snapshot(patient)
    patient.diagnosis = "bipolar_ii"
    update_patient(clinician, patient, before, ["diagnosis"])
    assert patient.get_diagnosis_display() in client.get(url).content.decode()


def test_the_dashboard_counts_again_after_a_change(as_user, clinician, clinic_admin):
    client = as_user(clinic_admin)
    period = {"started_from": "2026-01-01", "started_to": "2026-12-31"}

    def courses() -> int:
        body = client.get(reverse("outcomes:dashboard"), period).content.decode()
        return int(re.search(r"<strong>(\d+)</strong> course", body).group(1))

    assert courses() == courses() == 0
    start_course(clinician, CourseFactory.build(patient=PatientFactory(),
                                                started_on=date(2026, 3, 2), created_by=clinician))
    assert courses() == 1


def test_the_patient_page_and_list_show_a_change_at_once(as_user, clinician, course):
    client = as_user(clinician)
    url = reverse("patients:detail", args=[course.patient.pk])
    assert "esomeprazole" not in client.get(url).content.decode()
    add_medication(clinician, Medication(patient=course.patient, name="esomeprazole",
                                         dose="100 mg", started_on=course.started_on))
    assert "esomeprazole" in client.get(url).content.decode()

    assert "Newlyregistered" not in client.get(reverse("patients:list")).content.decode()
    create_patient(clinician, PatientFactory.build(last_name="Newlyregistered"))
    assert "Newlyregistered" in client.get(reverse("patients:list")).content.decode()


def test_a_cached_form_carries_each_readers_own_csrf_token(clinician, course):
    other = UserFactory(role=Role.CLINICIAN)
    add_medication(clinician, Medication(patient=course.patient, name="zz-unknown-drug",
                                         dose="1 mg", started_on=course.started_on))
    url = reverse("patients:detail", args=[course.patient.pk])
    tokens = []
    for user in (clinician, other):  # the second page comes from the cache
        client = Client(enforce_csrf_checks=True)
        verified_login(client, user)
        body = client.get(url).content.decode()
        assert CSRF_SLOT not in body
        medication = Medication.objects.get(name="zz-unknown-drug")
        action = reverse("patients:medication-classify", args=[medication.pk])
        form = body[body.index(f'action="{action}"'):]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        # Refused without the token, accepted with the reader's own.
        assert client.post(action, {"drug_class": "other"}).status_code == 403
        response = client.post(action, {"csrfmiddlewaretoken": token, "drug_class": "other"})
        assert response.status_code == 302
        medication.drug_class = "unclassified"  # for the next reader's form
        medication.save()
        tokens.append(token)
    assert tokens[0] != tokens[1]


def record_versions(patient_id: int) -> tuple:
    """The versions of a page of the patient's record, asked for apart in plain SQL (as pages
    once read them): the id of the last audited change to the record that is not a view, and
    when any account last changed."""
    from django.db import connection

    from accounts.models import User
    from audit.models import Action, AuditEvent
    from ketacare.fragments import _stamp

    events, users = AuditEvent._meta.db_table, User._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {events} WHERE patient_id = %s"  # noqa: S608
            f"        AND NOT (action = '{Action.VIEW.value}')),"
            f"       (SELECT MAX(changed_at) FROM {users})",
            [patient_id],
        )
        last_change, staff_changed = cursor.fetchone()
    return (last_change or 0, _stamp(staff_changed))


def test_the_versions_read_with_a_page_are_those_asked_for_apart(clinician, clinic_admin,
                                                                 referrer, course):
    """The course page, the patient page and the report read the record's versions in the
    statement that reads their course or patient: the same versions record_versions gives,
    moved by a change to the record or to any account, not by a view."""
    from accounts.access import (
        get_course_for_user,
        get_patient_for_user,
        get_referred_patient_for_user,
    )
    from ketacare.fragments import versions_read_with
    from patients.actions import record_view

    def read() -> list[tuple]:
        return [versions_read_with(get_course_for_user(clinician, course.pk, versions=True)),
                versions_read_with(get_patient_for_user(clinician, course.patient_id,
                                                        versions=True)),
                versions_read_with(get_referred_patient_for_user(referrer, course.patient_id))]

    first = read()
    assert first == [record_versions(course.patient_id)] * 3
    record_view(clinician, course.patient)
    assert read() == first
    log_session(clinician, course, 1)
    after_session = read()
    assert after_session == [record_versions(course.patient_id)] * 3
    assert after_session[0][0] > first[0][0] and after_session[0][1] == first[0][1]
    before = snapshot(clinician)
    clinician.last_name = "Okonkwo-Bell"
    staff_actions.update_user(clinic_admin, clinician, before, ["last_name"])
    renamed = read()
    assert renamed == [record_versions(course.patient_id)] * 3
    assert renamed[0][0] == after_session[0][0] and renamed[0][1] != after_session[0][1]
