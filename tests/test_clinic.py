"""Clinic settings, plans and appointments (SPEC §7): booking by the plan, moving, cancelling,
linking a session to its appointment, due and overdue, and the day sheet. Time is frozen in
the clinic's time zone (America/New_York)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import Role
from audit.log import record
from audit.models import Action, AuditEvent
from clinic import actions
from clinic.models import Appointment, AppointmentStatus, ClinicSettings, Plan
from clinical.schedules import Schedule
from clinical.vocab import Diagnosis, Route
from courses.evaluation import refresh_evaluation
from courses.models import TreatmentSession
from tests.factories import (
    CLINIC_SETTINGS_POST,
    AppointmentFactory,
    AssessmentFactory,
    CourseFactory,
    SessionFactory,
    UserFactory,
    WeightFactory,
)

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
MONDAY = date(2026, 3, 2)


def local(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


@pytest.fixture
def now(time_machine):
    """Monday 2 March 2026, 08:00 in the clinic."""
    moment = local(MONDAY, 8)
    time_machine.move_to(moment, tick=False)
    return moment


@pytest.fixture
def course(clinician, now):
    course = CourseFactory(started_on=MONDAY - timedelta(days=7), created_by=clinician)
    WeightFactory(patient=course.patient, measured_on=MONDAY - timedelta(days=10),
                  weight_kg=Decimal("80.0"))
    return course


def plan(clinician, course, schedule=Schedule.KETAMINE_INDUCTION, route=Route.IV,
         per_kg=Decimal("0.5"), mg=None, starts_on=None):
    return actions.set_plan(clinician, course, route, per_kg, mg, schedule,
                            starts_on or course.started_on)


def audit_of(obj, action=None):
    rows = AuditEvent.objects.filter(object_type=obj._meta.label, object_id=str(obj.pk))
    return rows.filter(action=action) if action else rows


# -- clinic settings -----------------------------------------------------------------------------

def settings_data(**overrides):
    return {**CLINIC_SETTINGS_POST, **overrides}


def test_it_saves_clinic_settings_with_before_and_after(as_user, clinic_admin):
    client = as_user(clinic_admin)
    page = client.get(reverse("clinic:settings"))
    assert "weekly × 4, every 2 weeks × 4–8, every 3 weeks × 4, monthly × 3–6" in (
        page.content.decode())
    response = client.post(reverse("clinic:settings"), settings_data(induction_sessions="8"))
    assert response.status_code == 302
    assert ClinicSettings.load().induction_sessions == 8
    event = AuditEvent.objects.get(object_type="clinic.ClinicSettings")
    assert event.action == Action.UPDATE and event.actor == clinic_admin
    assert (event.before["induction_sessions"], event.after["induction_sessions"]) == (6, 8)
    assert event.patient_id is None


def test_it_refuses_a_range_upside_down_naming_the_field(as_user, clinic_admin):
    response = as_user(clinic_admin).post(
        reverse("clinic:settings"), settings_data(spacing_biweekly_min="9")
    )
    assert response.status_code == 200
    assert "cannot be fewer than the fewest" in response.context["form"].errors[
        "spacing_biweekly_max"][0]
    assert not ClinicSettings.objects.exists()


def test_a_refused_setting_is_not_used_to_describe_the_schedules(as_user, clinic_admin):
    """Found by the fuzzer: 0 sessions a week passes the form field, is refused by the model's
    validation, and then divided by on the page that says why."""
    response = as_user(clinic_admin).post(
        reverse("clinic:settings"), settings_data(esketamine_induction_per_week="0")
    )
    assert response.status_code == 200
    assert "esketamine_induction_per_week" in response.context["form"].errors
    assert "twice weekly, weeks 1–4 × 8" in response.content.decode()


def test_a_plan_keeps_its_schedule_when_the_defaults_change_later(clinician, clinic_admin,
                                                                   course):
    made = plan(clinician, course)
    changed = ClinicSettings.load()
    changed.induction_sessions = 10
    actions.update_settings(clinic_admin, changed)
    made.refresh_from_db()
    assert made.schedule_text == "2–3 a week × 6"
    assert plan(clinician, course).schedule_text == "2–3 a week × 10"  # chosen again: new


# -- the plan ------------------------------------------------------------------------------------

def test_a_clinician_sets_the_plan_audited_against_the_patient(as_user, clinician, course):
    response = as_user(clinician).post(reverse("clinic:plan", args=[course.pk]), {
        "route": "intranasal", "dose_mg": "56", "schedule": "esketamine",
        "starts_on": MONDAY.isoformat(),
    })
    assert response.status_code == 302
    made = Plan.objects.get(course=course)
    assert (made.route, made.dose_mg, made.dose_mg_per_kg) == ("intranasal", Decimal("56"), None)
    assert made.step_list[0].interval_min_days == 3
    event = audit_of(made).get()
    assert (event.action, event.patient_id) == (Action.CREATE, course.patient_id)


def test_the_plan_dose_keeps_the_session_limits(as_user, clinician, course):
    response = as_user(clinician).post(reverse("clinic:plan", args=[course.pk]), {
        "route": "intranasal", "dose_mg": "70", "schedule": "esketamine",
        "starts_on": MONDAY.isoformat(),
    })
    assert "28, 56 or 84 mg" in response.context["form"].errors["dose_mg"][0]
    response = as_user(clinician).post(reverse("clinic:plan", args=[course.pk]), {
        "route": "iv", "dose_mg": "70", "schedule": "ketamine_induction",
        "starts_on": MONDAY.isoformat(),
    })
    assert "mg/kg" in response.context["form"].errors["dose_mg_per_kg"][0]
    assert not Plan.objects.exists()


# -- booking, moving, cancelling -----------------------------------------------------------------

def test_the_booking_form_proposes_the_next_due_time_by_the_plan(as_user, clinician, course):
    plan(clinician, course)
    # Sessions last Wednesday and Friday: the next is due from Sunday, a weekend: Monday.
    SessionFactory(course=course, started_at=local(MONDAY - timedelta(days=5), 10, 30))
    SessionFactory(course=course, started_at=local(MONDAY - timedelta(days=3), 10, 30))
    page = as_user(clinician).get(reverse("clinic:appointment-new", args=[course.pk]))
    form = page.context["form"]
    assert form.initial["starts_at"] == local(MONDAY, 10, 30)  # the course's usual time
    assert (form.initial["route"], form.initial["dose_mg_per_kg"]) == ("iv", Decimal("0.5"))
    # 3 more after it complete the induction series of 6, at its shortest spacing.
    assert [at.date() for at in page.context["proposal"].series] == [
        date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 9)]
    assert "Also book the rest of this step of the plan: 3 more" in page.content.decode()


def book(client, course, **overrides):
    data = {"starts_at": "2026-03-02T10:30", "route": "iv", "dose_mg_per_kg": "0.5",
            "dose_mg": "", "note": "", "submission_token": "6f1d0c1e-3c1a-4f4e-8d4a-0b5c2a4e7f1d"}
    return client.post(reverse("clinic:appointment-new", args=[course.pk]),
                       {**data, **overrides})


def test_it_books_the_rest_of_the_induction_series_at_once(as_user, clinician, course):
    plan(clinician, course)
    client = as_user(clinician)
    assert book(client, course, series="on").status_code == 302
    booked = list(Appointment.objects.order_by("starts_at"))
    assert [timezone_day(a.starts_at) for a in booked] == [
        "Mon 02", "Wed 04", "Fri 06", "Mon 09", "Wed 11", "Fri 13"]
    assert {a.booked_by for a in booked} == {clinician}
    assert AuditEvent.objects.filter(object_type="clinic.Appointment", action=Action.CREATE,
                                     patient_id=course.patient_id).count() == 6
    # The same form sent again (double click): nothing more is booked.
    assert book(client, course, series="on").status_code == 302
    assert Appointment.objects.count() == 6


def timezone_day(at: datetime) -> str:
    return at.astimezone(NY).strftime("%a %d")


def test_it_refuses_a_booking_in_the_past(as_user, clinician, course):
    response = book(as_user(clinician), course, starts_at="2026-03-01T10:00")
    assert "in the past" in response.context["form"].errors["starts_at"][0]
    assert not Appointment.objects.exists()


def test_a_moved_appointment_keeps_its_earlier_time_in_the_audit(as_user, clinician, course):
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10))
    response = as_user(clinician).post(
        reverse("clinic:appointment-move", args=[appointment.pk]),
        {"starts_at": "2026-03-03T14:15", "route": "iv", "dose_mg_per_kg": "0.6",
         "note": "patient asked"},
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.starts_at == local(date(2026, 3, 3), 14, 15)
    assert appointment.dose_mg_per_kg == Decimal("0.6")
    event = audit_of(appointment, Action.UPDATE).get()
    assert event.before["starts_at"].startswith("2026-03-02T15:00")  # 10:00 New York, in UTC
    assert event.after["starts_at"].startswith("2026-03-03T14:15:00-05:00")
    assert event.patient_id == course.patient_id


def test_cancelling_needs_a_reason_and_is_audited(as_user, clinician, course):
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10))
    client = as_user(clinician)
    url = reverse("clinic:appointment-cancel", args=[appointment.pk])
    page = client.get(url).content.decode()  # one "Cancel", the action; the way back says so
    assert ">Cancel the appointment</button>" in page and ">Keep the appointment</a>" in page
    assert ">Cancel</a>" not in page
    assert client.post(url, {"reason": ""}).status_code == 200
    assert client.post(url, {"reason": "patient unwell"}).status_code == 302
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancel_reason) == ("cancelled", "patient unwell")
    event = audit_of(appointment, Action.CANCEL).get()
    assert event.summary == "patient unwell"
    # A cancelled appointment can be neither moved nor cancelled again.
    assert client.post(url, {"reason": "again"}).status_code == 302
    moved = client.post(reverse("clinic:appointment-move", args=[appointment.pk]),
                        {"starts_at": "2026-03-03T14:15", "route": "iv",
                         "dose_mg_per_kg": "0.5"})
    assert moved.status_code == 302
    appointment.refresh_from_db()
    assert appointment.starts_at == local(MONDAY, 10)
    assert audit_of(appointment, Action.CANCEL).count() == 1


# -- linking the session -------------------------------------------------------------------------

def session_post(**overrides):
    data = {
        "started_at": "2026-03-02T08:00", "route": "intranasal", "dose_mg": "84",
        "dose_mg_per_kg": "", "weight_basis": "", "dissociation": "mild",
        "status": "completed", "bp_pre_systolic": "128", "bp_pre_diastolic": "82",
        "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_logging_from_an_appointment_prefills_and_links_it(as_user, clinician, course):
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10),
                                     route=Route.INTRANASAL, dose_mg_per_kg=None,
                                     dose_mg=Decimal("84"))
    url = f"{reverse('courses:session-new', args=[course.pk])}?appointment={appointment.pk}"
    client = as_user(clinician)
    form = client.get(url).context["form"]
    assert (form.initial["route"], form.initial["dose_mg"]) == ("intranasal", Decimal("84"))
    assert client.post(url, session_post()).status_code == 302
    appointment.refresh_from_db()
    session = TreatmentSession.objects.get()
    assert (appointment.status, appointment.session) == (AppointmentStatus.DONE, session)
    event = audit_of(appointment, Action.UPDATE).get()
    assert event.after == {"status": "done", "session": session.pk}


def test_voiding_the_session_books_its_appointment_again(as_user, clinician, course):
    """A session entered in error is not the visit: its appointment is offered again."""
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10))
    url = f"{reverse('courses:session-new', args=[course.pk])}?appointment={appointment.pk}"
    client = as_user(clinician)
    assert client.post(url, session_post()).status_code == 302
    session = TreatmentSession.objects.get()
    voided = client.post(reverse("courses:session-void", args=[session.pk]),
                         {"version": session.version, "reason": "entered on the wrong day"})
    assert voided.status_code == 302
    appointment.refresh_from_db()
    assert (appointment.status, appointment.session) == (AppointmentStatus.BOOKED, None)
    event = audit_of(appointment, Action.UPDATE).order_by("pk").last()
    assert (event.before, event.after) == ({"status": "done", "session": session.pk},
                                           {"status": "booked", "session": None})
    # Logged again from it, the appointment is done by the new session.
    again = client.post(url, session_post(started_at="2026-03-02T08:10"))
    assert again.status_code == 302, again.context["form"].errors
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.DONE
    assert appointment.session == TreatmentSession.objects.latest("pk")


def test_a_session_logged_from_the_course_page_fulfils_that_days_appointment(
        as_user, clinician, course):
    other_day = AppointmentFactory(course=course, starts_at=local(MONDAY + timedelta(days=2)))
    today = AppointmentFactory(course=course, starts_at=local(MONDAY, 11))
    response = as_user(clinician).post(reverse("courses:session-new", args=[course.pk]),
                                       session_post())
    assert response.status_code == 302
    today.refresh_from_db()
    other_day.refresh_from_db()
    assert today.status == "done" and other_day.status == "booked"


def test_an_appointment_of_another_course_is_not_linked(as_user, clinician, course):
    foreign = AppointmentFactory(starts_at=local(MONDAY, 10))
    url = f"{reverse('courses:session-new', args=[course.pk])}?appointment={foreign.pk}"
    assert as_user(clinician).post(url, session_post()).status_code == 302
    foreign.refresh_from_db()
    assert foreign.status == "booked" and foreign.session is None


# -- due and overdue on the course page ----------------------------------------------------------

@pytest.mark.parametrize("days_since,text,colour", [
    (1, "due Fri 6 Mar–Sun 8 Mar", None),
    (3, "due now", "text-bg-info"),
    (5, "overdue 1 day", "text-bg-warning"),
    (9, "overdue 5 days", "text-bg-danger"),  # a whole interval (4 days) missed
])
def test_the_course_page_says_when_the_next_session_is_due(as_user, clinician, course,
                                                          time_machine, days_since, text,
                                                          colour):
    plan(clinician, course)
    last = MONDAY + timedelta(days=2)
    SessionFactory(course=course, started_at=local(MONDAY, 9))
    SessionFactory(course=course, started_at=local(last, 9))
    time_machine.move_to(local(last + timedelta(days=days_since), 12), tick=False)
    refresh_evaluation(course)
    body = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    plan_html = body[body.index('id="plan"'):body.index('id="evaluation"')]
    assert text in plan_html
    if colour:
        assert colour in plan_html


def test_a_course_moved_to_maintenance_is_prompted_to_a_maintenance_plan(as_user, clinician,
                                                                        course):
    from courses.actions import change_phase

    plan(clinician, course)  # IV/IM induction, counted from the course's start
    client = as_user(clinician)
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert 'id="plan-unsuited"' not in page
    change_phase(clinician, course, "maintenance", MONDAY - timedelta(days=1), "")
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    prompt = page.split('id="plan-unsuited"')[1].split("</span>")[0]
    assert "this schedule ended with induction" in prompt
    assert reverse("clinic:plan", args=[course.pk]) in prompt
    # The plan form proposes maintenance spacing, counted from the day maintenance began.
    form = client.get(reverse("clinic:plan", args=[course.pk])).context["form"]
    assert form["schedule"].value() == Schedule.GRADUAL_SPACING
    assert form["starts_on"].value() == MONDAY - timedelta(days=1)
    plan(clinician, course, schedule=Schedule.GRADUAL_SPACING, starts_on=MONDAY)
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert 'id="plan-unsuited"' not in page


def test_the_course_page_shows_a_booking_at_once(as_user, clinician, course):
    """The course page is cached by the patient's audit version: booking is audited there."""
    client = as_user(clinician)
    url = reverse("courses:detail", args=[course.pk])
    assert "nothing booked" in client.get(url).content.decode()
    book(client, course)
    assert "Mon 2 Mar, 10:30" in client.get(url).content.decode()


