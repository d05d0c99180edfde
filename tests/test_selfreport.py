"""Patient self-report between sessions (SPEC §9): invitations, links, answers and alerts."""

import hashlib
import re
import socket
import threading
import time
from datetime import timedelta
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from assessments.models import Assessment, Source
from audit.log import verify_chain
from audit.models import Action, AuditEvent
from clinical.vocab import Phase
from courses.actions import change_phase
from selfreport import actions, links, tasks
from selfreport.models import Alert, Invitation, Plan, Schedule, Status
from selfreport.queries import failed_alerts, failed_invitations
from tests.conftest import with_charts
from tests.factories import CourseFactory, PatientFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^\s/]+(/r/[A-Za-z0-9_-]{43}/)")
ANSWERS = {f"item_{n}": "1" for n in range(1, 9)} | {"item_9": "0", "difficulty": "somewhat"}


@pytest.fixture
def course(clinician):
    clinician.email = "dr-test@clinic.example"
    clinician.save()
    patient = PatientFactory(
        first_name="Selma", last_name="Selfreport", email="selma@patient.example",
        self_report_consent_on=timezone.localdate() - timedelta(days=3),
    )
    return CourseFactory(patient=patient, created_by=clinician,
                         started_on=timezone.localdate() - timedelta(days=30))


def invite(user, course, django_capture_on_commit_callbacks, schedule=Schedule.ONCE) -> Plan:
    with django_capture_on_commit_callbacks(execute=True):
        return actions.start_plan(user, course, schedule)


def link_in(message) -> str:
    return LINK.search(message.body).group(1)


@pytest.fixture
def link(clinician, course, django_capture_on_commit_callbacks) -> str:
    """The path of a link just emailed to the course's patient."""
    invite(clinician, course, django_capture_on_commit_callbacks)
    return link_in(mail.outbox[-1])


def answer(client, path, django_capture_on_commit_callbacks, **changes):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(path, {**ANSWERS, **changes})


# -- invitations ---------------------------------------------------------------------------------

def test_it_emails_a_single_use_link_with_nothing_of_the_record(course, link):
    invitation = Invitation.objects.get()
    message = mail.outbox[0]
    assert message.to == ["selma@patient.example"]
    for secret in ("Selma", "Selfreport", course.patient.record_number, "PHQ", "depress"):
        assert secret not in message.body and secret not in message.subject
    assert message.body.startswith("Hello,")
    token = link.split("/")[2]
    assert len(token) == 43  # token_urlsafe(32): 256 bits
    # Only the hash is stored, nowhere the token itself.
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(Invitation.objects.values()))
    assert token not in str(list(AuditEvent.objects.values()))
    assert invitation.status == Status.SENT and invitation.attempts == 1
    assert invitation.expires_at - invitation.sent_at == timedelta(hours=72)
    audit = AuditEvent.objects.filter(action=Action.SEND).get()
    assert (audit.actor_name, audit.patient_id) == (actions.SENDER, course.patient_id)


def test_the_box_leads_to_the_patients_email_and_back_to_the_course(as_user, clinician,
                                                                     course):
    patient = course.patient
    patient.email = ""
    patient.save()
    client = as_user(clinician)
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    edit = f"{reverse('patients:edit', args=[patient.pk])}?course={course.pk}"
    assert "Add the patient&#x27;s email address first." in page
    assert f'href="{edit}#id_email"' in page
    form = client.get(edit).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    saved = client.post(edit, {**data, "email": "ada@patient.example"})
    assert saved.url == reverse("courses:detail", args=[course.pk])
    patient.refresh_from_db()
    assert patient.email == "ada@patient.example"
    # Only the patient's own course: any other value goes to the patient page, as before.
    other = CourseFactory()
    form = client.get(edit).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    for value in (str(other.pk), "//evil.example", "x"):
        response = client.post(f"{reverse('patients:edit', args=[patient.pk])}?course={value}",
                               data)
        assert response.url == reverse("patients:detail", args=[patient.pk])


def test_a_patient_without_email_or_consent_is_not_invited(clinician, course):
    course.patient.self_report_consent_on = None
    course.patient.save()
    with pytest.raises(actions.NotReady, match="agreed to self-report"):
        actions.start_plan(clinician, course, Schedule.ONCE)
    course.patient.email = ""
    course.patient.save()
    with pytest.raises(actions.NotReady, match="email"):
        actions.start_plan(clinician, course, Schedule.WEEKLY)
    assert not Plan.objects.exists()


