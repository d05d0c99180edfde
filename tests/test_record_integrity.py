"""Record integrity (SPEC §7): one open course per patient, confirmations before a session is
saved, and sessions corrected by signed amendments or voided, never edited silently."""

import io
from datetime import date, timedelta
from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEvent
from clinical.vocab import Phase
from courses import actions
from courses.evaluation import refresh_evaluation
from courses.models import (
    AdverseEvent,
    Course,
    SessionAmendment,
    SessionVoid,
    TreatmentSession,
)
from exports.summaries import select_courses, write_csv
from reports.context import report_context
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    SessionFactory,
    UserFactory,
    WeightFactory,
    at,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def errors(response) -> dict:
    form = response.context["form"]
    return {name: " ".join(messages) for name, messages in form.errors.items()}


# -- one open course per patient -------------------------------------------------------------

def test_the_database_refuses_a_second_open_course(clinician):
    course = CourseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CourseFactory(patient=course.patient, created_by=clinician)


def test_an_ended_course_leaves_room_for_the_next(clinician):
    ended = CourseFactory(phase=Phase.ENDED, ended_on=date(2026, 3, 1))
    CourseFactory(patient=ended.patient, phase=Phase.ENDED)
    CourseFactory(patient=ended.patient)  # one open beside two ended
    assert ended.patient.courses.active().count() == 1


def test_the_form_names_the_open_course_and_links_to_it(as_user, clinician):
    course = CourseFactory(started_on=date(2026, 2, 1))
    client = as_user(clinician)
    url = reverse("courses:new", args=[course.patient.pk])
    page = client.get(url)
    assert "already has an open course, started 2026-02-01" in page.content.decode()
    assert reverse("courses:detail", args=[course.pk]) in page.content.decode()
    response = client.post(url, {"started_on": TODAY.isoformat(), "phase": "induction"})
    assert response.status_code == 200
    assert "already has an open course, started 2026-02-01" in errors(response)["__all__"]
    assert Course.objects.count() == 1


def test_the_migration_check_names_patients_with_two_open_courses():
    """A database from before the constraint could hold two open courses: the migration stops
    and names the patients, and leaves the decision to a clinician."""
    if connection.vendor != "postgresql":  # SQLite cannot alter a table inside the test's
        pytest.skip("transaction")
    migration = import_module("courses.migrations.0006_record_integrity")
    course = CourseFactory(patient__record_number="MRN-DUP")
    migration.refuse_two_open_courses(apps, None)  # one open course: fine
    constraint = next(c for c in Course._meta.constraints
                      if c.name == "one_open_course_per_patient")
    with connection.schema_editor() as editor:  # as before the migration (rolled back)
        editor.remove_constraint(Course, constraint)
    CourseFactory(patient=course.patient)
    with pytest.raises(RuntimeError, match=r"MRN-DUP \(2 open\)"):
        migration.refuse_two_open_courses(apps, None)


# -- confirmations before a session is saved -------------------------------------------------

@pytest.fixture
def course(clinician):
    course = CourseFactory(started_on=TODAY - timedelta(days=30))
    WeightFactory(patient=course.patient, measured_on=TODAY - timedelta(days=20),
                  weight_kg=Decimal("80.0"))
    return course


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def session_data(**overrides) -> dict:
    data = {
        "started_at": _local(timezone.now() - timedelta(hours=3)), "route": "iv",
        "dose_mg_per_kg": "0.5", "weight_basis": "actual", "infusion_minutes": "40",
        "dissociation": "mild", "status": "completed", "bp_pre_systolic": "128",
        "bp_pre_diastolic": "82", "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
        "note": "typed before the warning",
    }
    data.update(overrides)
    return data


def post_session(client, course, **overrides):
    return client.post(reverse("courses:session-new", args=[course.pk]),
                       session_data(**overrides))


def test_a_critical_bp_asks_for_a_confirmation_and_keeps_what_was_typed(as_user, clinician,
                                                                       course):
    client = as_user(clinician)
    response = post_session(client, course, bp_pre_systolic="185", bp_pre_diastolic="112")
    assert response.status_code == 200
    assert "185/112 mmHg, above the critical limit of 180/110" in errors(response)[
        "confirmed_critical_bp"]
    body = response.content.decode()
    assert 'id="confirmations"' in body and "alert-warning" in body
    assert "typed before the warning" in body and 'value="185"' in body
    assert not TreatmentSession.objects.exists()

    response = post_session(client, course, bp_pre_systolic="185", bp_pre_diastolic="112",
                            confirmed_critical_bp="on")
    assert response.status_code == 302
    session = TreatmentSession.objects.get()
    assert session.confirmed_critical_bp
    assert not session.confirmed_recent_session and not session.confirmed_old_weight
    event = AuditEvent.objects.get(object_type="courses.TreatmentSession")
    assert event.after["confirmed_critical_bp"] is True
    assert "blood pressure above the critical limit confirmed" in event.summary