# -- the day sheet -------------------------------------------------------------------------------

def test_clinicians_land_on_the_day_sheet_in_time_order(as_user, clinician, course):
    late = AppointmentFactory(course=course, starts_at=local(MONDAY, 15))
    other = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I, patient__last_name="Zed")
    refresh_evaluation(other)  # bipolar I without a mood stabilizer: a critical flag
    early = AppointmentFactory(course=other, starts_at=local(MONDAY, 8, 30))
    AppointmentFactory(course=course, starts_at=local(MONDAY + timedelta(days=1), 9))
    client = as_user(clinician)
    page = client.get(reverse("home"), follow=True)
    rows = page.context["sheet"]
    body = page.content.decode()
    assert body.index(f'data-appointment="{early.pk}"') < body.index(
        f'data-appointment="{late.pk}"')
    assert body.count("data-appointment=") == 2
    assert f'class="table-danger" data-appointment="{early.pk}"' in body
    assert f"?appointment={late.pk}" in body  # one click logs the session
    assert reverse("assessments:new", args=[course.pk, "madrs"]) in body
    assert "80.0 kg" in rows and "10 days ago" in body  # the weight and its age
    assert "none on record" in body  # the other patient has no weight


def test_a_done_visit_stays_red_while_a_critical_flag_is_open(as_user, clinician, course):
    """Green says the visit is done; a critical flag still to act on outranks it."""
    other = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I, patient__last_name="Zed")
    refresh_evaluation(other)  # bipolar I without a mood stabilizer: a critical flag
    flagged = AppointmentFactory(course=other, starts_at=local(MONDAY, 8, 30), status="done")
    done = AppointmentFactory(course=course, starts_at=local(MONDAY, 9), status="done")
    body = as_user(clinician).get(reverse("clinic:day")).content.decode()
    assert f'class="table-danger" data-appointment="{flagged.pk}"' in body
    assert f'class="table-success" data-appointment="{done.pk}"' in body