def test_the_clinician_invites_from_the_course_page(as_user, clinician, course,
                                                    django_capture_on_commit_callbacks):
    client = as_user(clinician)
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert 'id="self-report"' in page and "Weekly" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("selfreport:plan-new", args=[course.pk]),
                               {"schedule": "once"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "sent 1" in page
    # A recurring plan runs once per course; the second is refused in words.
    client.post(reverse("selfreport:plan-new", args=[course.pk]), {"schedule": "weekly"})
    response = client.post(reverse("selfreport:plan-new", args=[course.pk]),
                           {"schedule": "weekly"})
    assert "already running" in response.context["form"].errors["schedule"][0]
    plan = Plan.objects.get(schedule=Schedule.WEEKLY)
    page = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert f"next {timezone.localdate(plan.created_at + timedelta(days=7))}" in page
    client.post(reverse("selfreport:plan-stop", args=[plan.pk]))
    plan.refresh_from_db()
    assert plan.stopped_at is not None and plan.stopped_by == clinician
    assert AuditEvent.objects.filter(action=Action.END, object_id=str(plan.pk)).exists()


def test_clinic_admins_read_the_box_but_have_no_buttons(as_user, clinic_admin, clinician, course,
                                                        link):
    page = as_user(clinic_admin).get(reverse("courses:detail", args=[course.pk]))
    body = page.content.decode()
    assert "Once, now" in body and "sent 1" in body
    assert reverse("selfreport:plan-new", args=[course.pk]) not in body


# -- beat ----------------------------------------------------------------------------------------

def test_beat_firing_twice_sends_each_slot_once(clinician, course,
                                                django_capture_on_commit_callbacks):
    plan = invite(clinician, course, django_capture_on_commit_callbacks, Schedule.WEEKLY)
    assert not mail.outbox  # the first weekly invitation is a week away
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        tasks.send_due()
        tasks.send_due()  # beat fires twice
        assert actions.plan_due_slots() == 0  # and a third planner finds the slot taken
    with time_machine.travel(timezone.now() + timedelta(days=14, minutes=2)):
        tasks.send_due()
    slots = list(plan.invitations.order_by("due_at").values_list("slot", flat=True))
    assert slots == ["week-1", "week-2"]
    assert len(mail.outbox) == 2


def test_two_workers_racing_for_one_invitation_send_it_once(clinician, course):
    plan = Plan.objects.create(course=course, schedule=Schedule.WEEKLY, created_by=clinician)
    invitation = Invitation.objects.create(plan=plan, course=course, slot="week-1",
                                           due_at=timezone.now(), next_attempt_at=timezone.now())
    assert actions._claim(Invitation, invitation.pk, timezone.now())
    actions.deliver_invitation(invitation.pk)  # the second worker finds it claimed
    assert not mail.outbox
    with pytest.raises(Exception, match="UNIQUE|unique|duplicate"):
        Invitation.objects.create(plan=plan, course=course, slot="week-1",
                                  due_at=timezone.now(), next_attempt_at=timezone.now())


def test_maintenance_sessions_are_followed_at_2_and_7_days(clinician, course,
                                                           django_capture_on_commit_callbacks):
    now = timezone.now()
    change_phase(clinician, course, Phase.MAINTENANCE, timezone.localdate() - timedelta(days=1))
    course.refresh_from_db()
    plan = invite(clinician, course, django_capture_on_commit_callbacks,
                  Schedule.AFTER_MAINTENANCE)
    session = SessionFactory(course=course, started_at=now + timedelta(hours=1),
                             clinician=clinician)
    SessionFactory(course=course, started_at=now - timedelta(days=20))  # before maintenance
    with time_machine.travel(now + timedelta(days=2, hours=2)):
        tasks.send_due()
    with time_machine.travel(now + timedelta(days=7, hours=2)):
        tasks.send_due()
        tasks.send_due()
    assert sorted(plan.invitations.values_list("slot", flat=True)) == [
        f"session-{session.pk}-day-2", f"session-{session.pk}-day-7",
    ]
    assert len(mail.outbox) == 2


def test_a_stopped_plan_or_an_ended_course_sends_nothing_more(clinician, course,
                                                              django_capture_on_commit_callbacks):
    plan = invite(clinician, course, django_capture_on_commit_callbacks, Schedule.WEEKLY)
    actions.stop_plan(clinician, plan)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        tasks.send_due()
    assert not mail.outbox and not plan.invitations.exists()


# -- SMTP failures -------------------------------------------------------------------------------

class Refused(Exception):
    smtp_code = 451


@pytest.fixture
def smtp_down(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise Refused("4.3.0 try later <selma@patient.example>")

    monkeypatch.setattr("django.core.mail.message.EmailMessage.send", refuse)


def test_smtp_failures_are_retried_with_backoff_then_shown(as_user, clinician, course, smtp_down,
                                                          django_capture_on_commit_callbacks):
    start = timezone.now()
    invite(clinician, course, django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    assert (invitation.status, invitation.attempts) == (Status.PENDING, 1)
    assert invitation.last_error == "Refused 451"  # never the address from the message
    tasks.send_due()  # too early: the next try waits a minute
    assert Invitation.objects.get().attempts == 1
    for minutes in (2, 8, 40):  # 1, 5 and 30 minutes after each failure
        with time_machine.travel(start + timedelta(minutes=minutes)):
            tasks.send_due()
    invitation.refresh_from_db()
    assert (invitation.status, invitation.attempts) == (Status.FAILED, 4)
    assert list(failed_invitations()) == [invitation]
    assert AuditEvent.objects.filter(action=Action.SEND_FAILED).count() == 4
    page = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "1 invitation could not be sent" in page and "Send again" in page
    # The day sheet lists it too, with a link to the course where it is sent again.
    sheet = as_user(clinician).get(reverse("clinic:day")).content.decode()
    failed = sheet[sheet.index('id="self-report-failed"'):]
    assert course.patient.last_name in failed
    assert reverse("courses:detail", args=[course.pk]) in failed


def test_without_site_url_nothing_is_sent_and_the_course_says_why(clinician, course, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.SITE_URL = ""
    invite(clinician, course, django_capture_on_commit_callbacks)
    assert not mail.outbox
    assert Invitation.objects.get().last_error == "SITE_URL is not set"


def test_send_again_after_the_address_is_fixed(as_user, clinician, course, monkeypatch,
                                               django_capture_on_commit_callbacks):
    plan = Plan.objects.create(course=course, schedule=Schedule.ONCE, created_by=clinician)
    Invitation.objects.create(plan=plan, course=course, slot="once", due_at=timezone.now(),
                              next_attempt_at=timezone.now(), status=Status.FAILED, attempts=4)
    client = as_user(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("selfreport:plan-send-again", args=[plan.pk]))
    assert Invitation.objects.get().status == Status.SENT
    assert len(mail.outbox) == 1 and not failed_invitations().exists()


# -- links ---------------------------------------------------------------------------------------

def test_the_questionnaire_needs_no_login_and_is_never_stored(client, link):
    response = client.get(link)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"  # the link goes to no other site
    body = response.content.decode()
    assert body.count('type="radio"') == 9 * 4 + 4  # nine items and the difficulty question
    assert "Selma" not in body and "<script" not in body and "988" in body


def test_a_clinician_half_logged_in_still_reaches_the_questionnaire(client, clinician, link):
    client.force_login(clinician)  # password given, second factor not yet
    assert client.get(reverse("patients:list")).status_code == 302
    assert client.get(link).status_code == 200


def test_a_patients_page_does_not_keep_a_clinicians_session_alive(as_user, clinician, link):
    from accounts.idle import RENEWED

    client = as_user(clinician)
    session = client.session
    due = session[RENEWED] = time.time() - 120  # due for renewal
    session.save()
    assert client.get(link).status_code == 200
    assert client.session[RENEWED] == due
    client.get(reverse("patients:list"))
    assert client.session[RENEWED] > due


def test_csrf_still_guards_the_answer(link, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    assert client.post(link, ANSWERS).status_code == 403
    page = client.get(link)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = answer(client, link, django_capture_on_commit_callbacks,
                      csrfmiddlewaretoken=token)
    assert response.status_code == 302


def test_an_answer_becomes_a_self_reported_phq9_signed_by_the_link(
    as_user, client, clinician, course, link, django_capture_on_commit_callbacks
):
    response = answer(client, link, django_capture_on_commit_callbacks)
    assert response.url == reverse("selfreport:thanks")
    assessment = Assessment.objects.get()
    assert (assessment.source, assessment.scored_by, assessment.total) == (
        Source.SELF_REPORT, None, 8
    )
    assert assessment.difficulty == "somewhat" and assessment.instrument == "phq9"
    assert Invitation.objects.get().assessment == assessment
    audit = AuditEvent.objects.get(action=Action.SIGN)
    assert (audit.actor, audit.actor_name, audit.patient_id) == (
        None, "patient link", course.patient_id
    )
    assert verify_chain() is None
    course.refresh_from_db()
    assert course.evaluated_at is not None
    assert "SUICIDAL_IDEATION" not in {f["code"] for f in course.evaluation["flags"]}
    assert not Alert.objects.exists()
    reader = as_user(clinician)
    page = with_charts(reader, reader.get(reverse("courses:detail", args=[course.pk])))
    assert "patient link (self-report)" in page and "self-report</span>" in page
    assert '<circle' in page and 'class="self-report"' in page  # its own marker on the chart
    detail = as_user(clinician).get(reverse("assessments:detail", args=[assessment.pk]))
    assert "Signed by patient link (self-report)" in detail.content.decode()


def test_a_missing_answer_is_named_and_nothing_is_saved(client, link):
    response = client.post(link, {**ANSWERS, "item_4": ""})
    assert response.status_code == 200
    assert "Please answer question 4." in response.content.decode()
    assert not Assessment.objects.exists()
    assert Invitation.objects.get().status == Status.SENT


def test_expired_used_and_forged_links_get_the_same_plain_page(
    client, course, link, django_capture_on_commit_callbacks
):
    forged = client.get(f"/r/{'A' * 43}/")
    short = client.get("/r/abc/")
    with time_machine.travel(timezone.now() + timedelta(hours=72, seconds=1)):
        expired = client.get(link)
        expired_post = client.post(link, ANSWERS)
    answer(client, link, django_capture_on_commit_callbacks)
    used = client.get(link)
    used_post = client.post(link, ANSWERS)
    pages = [forged, short, expired, expired_post, used, used_post]
    assert {page.status_code for page in pages} == {404}
    assert len({page.content for page in pages}) == 1
    body = forged.content.decode()
    assert "not available" in body and "Selma" not in body
    assert Assessment.objects.count() == 1


def test_links_are_rate_limited_per_address(client, link, settings):
    settings.SELF_REPORT_RATE_LIMIT = 3
    for _ in range(3):
        assert client.get(f"/r/{'B' * 43}/").status_code == 404
    assert client.get(link).status_code == 429  # even a good link, from that address
    assert Client(REMOTE_ADDR="10.0.0.9").get(link).status_code == 200


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=200))
def test_any_token_gets_the_plain_page_never_an_error(client, settings, token):
    settings.SELF_REPORT_RATE_LIMIT = 10**9  # the tokens, not the limit
    url = "/r/" + "".join(c for c in token if c not in "/?#%\x00") + "/"
    assert client.get(url).status_code in (404, 429)
    assert client.post(url, ANSWERS).status_code in (404, 429)


# -- the alert path ------------------------------------------------------------------------------

def test_item_9_shows_crisis_lines_and_alerts_the_clinician(
    as_user, client, clinician, course, link, django_capture_on_commit_callbacks
):
    other = UserFactory(role=Role.CLINICIAN, email="other@clinic.example")
    SessionFactory(course=course, clinician=other)  # the latest session's clinician
    response = answer(client, link, django_capture_on_commit_callbacks, item_9="1")
    assert response.url == reverse("selfreport:thanks-help")
    thanks = client.get(response.url).content.decode().split("<main")[1]
    assert "988" in thanks and "opening hours" in thanks  # the clinic's own text
    assert thanks.index("988") < thanks.index("Thank you")  # crisis lines first
    course.refresh_from_db()
    flags = {flag["code"]: flag for flag in course.evaluation["flags"]}
    assert flags["SUICIDAL_IDEATION"]["severity"] == "critical"
    alert = Alert.objects.get()
    assert (alert.status, alert.recipients) == (Status.SENT, 1)
    message = mail.outbox[-1]
    assert message.to == ["other@clinic.example"]
    assert f"/courses/{course.pk}/" in message.body
    for secret in ("Selma", "Selfreport", course.patient.record_number, "selma@"):
        assert secret not in message.body and secret not in message.subject
    page = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "Suicidal ideation" in page


def test_an_alert_that_cannot_be_emailed_shows_on_the_course(
    as_user, client, clinician, course, link, smtp_down, django_capture_on_commit_callbacks
):
    answer(client, link, django_capture_on_commit_callbacks, item_9="2")
    for minutes in (2, 8, 40):
        with time_machine.travel(timezone.now() + timedelta(minutes=minutes)):
            tasks.send_due()
    assert Alert.objects.get().status == Status.FAILED
    assert [alert.course for alert in failed_alerts()] == [course]
    page = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "alert email to the clinician could not be sent" in page


def test_with_no_clinician_on_the_course_every_clinician_is_alerted(course, clinician):
    clinician.is_active = False
    clinician.save()
    UserFactory(role=Role.CLINICIAN, email="a@clinic.example")
    UserFactory(role=Role.CLINICIAN, email="b@clinic.example")
    UserFactory(role=Role.CLINIC_ADMIN, email="admin@clinic.example")
    assert actions.responsible_addresses(course) == ["a@clinic.example", "b@clinic.example"]


# -- the patient's email and consent -------------------------------------------------------------

def test_the_patient_form_checks_the_email_and_consent(as_user, clinician, course):
    patient = course.patient
    url = reverse("patients:edit", args=[patient.pk])
    fields = {
        "record_number": patient.record_number, "first_name": "Selma", "last_name": "Selfreport",
        "date_of_birth": "1980-01-01", "sex": "female", "diagnosis": "mdd",
        "version": patient.version, "email": "not an address",
        "self_report_consent_on": (timezone.localdate() + timedelta(days=1)).isoformat(),
    }
    response = as_user(clinician).post(url, fields)
    errors = response.context["form"].errors
    assert "email" in errors and "future" in errors["self_report_consent_on"][0]
    response = as_user(clinician).post(url, {**fields, "email": " new@patient.example ",
                                             "self_report_consent_on": "2026-01-05"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.email == "new@patient.example"


# -- PostgreSQL: at the same instant -------------------------------------------------------------

def together(count: int, work) -> list:
    """Run ``work`` in ``count`` threads released at the same instant, each with its own
    database connection; their results."""
    start, results = threading.Barrier(count), []

    def run():
        try:
            start.wait()
            results.append(work())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_answers_record_one(clinician, course):
    if connection.vendor != "postgresql":
        pytest.skip("row locks under concurrent transactions: PostgreSQL (SQLite serializes)")
    token = links.new_token()
    plan = Plan.objects.create(course=course, schedule=Schedule.ONCE, created_by=clinician)
    now = timezone.now()
    Invitation.objects.create(
        plan=plan, course=course, slot="once", due_at=now, next_attempt_at=now,
        status=Status.SENT, sent_at=now, token_hash=links.digest(token),
        expires_at=links.expiry(now),
    )
    path = reverse("selfreport:answer", args=[token])
    results = together(4, lambda: Client().post(path, ANSWERS).status_code)
    assert sorted(results) == [302, 404, 404, 404]
    assert Assessment.objects.filter(source=Source.SELF_REPORT).count() == 1
    assert AuditEvent.objects.filter(action=Action.SIGN).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_the_same_instant_send_one_email(clinician, course):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions: PostgreSQL (SQLite serializes)")
    Plan.objects.create(course=course, schedule=Schedule.WEEKLY, created_by=clinician,
                        created_at=timezone.now() - timedelta(days=7, minutes=1))
    together(3, tasks.send_due)
    assert Invitation.objects.get().status == Status.SENT
    assert len(mail.outbox) == 1


# -- a real SMTP round trip ----------------------------------------------------------------------

def test_a_real_smtp_round_trip_and_the_link_it_carries(client, clinician, course, settings,
                                                        django_capture_on_commit_callbacks):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        invite(clinician, course, django_capture_on_commit_callbacks)
    finally:
        controller.stop()
    (envelope,) = received
    assert envelope.rcpt_tos == ["selma@patient.example"]
    message = message_from_bytes(envelope.content)
    body = message.get_payload(decode=True).decode()
    path = LINK.search(body).group(1)
    assert client.get(path).status_code == 200
    response = answer(client, path, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert Assessment.objects.get().source == Source.SELF_REPORT