@pytest.mark.parametrize("systolic,diastolic,asked", [
    ("180", "110", False), ("181", "90", True), ("150", "111", True),
])
def test_the_critical_limit_is_above_180_110(as_user, clinician, course, systolic, diastolic,
                                             asked):
    response = post_session(as_user(clinician), course, bp_pre_systolic=systolic,
                            bp_pre_diastolic=diastolic)
    assert (response.status_code == 200) == asked


def test_a_confirmation_not_asked_for_is_not_recorded(as_user, clinician, course):
    post_session(as_user(clinician), course, confirmed_critical_bp="on",
                 confirmed_recent_session="on", confirmed_old_weight="on")
    session = TreatmentSession.objects.get()
    assert not (session.confirmed_critical_bp or session.confirmed_recent_session
                or session.confirmed_old_weight)


def test_another_session_within_24_hours_asks_for_a_confirmation(as_user, clinician, course):
    earlier = SessionFactory(course=course, started_at=timezone.now() - timedelta(hours=20))
    client = as_user(clinician)
    response = post_session(client, course)
    assert "less than 24 h" in errors(response)["confirmed_recent_session"]
    assert post_session(client, course, confirmed_recent_session="on").status_code == 302
    assert TreatmentSession.objects.exclude(pk=earlier.pk).get().confirmed_recent_session


def test_a_voided_session_does_not_count_as_a_recent_one(as_user, clinician, course):
    earlier = SessionFactory(course=course, started_at=timezone.now() - timedelta(hours=20))
    actions.void_session(clinician, earlier, read_version=0, reason="wrong patient")
    assert post_session(as_user(clinician), course).status_code == 302


def test_a_session_a_day_and_more_apart_is_not_asked_about(as_user, clinician, course):
    SessionFactory(course=course, started_at=timezone.now() - timedelta(hours=27, minutes=1))
    assert post_session(as_user(clinician), course).status_code == 302


def test_a_weight_older_than_90_days_asks_for_a_confirmation(as_user, clinician):
    course = CourseFactory(started_on=TODAY - timedelta(days=200))
    # 91 days before the day of the session (three hours ago: in the first hours after
    # midnight, yesterday), not before today.
    session_day = timezone.localdate(timezone.now() - timedelta(hours=3))
    WeightFactory(patient=course.patient, measured_on=session_day - timedelta(days=91))
    client = as_user(clinician)
    response = post_session(client, course)
    assert "91 days old (more than 90)" in errors(response)["confirmed_old_weight"]
    assert post_session(client, course, confirmed_old_weight="on").status_code == 302
    assert TreatmentSession.objects.get().confirmed_old_weight
    # a fixed dose does not depend on the weight: nothing to confirm
    response = post_session(client, course, route="intranasal", dose_mg="56",
                            started_at=_local(timezone.now() - timedelta(minutes=5)),
                            confirmed_recent_session="on")
    assert response.status_code == 302


# -- amendments ------------------------------------------------------------------------------

@pytest.fixture
def session(course, clinician):
    session = SessionFactory(
        course=course, clinician=clinician, started_at=at(TODAY - timedelta(days=2)),
        bp_pre_systolic=128, bp_pre_diastolic=82, weight_kg_used=Decimal("80.0"),
    )
    refresh_evaluation(course)
    return session


def amend_data(session, **overrides) -> dict:
    data = session_data(started_at=_local(session.started_at), note="", dissociation="none")
    data.update(version=str(session.version), reason="")
    data.update(overrides)
    return data