def test_scores_are_due_with_no_score_in_the_last_two_sessions(as_user, clinician, course):
    AppointmentFactory(course=course, starts_at=local(MONDAY, 10))
    AssessmentFactory(course=course, administered_at=local(MONDAY - timedelta(days=6), 8))
    SessionFactory(course=course, started_at=local(MONDAY - timedelta(days=5)))
    SessionFactory(course=course, started_at=local(MONDAY - timedelta(days=3)))
    client = as_user(clinician)
    assert "scores due" in client.get(reverse("clinic:day")).content.decode()
    AssessmentFactory(course=course, administered_at=local(MONDAY - timedelta(days=5), 8))
    record(clinician, Action.CREATE, course, patient_id=course.patient_id)  # as actions do
    assert "scores due" not in client.get(reverse("clinic:day")).content.decode()


def test_the_day_sheet_lists_undecided_flags_and_courses_with_nothing_booked(
        as_user, clinician, course):
    flagged = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I, patient__last_name="Zed")
    refresh_evaluation(flagged)
    ended = CourseFactory(phase="ended", patient__last_name="Gone")
    AppointmentFactory(course=course, starts_at=local(MONDAY + timedelta(days=3)))
    body = as_user(clinician).get(reverse("clinic:day")).content.decode()
    undecided = body[body.index('id="undecided"'):body.index('id="unbooked"')]
    assert "Zed" in undecided
    unbooked = body[body.index('id="unbooked"'):]
    assert "Zed" in unbooked
    assert course.patient.last_name not in unbooked and "Gone" not in unbooked
    assert ended.pk  # ended courses are neither


