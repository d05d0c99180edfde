"""Every GET of every URL, as each role: nothing in the database changes but the audit rows of
what was viewed, and no answer may be kept in a browser's cache (Cache-Control: no-store,
private). Adding a URL without listing it here fails ``test_every_url_is_crawled``."""

import hashlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import get_resolver, resolve, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from audit.models import Action, AuditEvent, ChainHead
from courses.evaluation import refresh_evaluation
from exports import files
from exports.models import Export, ExportState
from tests.conftest import url_names, verified_login
from tests.factories import (
    AppointmentFactory,
    AssessmentFactory,
    CourseFactory,
    IntranasalSessionFactory,
    MedicationFactory,
    PatientFactory,
    SessionFactory,
    UserFactory,
    WeightFactory,
    sent_self_report_link,
)

pytestmark = pytest.mark.django_db

# What a GET may add: the audit rows of a view or download. Sessions are the login itself
# (renewed by the idle timeout), not data.
ALLOWED_AUDIT = {Action.VIEW, Action.DOWNLOAD}
NOT_DATA = {Session}


@pytest.fixture
def world(tmp_path, settings, clinician, clinic_admin, referrer):
    settings.EXPORT_ROOT = tmp_path
    today = timezone.localdate()
    patient = PatientFactory(referring_provider=referrer)
    WeightFactory(patient=patient, recorded_by=clinician)
    medication = MedicationFactory(patient=patient, started_on=today - timedelta(days=365),
                                   recorded_by=clinician)
    course = CourseFactory(patient=patient, started_on=today - timedelta(days=40),
                           created_by=clinician)
    session = SessionFactory(course=course, clinician=clinician)
    assessment = AssessmentFactory(course=course, scored_by=clinician)
    flag = refresh_evaluation(course)["flags"][0]["code"]
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.DONE,
                                   finished_at=timezone.now(),
                                   expires_at=timezone.now() + timedelta(hours=1))
    (tmp_path / files.name_of(export)).write_text("record_number\n")
    appointment = AppointmentFactory(course=course, booked_by=clinician)
    newcomer = UserFactory(role=Role.CLINICIAN)  # no authenticator yet
    # A patient's self-report link, sent and not yet answered: opening it must change nothing.
    self_report_plan, token = sent_self_report_link(course, clinician)
    patient.rems_enrolled_on = today - timedelta(days=60)
    patient.save(update_fields=["rems_enrolled_on"])
    rems_session = IntranasalSessionFactory(course=course, clinician=clinician,
                                            started_at=timezone.now() - timedelta(days=2))
    args = {
        "rems_session": [rems_session.pk],
        "patient": [patient.pk], "medication": [medication.pk], "course": [course.pk],
        "session": [session.pk], "assessment": [assessment.pk], "export": [export.pk],
        "account": [clinician.pk], "referrer": [referrer.pk],
        "link": [referrer.pk, patient.pk], "instrument": [course.pk, "madrs"],
        "flag": [course.pk, flag], "appointment": [appointment.pk],
        "self_report_plan": [self_report_plan.pk], "token": [token], None: [],
    }
    urls = {name: reverse(name, args=args[target]) for name, target in URLS.items()}
    return {"urls": urls, "clinician": clinician, "admin": clinic_admin, "referrer": referrer,
            "newcomer": newcomer}