def test_an_amendment_keeps_the_value_it_replaces(as_user, clinician, session):
    client = as_user(clinician)
    url = reverse("courses:session-amend", args=[session.pk])
    form = client.get(url).context["form"]
    assert form["bp_pre_systolic"].value() == 128  # starts from the session as saved
    response = client.post(url, amend_data(session, bp_pre_systolic="138", hr_pre="71",
                                           reason="read off the wrong monitor"))
    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.bp_pre_systolic, session.hr_pre, session.version) == (138, 71, 1)
    rows = list(SessionAmendment.objects.order_by("field"))
    assert [(a.field, a.before, a.after) for a in rows] == [
        ("bp_pre_systolic", "128", "138"), ("hr_pre", "–", "71"),
    ]
    assert {(a.signed_by, a.reason, a.kind) for a in rows} == {
        (clinician, "read off the wrong monitor", "amendment")
    }
    event = AuditEvent.objects.get(action=Action.AMEND)
    assert event.actor == clinician and event.patient_id == session.course.patient_id
    assert event.before == {"bp_pre_systolic": 128, "hr_pre": None}
    assert event.after == {"bp_pre_systolic": 138, "hr_pre": 71}
    page = client.get(reverse("courses:session-detail", args=[session.pk])).content.decode()
    assert "<del class=\"text-muted\">128</del> → 138" in page
    assert "read off the wrong monitor" in page


def test_adverse_events_noticed_afterwards_are_added(as_user, clinician, session):
    AdverseEvent.objects.create(session=session, description="nausea", severity="mild")
    client = as_user(clinician)
    url = reverse("courses:session-amend", args=[session.pk])
    assert "Recorded: nausea (mild)" in client.get(url).content.decode()
    response = client.post(url, amend_data(session, **{"ae-0-description": "headache"}))
    assert "severity" in str(response.context["events"].errors)
    response = client.post(url, amend_data(session, **{
        "ae-0-description": "headache", "ae-0-severity": "moderate"}))
    assert response.status_code == 302
    assert [(e.description, e.severity) for e in session.adverse_events.order_by("id")] == [
        ("nausea", "mild"), ("headache", "moderate")]
    amendment = SessionAmendment.objects.get()
    assert (amendment.label, amendment.before, amendment.after) == (
        "Adverse event added", "–", "headache (moderate)")
    event = AuditEvent.objects.get(action=Action.AMEND)
    assert event.before == {"adverse_events": [["nausea", "mild"]]}
    assert event.after == {"adverse_events": [["nausea", "mild"], ["headache", "moderate"]]}
    session.course.refresh_from_db()  # re-evaluated: the worst adverse event is moderate now


def test_an_amendment_is_checked_like_a_new_session(as_user, clinician, session):
    client = as_user(clinician)
    url = reverse("courses:session-amend", args=[session.pk])
    response = client.post(url, amend_data(session, dose_mg_per_kg="1.05"))
    assert "at most 1.0 mg/kg (you entered 1.05 mg/kg)" in errors(response)["dose_mg_per_kg"]
    response = client.post(url, amend_data(session, dose_mg_per_kg="0.8"))
    assert "enhanced" in errors(response)["enhanced_monitoring"]
    response = client.post(url, amend_data(session, bp_pre_systolic="190",
                                           bp_pre_diastolic="100"))
    assert "critical limit" in errors(response)["confirmed_critical_bp"]
    assert not SessionAmendment.objects.exists()
    response = client.post(url, amend_data(session, dose_mg_per_kg="0.8",
                                           enhanced_monitoring="on"))
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.dose_mg == Decimal("64.0") and session.enhanced_monitoring


def test_an_amendment_re_evaluates_the_course(as_user, clinician, session):
    assert "BP_PRE_ELEVATED" not in {f["code"] for f in session.course.evaluation["flags"]}
    as_user(clinician).post(
        reverse("courses:session-amend", args=[session.pk]),
        amend_data(session, bp_pre_systolic="185", bp_pre_diastolic="100",
                   confirmed_critical_bp="on"),
    )
    session.course.refresh_from_db()
    flags = {f["code"]: f["severity"] for f in session.course.evaluation["flags"]}
    assert any("185/100" in f["message"] for f in session.course.evaluation["flags"]), flags


def test_nothing_changed_signs_nothing(as_user, clinician, session):
    response = as_user(clinician).post(reverse("courses:session-amend", args=[session.pk]),
                                       amend_data(session))
    assert response.status_code == 302
    assert not SessionAmendment.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.AMEND).exists()