def test_the_date_picker_shows_another_day_and_ignores_nonsense(as_user, clinician, course):
    tomorrow = AppointmentFactory(course=course, starts_at=local(MONDAY + timedelta(days=1)))
    client = as_user(clinician)
    page = client.get(reverse("clinic:day"), {"day": "2026-03-03"})
    assert f'data-appointment="{tomorrow.pk}"' in page.content.decode()
    for nonsense in ("tomorrow", "2026-02-30", "0001-01-01", "\x00"):
        page = client.get(reverse("clinic:day"), {"day": nonsense})
        assert page.status_code == 200 and page.context["day"] == MONDAY


def test_clinic_admins_read_the_day_sheet_without_its_buttons(as_user, clinician, course):
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10))
    body = as_user(UserFactory(role=Role.CLINIC_ADMIN)).get(reverse("clinic:day"))
    assert body.status_code == 200
    assert f"?appointment={appointment.pk}" not in body.content.decode()
    assert as_user(UserFactory(role=Role.REFERRING_PROVIDER)).get(
        reverse("clinic:day")).status_code == 404


def test_only_clinicians_have_the_button_to_book_a_course_with_nothing_booked(
        as_user, clinician, course):
    book = reverse("clinic:appointment-new", args=[course.pk])
    admin = UserFactory(role=Role.CLINIC_ADMIN)
    for url in (reverse("clinic:day"), reverse("clinic:unbooked")):
        mine = as_user(clinician).get(url).content.decode()
        row = mine[mine.index(f'href="{reverse("courses:detail", args=[course.pk])}"'):]
        assert row.index(f'href="{book}">Book</a>') < row.index("</tr>")
        theirs = as_user(admin).get(url).content.decode()
        assert course.patient.last_name in theirs and book not in theirs