# Every URL name, and whose id its path takes.
URLS = {
    "home": None, "login": None, "logout": None, "keepalive": None, "two-factor": None,
    "two-factor-setup": None, "password_change": None,
    "staff-list": None, "staff-create": None, "staff-detail": "account",
    "staff-edit": "account", "staff-role": "account", "staff-deactivate": "account",
    "staff-reactivate": "account", "staff-password": "account",
    "staff-two-factor-reset": "account", "staff-link": "referrer", "staff-unlink": "link",
    "patients:list": None, "patients:new": None, "patients:detail": "patient",
    "patients:edit": "patient", "patients:weight-new": "patient",
    "patients:trial-new": "patient", "patients:medication-new": "patient",
    "patients:medication-stop": "medication", "patients:medication-classify": "medication",
    "courses:new": "patient", "courses:detail": "course", "courses:phase": "course",
    "courses:end": "course", "courses:session-new": "course", "courses:flag-decide": "flag",
    "courses:sessions": "course", "courses:scores": "course", "courses:chart": "course",
    "courses:session-detail": "session", "courses:session-amend": "session",
    "courses:session-discharge": "session", "courses:session-void": "session",
    "assessments:new": "instrument",
    "assessments:detail": "assessment", "assessments:correct": "assessment",
    "reports:list": None, "reports:patient": "patient", "reports:patient-pdf": "patient",
    "reports:course-chart": "course",
    "reports:record-pdf": "patient", "audit:report": None, "audit:export": None,
    "exports:list": None, "exports:detail": "export", "exports:status": "export",
    "exports:download": "export", "exports:again": "export", "outcomes:dashboard": None,
    "guidance:rules": None, "guidance:sources": None,
    "clinic:day": None, "clinic:unbooked": None, "clinic:undecided": None,
    "clinic:settings": None,
    "clinic:plan": "course", "clinic:appointment-new": "course",
    "clinic:appointment-move": "appointment", "clinic:appointment-cancel": "appointment",
    "selfreport:plan-new": "course", "selfreport:plan-stop": "self_report_plan",
    "selfreport:plan-send-again": "self_report_plan", "selfreport:answer": "token",
    "selfreport:thanks": None, "selfreport:thanks-help": None,
    "rems:queue": None, "rems:print": None, "rems:export": None, "rems:form": "rems_session",
    "rems:pdf": "rems_session", "rems:submit": "rems_session", "rems:undo": "rems_session",
}


def test_every_url_is_crawled():
    assert url_names(get_resolver().url_patterns) == set(URLS), (
        "a URL was added or renamed: list it in URLS with the id its path takes"
    )


def fingerprint() -> dict:
    """Every table but sessions and the audit trail: its rows, hashed; and the audit trail's
    rows other than views (its chain head moves with every row)."""
    found = {}
    for model in apps.get_models():
        if model in NOT_DATA or model in (AuditEvent, ChainHead):
            continue
        rows = list(model.objects.order_by("pk").values_list())
        found[model._meta.label] = hashlib.sha256(repr(rows).encode()).hexdigest()
    found["audit"] = list(AuditEvent.objects.exclude(action__in=ALLOWED_AUDIT)
                          .order_by("pk").values_list("pk", flat=True))
    return found


def client_as(world, who: str) -> Client:
    client = Client()
    if who == "anonymous":
        return client
    user = world[who.removesuffix("-password-only")]
    if who.endswith("-password-only") or who == "newcomer":
        client.force_login(user)  # the second factor still due
    else:
        verified_login(client, user)
    return client


ROLES = ["anonymous", "clinician", "clinician-password-only", "newcomer", "admin", "referrer"]


@pytest.mark.parametrize("who", ROLES)
def test_no_get_changes_anything_and_no_answer_may_be_cached(world, who):
    client = client_as(world, who)
    before = fingerprint()
    devices = TOTPDevice.objects.count()
    for name, url in world["urls"].items():
        response = client.get(url)
        assert response.status_code < 500, (name, response.status_code)
        if who != "anonymous" or response.status_code == 200:
            directives = {part.strip() for part in response["Cache-Control"].split(",")}
            assert {"no-store", "private"} <= directives, (name, response["Cache-Control"])
        assert fingerprint() == before, f"GET {name} as {who} changed data"
    assert TOTPDevice.objects.count() == devices


def test_static_files_may_be_cached(settings):
    # WhiteNoise serves them, as in production, before any view (from the source folders here:
    # no collectstatic in tests).
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get("/static/css/ketacare.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_a_view_marked_public_stays_public(rf):
    from django.http import HttpResponse
    from django.views.decorators.cache import cache_control

    from ketacare.cache import PrivateByDefaultMiddleware

    public = cache_control(public=True, max_age=60)(lambda request: HttpResponse("hi"))
    private = PrivateByDefaultMiddleware(lambda request: HttpResponse("hi"))
    assert PrivateByDefaultMiddleware(public)(rf.get("/"))["Cache-Control"] in (
        "public, max-age=60", "max-age=60, public")
    assert private(rf.get("/"))["Cache-Control"] == "no-store, private"


def test_urls_resolve(world):
    for name, url in world["urls"].items():
        assert resolve(urlsplit(url).path).view_name == name