def test_the_second_of_two_concurrent_amendments_is_refused_with_the_typing_kept(
        as_user, clinician, session):
    other = UserFactory()
    stale = amend_data(session, hr_pre="88", note="my late note")
    first = TreatmentSession.objects.get(pk=session.pk)
    first.hr_pre = 64
    actions.amend_session(other, first, read_version=0)
    response = as_user(clinician).post(reverse("courses:session-amend", args=[session.pk]),
                                       stale)
    assert response.status_code == 200
    assert "Another clinician changed this session" in errors(response)["__all__"]
    assert "Heart rate before (bpm) 64" in errors(response)["__all__"]
    body = response.content.decode()
    assert "my late note" in body and 'value="88"' in body
    session.refresh_from_db()
    assert session.hr_pre == 64 and session.version == 1
    # the form now carries the version on record: saving again goes through
    response = as_user(clinician).post(reverse("courses:session-amend", args=[session.pk]),
                                       {**stale, "version": "1"})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.hr_pre == 88


def test_discharge_is_completed_afterwards(as_user, clinician, session):
    client = as_user(clinician)
    detail = client.get(reverse("courses:session-detail", args=[session.pk])).content.decode()
    assert "Complete discharge" in detail
    url = reverse("courses:session-discharge", args=[session.pk])
    response = client.post(url, {
        "discharged_at": _local(session.started_at - timedelta(minutes=5)),
        "version": "0",
    })
    assert "after the session started" in errors(response)["discharged_at"]
    response = client.post(url, {
        "discharged_at": _local(session.started_at + timedelta(hours=2)),
        "recovery_minutes": "100", "bp_discharge_systolic": "124",
        "bp_discharge_diastolic": "78", "hr_discharge": "70", "version": "0",
    })
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.recovery_minutes == 100 and session.bp_discharge_systolic == 124
    assert set(SessionAmendment.objects.values_list("kind", flat=True)) == {"discharge"}
    assert SessionAmendment.objects.count() == 5


def test_a_discharge_in_the_future_or_before_ready_to_leave_is_refused(as_user, clinician,
                                                                       course):
    session = SessionFactory(course=course, clinician=clinician,
                             started_at=(timezone.now() - timedelta(minutes=30)).replace(
                                 second=0, microsecond=0), ready_minutes=90)
    url = reverse("courses:session-discharge", args=[session.pk])
    client = as_user(clinician)
    future = client.post(url, {"discharged_at": _local(timezone.now() + timedelta(hours=2)),
                               "version": "0"})
    assert errors(future)["discharged_at"] == "The discharge cannot be in the future."
    # The session's REMS answer (ready to leave after 90 minutes) must still hold.
    early = client.post(url, {"discharged_at": _local(session.started_at + timedelta(minutes=85)),
                              "version": "0"})
    assert errors(early)["discharged_at"] == (
        "Ready to leave after 90 minutes is after the end of monitoring (85 minutes after the "
        "first device).")
    session.refresh_from_db()
    assert session.discharged_at is None and not SessionAmendment.objects.exists()


def test_an_ended_course_refuses_amendments_and_voids(as_user, clinician, session):
    actions.end_course(clinician, session.course, TODAY, "completed")
    client = as_user(clinician)
    for name in ("courses:session-amend", "courses:session-discharge", "courses:session-void"):
        url = reverse(name, args=[session.pk])
        response = client.post(url, {**amend_data(session, hr_pre="90"), "reason": "late"},
                               follow=True)
        assert "The course has ended" in response.content.decode(), name
    session.refresh_from_db()
    assert session.hr_pre is None and session.voided is None
    with pytest.raises(actions.CourseEnded):
        actions.amend_session(clinician, session, read_version=0)


def test_a_clinic_admin_reads_the_history_but_cannot_amend(as_user, clinic_admin, session):
    client = as_user(clinic_admin)
    page = client.get(reverse("courses:session-detail", args=[session.pk]))
    assert page.status_code == 200 and "Amend" not in page.content.decode()
    response = client.post(reverse("courses:session-amend", args=[session.pk]),
                           amend_data(session, hr_pre="90"))
    assert response.status_code == 403
    assert not SessionAmendment.objects.exists()


def test_the_course_page_marks_an_amended_session(as_user, clinician, session):
    client = as_user(clinician)
    course_url = reverse("courses:detail", args=[session.course.pk])
    assert "amended" not in client.get(course_url).content.decode()  # now cached
    client.post(reverse("courses:session-amend", args=[session.pk]),
                amend_data(session, hr_pre="66"))
    assert ">amended</span>" in client.get(course_url).content.decode()


# -- voids -----------------------------------------------------------------------------------