def test_a_done_appointment_shows_as_done(as_user, clinician, course):
    appointment = AppointmentFactory(course=course, starts_at=local(MONDAY, 10),
                                     route=Route.INTRANASAL, dose_mg_per_kg=None,
                                     dose_mg=Decimal("84"))
    client = as_user(clinician)
    url = f"{reverse('courses:session-new', args=[course.pk])}?appointment={appointment.pk}"
    client.post(url, session_post())
    body = client.get(reverse("clinic:day")).content.decode()
    row = body[body.index(f'data-appointment="{appointment.pk}"'):]
    assert row.index(">done<") < row.index("</tr>")
    assert f"?appointment={appointment.pk}" not in body


def test_the_unbooked_list_pages(as_user, clinician, course):
    for _ in range(3):
        CourseFactory()
    client = as_user(clinician)
    page = client.get(reverse("clinic:unbooked"))
    assert page.context["page"].paginator.count == 4
    assert len(page.context["page"].object_list) == 4


def test_the_unbooked_list_reads_the_last_page_for_a_page_past_it(
        as_user, clinician, course, monkeypatch):
    from clinic import views

    monkeypatch.setattr(views, "UNBOOKED_PAGE", 2)
    for _ in range(2):
        CourseFactory()
    client = as_user(clinician)
    pages = {asked: client.get(reverse("clinic:unbooked"), {"page": asked}).context["page"]
             for asked in ("1", "2", "7", "x")}
    assert [(page.number, len(page.object_list)) for page in pages.values()] == [
        (1, 2), (2, 1), (2, 1), (1, 2)]
    assert pages["7"].object_list == pages["2"].object_list


def test_ending_a_course_cancels_what_it_had_booked(as_user, clinician, course):
    ahead = AppointmentFactory(course=course, starts_at=local(MONDAY + timedelta(days=2)))
    response = as_user(clinician).post(reverse("courses:end", args=[course.pk]),
                                       {"ended_on": MONDAY.isoformat(), "reason": "completed"})
    assert response.status_code == 302
    ahead.refresh_from_db()
    assert (ahead.status, ahead.cancel_reason) == ("cancelled", "course ended")
    assert audit_of(ahead, Action.CANCEL).get().actor == clinician


# -- the clinic's undecided flags (read from the columns refresh_evaluation keeps) ---------------

def with_flags(course, *flags, at=None):
    """Store an evaluation raising ``flags`` ((code, severity, message)...) and its open-flag
    columns the way refresh_evaluation does (one function computes them)."""
    from clinical.engine import RULES_REVISION
    from courses.evaluation import open_flag_fields
    from courses.models import FlagDecision

    course.evaluation = {"flags": [{"code": code, "severity": severity, "message": message}
                                   for code, severity, message in flags]}
    course.rules_revision = RULES_REVISION
    course.evaluated_at = at or local(MONDAY, 7)
    decisions = FlagDecision.objects.filter(course=course).order_by("decided_at", "id")
    for name, value in open_flag_fields(course.evaluation, decisions).items():
        setattr(course, name, value)
    course.save()
    return course