def test_a_voided_session_is_kept_struck_through_and_counts_for_nothing(as_user, clinician,
                                                                        session):
    course = session.course
    AssessmentFactory(course=course, administered_at=at(TODAY - timedelta(days=3)))
    refresh_evaluation(course)
    assert course.evaluation["sessions_completed"] == 1
    client = as_user(clinician)
    course_url = reverse("courses:detail", args=[course.pk])
    client.get(course_url)  # cached before the void
    url = reverse("courses:session-void", args=[session.pk])
    assert "reason" in errors(client.post(url, {"version": "0", "reason": ""}))
    response = client.post(url, {"version": "0", "reason": "logged on the wrong patient"})
    assert response.status_code == 302
    void = SessionVoid.objects.get()
    assert (void.session, void.voided_by, void.reason) == (
        session, clinician, "logged on the wrong patient")
    assert TreatmentSession.objects.filter(pk=session.pk).exists()  # kept
    course.refresh_from_db()
    assert course.evaluation["sessions_completed"] == 0 and course.main_route == ""
    event = AuditEvent.objects.get(action=Action.VOID)
    assert event.patient_id == course.patient_id and event.before == {"voided": False}
    assert event.after == {"voided": True, "reason": "logged on the wrong patient"}
    page = client.get(course_url).content.decode()
    assert "session-voided" in page and ">voided</span>" in page
    detail = client.get(reverse("courses:session-detail", args=[session.pk])).content.decode()
    assert "logged on the wrong patient" in detail and "Amend" not in detail
    # counted nowhere else either: the referral report and the export
    assert report_context(course.patient)["reports"][0]["sessions"] == []
    out = io.StringIO()
    write_csv(select_courses(), out)
    assert ",0," in out.getvalue().splitlines()[1]
    assert not select_courses(routes=["iv"]).exists()


def test_a_voided_session_cannot_be_amended_or_voided_again(as_user, clinician, session):
    actions.void_session(clinician, session, read_version=0, reason="entered twice")
    client = as_user(clinician)
    response = client.post(reverse("courses:session-amend", args=[session.pk]),
                           amend_data(session, hr_pre="70", version="1"), follow=True)
    assert "This session was voided" in response.content.decode()
    with pytest.raises(actions.SessionVoided):
        actions.void_session(clinician, session, read_version=1, reason="again")
    assert SessionVoid.objects.count() == 1 and not SessionAmendment.objects.exists()


def test_a_void_over_a_changed_session_is_refused(as_user, clinician, session):
    fresh = TreatmentSession.objects.get(pk=session.pk)
    fresh.hr_pre = 64
    actions.amend_session(clinician, fresh, read_version=0)
    response = as_user(clinician).post(reverse("courses:session-void", args=[session.pk]),
                                       {"version": "0", "reason": "wrong patient"})
    assert response.status_code == 200
    assert "Another clinician changed this session" in errors(response)["__all__"]
    assert 'value="wrong patient"' in response.content.decode()
    assert not SessionVoid.objects.exists()


def test_the_discharge_form_starts_at_now_on_the_day_of_the_session(as_user, clinician, course):
    recent = SessionFactory(course=course, started_at=timezone.now() - timedelta(hours=2))
    form = as_user(clinician).get(reverse("courses:session-discharge", args=[recent.pk]))
    shown = form.context["form"]["discharged_at"].value()  # naive, in the clinic's time
    assert abs(shown - timezone.localtime().replace(tzinfo=None)) < timedelta(minutes=2)
    old = SessionFactory(course=course, started_at=timezone.now() - timedelta(days=3))
    form = as_user(clinician).get(reverse("courses:session-discharge", args=[old.pk]))
    assert form.context["form"]["discharged_at"].value() is None  # the clinician says when


@pytest.mark.django_db(transaction=True)
def test_two_amendments_at_the_same_moment_save_one(clinician):
    """Both read version 0 and save at once: the row lock makes the second wait, then see the
    first's version and refuse (PostgreSQL: SQLite has one writer at a time anyway)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers")
    import threading

    from django.db import connections

    session = SessionFactory(course=CourseFactory(), clinician=clinician)
    barrier, outcomes = threading.Barrier(2), []

    def amend(hr: int) -> None:
        try:
            copy = TreatmentSession.objects.get(pk=session.pk)
            copy.hr_pre = hr
            barrier.wait()
            actions.amend_session(clinician, copy, read_version=0)
            outcomes.append("saved")
        except actions.StaleEdit:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=amend, args=(hr,)) for hr in (61, 62)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "saved"]
    assert SessionAmendment.objects.count() == 1
    session.refresh_from_db()
    assert session.version == 1 and session.hr_pre == SessionAmendment.objects.get().session.hr_pre