def undecided_part(body):
    return body[body.index('id="undecided"'):body.index('id="unbooked"')]


def test_undecided_flags_put_critical_first_and_leave_decided_ones_out(
        as_user, clinician, course):
    from courses.models import FlagDecision

    warned = with_flags(CourseFactory(patient__last_name="Abbot"),
                        ("BIPOLAR_NO_MOOD_STABILIZER", "warning", "warned of Abbot"))
    critical = with_flags(CourseFactory(patient__last_name="Young"),
                          ("BIPOLAR_NO_MOOD_STABILIZER", "warning", "again"),
                          ("SUICIDAL_IDEATION", "critical", "item 10 is 4"))
    decided = CourseFactory(patient__last_name="Quill")
    FlagDecision.objects.create(course=decided, code="SUICIDAL_IDEATION", decision="declined",
                                reason="r", flag_message="item 10 is 5", decided_by=clinician,
                                decided_at=local(MONDAY - timedelta(days=1)))
    with_flags(decided, ("SUICIDAL_IDEATION", "critical", "item 10 is 5"))
    ended = with_flags(CourseFactory(patient__last_name="Gone", phase="ended"),
                       ("SUICIDAL_IDEATION", "critical", "x"))
    assert (critical.open_flags, critical.open_flag_rank) == (2, 0)
    assert (warned.open_flags, warned.open_flag_rank) == (1, 1)
    assert decided.open_flag_rank is None and decided.open_flags == 0
    part = undecided_part(as_user(clinician).get(reverse("clinic:day")).content.decode())
    # Young's critical flag first, then the warnings course by course (Young's course, with
    # the critical flag, before Abbot's); nothing decided, nothing ended.
    assert part.index("item 10 is 4") < part.index("again") < part.index("warned of Abbot")
    assert "Quill" not in part and "Gone" not in part and ended.pk
    assert "all undecided flags" not in part


def test_the_day_sheet_shows_the_first_flags_and_links_to_all_of_them(
        as_user, clinician, course, monkeypatch):
    from clinic import daysheet, views

    monkeypatch.setattr(daysheet, "UNDECIDED_SHOWN", 3)
    monkeypatch.setattr(views, "UNDECIDED_PAGE", 2)
    for hours, name in enumerate(("Baker", "Adams", "Cole", "Dunn")):
        with_flags(CourseFactory(patient__last_name=name),
                   ("BIPOLAR_NO_MOOD_STABILIZER", "warning", f"warning of {name}"),
                   at=local(MONDAY - timedelta(days=1), 8 + hours))
    with_flags(CourseFactory(patient__last_name="Zimmer"),
               ("SUICIDAL_IDEATION", "critical", "critical of Zimmer"))
    client = as_user(clinician)
    part = undecided_part(client.get(reverse("clinic:day")).content.decode())
    # Critical first, then the latest changed first.
    shown = [n for n in ("Zimmer", "Adams", "Baker", "Cole", "Dunn") if f"of {n}" in part]
    assert shown == ["Zimmer", "Cole", "Dunn"]
    assert part.index("of Zimmer") < part.index("of Dunn") < part.index("of Cole")
    assert "and 2 more" in part and reverse("clinic:undecided") in part
    # The full list: every undecided flag, a page of courses at a time, critical first.
    first = client.get(reverse("clinic:undecided")).content.decode()
    assert first.index("of Zimmer") < first.index("of Dunn") and "of Cole" not in first
    rest = "".join(client.get(reverse("clinic:undecided"), {"page": p}).content.decode()
                   for p in (2, 3))
    assert all(f"of {n}" in rest for n in ("Adams", "Baker", "Cole"))
    # A page past the last shows the last, as an unreadable one shows the first (the page
    # asked for is read with the count, then read again).
    for asked, shown in (("9", "Page 3 of 3"), ("0", "Page 3 of 3"), ("x", "Page 1 of 3")):
        body = client.get(reverse("clinic:undecided"), {"page": asked}).content.decode()
        assert shown in body
        assert ("of Zimmer" in body) == (shown == "Page 1 of 3")


def test_a_decision_leaves_the_cached_day_sheet_and_the_columns_at_once(
        as_user, clinician, course):
    from courses.actions import decide_flag

    flagged = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I, patient__last_name="Zed")
    refresh_evaluation(flagged)
    flagged.refresh_from_db()
    before = flagged.open_flags
    message = next(f["message"] for f in flagged.evaluation["flags"]
                   if f["code"] == "BIPOLAR_NO_MOOD_STABILIZER")
    assert before >= 1 and flagged.open_flag_rank is not None
    client = as_user(clinician)
    for _ in range(2):  # rendered, then from the cache
        assert message[:60] in undecided_part(client.get(reverse("clinic:day")).content.decode())
    decide_flag(clinician, flagged, "BIPOLAR_NO_MOOD_STABILIZER", "declined", reason="reviewed")
    flagged.refresh_from_db()
    assert flagged.open_flags == before - 1
    # The decision is audited against the patient: the cached sheet is not served again.
    assert message[:60] not in undecided_part(
        client.get(reverse("clinic:day")).content.decode())


def test_reevaluate_and_the_migration_fill_the_columns_by_the_same_function(clinician):
    from django.core.management import call_command

    from courses.models import Course

    flagged = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I)
    Course.objects.filter(pk=flagged.pk).update(rules_revision=None, open_flags=0,
                                                open_flag_rank=None)
    call_command("reevaluate", verbosity=0)
    flagged.refresh_from_db()
    assert flagged.open_flags >= 1 and flagged.open_flag_rank is not None


def test_the_counts_of_courses_with_nothing_booked_and_undecided_flags_are_the_querysets(
        course):
    from clinic.daysheet import (
        courses_with_undecided_flags,
        open_course_counts,
        unbooked_count,
        undecided_courses_count,
    )
    from clinic.plans import day_bounds, unbooked_courses
    from courses.models import Course
    from ketacare.prepared import together

    ahead = CourseFactory()  # two bookings ahead: counted once
    AppointmentFactory(course=ahead, starts_at=local(MONDAY, 8))
    AppointmentFactory(course=ahead, starts_at=local(MONDAY + timedelta(days=3)))
    AppointmentFactory(course=CourseFactory(), starts_at=local(MONDAY - timedelta(days=1)))
    AppointmentFactory(course=CourseFactory(), starts_at=local(MONDAY, 10),
                       status=AppointmentStatus.CANCELLED)
    ended = CourseFactory(phase="ended")
    AppointmentFactory(course=ended, starts_at=local(MONDAY, 11))
    flagged = CourseFactory(patient__diagnosis=Diagnosis.BIPOLAR_I)
    refresh_evaluation(flagged)
    not_ended = Course.objects.exclude(phase="ended").count()
    # From Monday the course booked twice has something ahead; from Friday nothing has.
    for day, booked in ((MONDAY, 1), (MONDAY + timedelta(days=4), 0)):
        since = day_bounds(day)[0]
        flags = sum(c.open_flags for c in courses_with_undecided_flags())
        [[(unbooked,)], [(undecided,)], [counts]] = together(
            unbooked_count(since), undecided_courses_count(), open_course_counts(since))
        assert unbooked == unbooked_courses(since).count() == not_ended - booked
        assert undecided == courses_with_undecided_flags().count() == 1
        assert counts == (flags, unbooked) and flags > 0
