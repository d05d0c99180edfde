"""Hostile input (OWASP ASVS L2, V5): every form and every URL parameter of the app, fuzzed.

Each form of the app is posted as a logged-in clinician with a valid submission in which some
fields are replaced by hostile values (out-of-range and wrong-type numbers, impossible dates,
10,000-character strings, NUL, RTL marks, emoji, SQL, HTML and template injection, repeated
keys, fields the form does not have) or left out: each field in turn with the edges of its kind
(a fixed sweep), then random combinations (hypothesis). Every answer must be below 500, and a
refused form (any answer but a redirect) must leave every clinical table, the clinic's rows and
the audit trail exactly as they were: nothing is half saved. A saved form must be saved by the
clinician who posted it, hold nothing PostgreSQL would refuse (so a run on SQLite finds those
too), and lead to a page that renders with the injected markup escaped.

The URL parameters the views read (``q``, ``page``, ``decision``, ``next`` of the login and
two-factor pages, the audit report's filters) and the path parameters (every ``pk``, the
instrument code, the flag code) get the same treatment, and so do bytes that are not UTF-8.
Last, object ids in URLs cannot be guessed into a patient's data by a referring provider, and
error pages give no id away.

Each example runs inside a savepoint that is rolled back, so every example starts from the same
clinic. ``KETACARE_FUZZ_EXAMPLES`` raises the number of examples for a deeper local run.
"""

import json
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, JSONField, Max
from django.urls import get_resolver, resolve, reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.actions import version_of
from accounts.models import Role, User
from assessments.models import Assessment
from audit.log import snapshot
from audit.models import Action, AuditEvent
from clinic.models import Appointment, ClinicSettings, Plan
from courses.evaluation import refresh_evaluation
from courses.forms import INTRANASAL_FIELDS
from courses.models import (
    AdverseEvent,
    Course,
    FlagDecision,
    PhaseChange,
    SessionAmendment,
    SessionVoid,
    TreatmentSession,
)
from patients.forms import ClassifyMedicationForm
from patients.models import Medication, Patient, PriorTrial, WeightRecord
from patients.views import PAGE_SIZE
from rems.models import Submission
from selfreport.models import Alert, Invitation, Schedule
from selfreport.models import Plan as SelfReportPlan
from tests.conftest import url_names
from tests.factories import (
    CLINIC_SETTINGS_POST,
    PASSWORD,
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

EXAMPLES = int(os.environ.get("KETACARE_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 2))

# -- hostile values ------------------------------------------------------------------------------

# Markup that must never come back unescaped on the page a saved form leads to.
MARKUP = [
    "<script>alert('kc-xss')</script>",
    '"><img src=x onerror=alert(\'kc-xss\')>',
    "<svg/onload=alert('kc-xss')>",
]
NASTY = [
    "", " ", "\x00", "a\x00b", "\x00" * 50, "\t\r\n", "\x1b[31m", "\x7f", "\ufeff", "\u00a0",
    "\u202eevil\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd\u200e", "\u200b", "\u0301" * 20,
    "😀", "👨\u200d👩\u200d👧", "𝟘𝟙𝟚", "\U0010ffff", "\ufffd", "Ω≈ç√∫", "ß" * 20, "ﬃ" * 20,
    "null", "None", "undefined", "true", "false", "on", "off", "[]", "{}", "[object Object]",
    # SQL
    "' OR '1'='1", "'; DROP TABLE patients_patient; --", "1; SELECT pg_sleep(5)--", "%", "_",
    "\\", "' UNION SELECT password FROM accounts_user --", "%' AND 1=1 AND '%'='",
    # HTML, JavaScript, templates, paths, CSV
    *MARKUP, "javascript:alert(1)", "{{ 7*7 }}", "{% debug %}", "${7*7}", "../../etc/passwd",
    "=cmd|' /C calc'!A0", "%00", "%ED%A0%80", "&#0;", "\\u0000",
    # numbers
    "-1", "0", "-0", "00", "1.5", "0.049", "1.0001", "0.7500001", "1e3", "1E+999999999",
    "1e-999999999", "0E-1000", "NaN", "-nan", "sNaN", "Infinity", "-inf", "1_000", "0x1F",
    " 42 ", "٣", "²", "½", "9" * 400, str(2**31), str(2**63 - 1), str(2**63), str(-(2**63) - 1),
    str(2**64), "32767", "32768", "65536", "-32769",
    # dates and times
    "0000-00-00", "0001-01-01", "0001-01-01T00:00", "0001-01-01T00:00+14:00", "9999-12-31",
    "9999-12-31T23:59", "9999-12-31T23:59-14:00", "10000-01-01", "-2026-01-01", "2026-02-30",
    "2026-13-01", "2026-01-01T25:61", "2026-03-08T02:30", "2026-11-01T01:30", "1970-01-01",
    "1900-01-01", "2038-01-19T03:14:08Z", "today", "2026-02-05T09:00:00.123456789",
]
LONG = st.tuples(
    st.sampled_from(["A", "9", "😀", "\u202e", "<b>", "' OR 1=1 --", "\x00", " "]),
    st.integers(min_value=201, max_value=10_000),
).map(lambda t: (t[0] * t[1])[:10_000])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
)
DATES = st.one_of(
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.none() | st.timezones()).map(
        lambda d: d.isoformat(timespec="minutes")
    ),
)
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(codec="utf-8"), max_size=40),  # NUL and controls included
    LONG,
)
HOSTILE = st.one_of(TEXT, NUMBERS, DATES)
# A value as posted: one hostile string, or the same key repeated.
POSTED = st.one_of(HOSTILE, st.lists(HOSTILE, min_size=2, max_size=3))
# Fields no form offers: an attacker may still post them (mass assignment).
SMUGGLED = [
    "id", "pk", "patient", "patient_id", "course", "recorded_by", "created_by", "clinician",
    "scored_by", "decided_by", "changed_by", "signed_at", "total", "replaces", "evaluation",
    "weight_kg_used", "role", "is_superuser", "csrfmiddlewaretoken",
]
MISSING = "<missing>"  # the field is left out of the post

# The edges of each kind of field, tried one field at a time on every form, with COMMON_EDGES.
EDGES = {
    "datetime": [
        "0001-01-01T00:00", "0001-01-01T00:00+14:00", "9999-12-31T23:59",
        "9999-12-31T23:59-14:00",
        "2026-03-08T02:30",  # does not exist in New York (DST)
        "2026-11-01T01:30",  # happens twice in New York
        "2026-02-30T09:00",
    ],
    "date": ["0001-01-01", "9999-12-31", "2026-02-29", "10000-01-01"],
    "number": ["-1", "NaN", str(2**63), "9" * 10_000],
    "text": ["\u202e\u200f😀👨\u200d👩\u200d👧", MARKUP[0], "ß" * 20, "A" * 10_000],
}
COMMON_EDGES = [MISSING, "\x00"]
KIND_VALUES = {
    "datetime": st.datetimes(timezones=st.none() | st.timezones()).map(
        lambda d: d.isoformat(timespec="minutes")
    ),
    "date": st.dates().map(date.isoformat),
    "number": NUMBERS,
    "text": TEXT,
}


def kind(value) -> str:
    """What a valid value looks like: the fuzzer tries that kind's edges on its field."""
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        return "datetime"
    if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        return "date"
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return "number"
    return "text"


def hostile_for(value: str) -> st.SearchStrategy:
    """Hostile values for a field whose valid value is ``value``: half of the time of the
    same kind (an edge, or any value of that kind), else anything at all."""
    same = st.one_of(st.sampled_from(EDGES[kind(value)] + COMMON_EDGES), KIND_VALUES[kind(value)])
    return st.sampled_from([same, POSTED]).flatmap(lambda chosen: chosen)


@st.composite
def tampered(draw, valid: dict) -> dict:
    """``valid`` with a few of its fields replaced by hostile values or left out, and perhaps a
    field the form does not have. Small changes are drawn most often, so most examples reach
    the form's cross-field checks and some save."""
    data = dict(valid)
    # A button posts no field at all: then only smuggled fields are tried.
    replaced = st.lists(st.sampled_from(sorted(valid)), unique=True, max_size=4) if valid \
        else st.just([])
    for name in draw(replaced):
        value = draw(hostile_for(valid[name]))
        if value == MISSING:
            del data[name]
        else:
            data[name] = value
    for name in draw(st.lists(st.sampled_from(SMUGGLED), unique=True, max_size=2)):
        data[name] = draw(POSTED)
    return data


# -- the clinic ----------------------------------------------------------------------------------

@dataclass
class Clinic:
    as_user: Callable  # the project's login helper: password and second factor given
    clinician: User
    newcomer: User  # a clinician who has not enrolled an authenticator yet
    referrer: User
    patient: Patient
    weight: WeightRecord
    medication: Medication
    course: Course
    session: TreatmentSession
    assessment: Assessment
    flag: str
    self_report_plan: SelfReportPlan | None = None  # a running weekly self-report plan
    link_token: str = ""  # the token of an open self-report link of that plan
    admin: User | None = None  # a clinic admin, for the staff account forms
    other_referrer: User | None = None  # a referring provider with no patient yet
    appointment: Appointment | None = None  # booked tomorrow
    rems_session: TreatmentSession | None = None  # intranasal, enrolled: a REMS form to submit
    rems_submitted: TreatmentSession | None = None  # its form already marked submitted
    # A patient with no open course: a patient has one at a time (SPEC §7).
    courseless: Patient | None = None
    today: date = field(default_factory=timezone.localdate)
    baselines: dict = field(default_factory=dict)

    def log_in(self, client, how: str = "verified", user: User | None = None) -> None:
        """``how``: "verified" (password and second factor), "password" (the second factor
        still due), or "anonymous"."""
        user = user or self.clinician
        if how == "verified":
            self.as_user(user)
            return
        client.logout()
        if how == "password":
            client.force_login(user)

    def rows(self) -> list:
        return [self.clinician, self.admin, self.other_referrer, self.patient, self.weight,
                self.medication, self.course, self.session, self.assessment, self.appointment,
                self.courseless, self.self_report_plan, self.rems_session,
                self.rems_submitted]

    def baseline(self, ignored_actions: tuple[str, ...]) -> dict:
        """The state every example starts from, as each is rolled back: read once."""
        if ignored_actions not in self.baselines:
            self.baselines[ignored_actions] = state(self, ignored_actions)
        return self.baselines[ignored_actions]


@pytest.fixture(autouse=True)
def no_link_rate_limit(settings):
    """Fuzz the questionnaire, not its rate limit (tests/test_selfreport.py tests that)."""
    settings.SELF_REPORT_RATE_LIMIT = 10**9


@pytest.fixture
def clinic(as_user, clinician, clinic_admin, referrer) -> Clinic:
    today = timezone.localdate()
    TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=True)
    TOTPDevice.objects.create(user=clinic_admin, name="authenticator", confirmed=True)
    newcomer = UserFactory(role=Role.CLINICIAN)
    TOTPDevice.objects.create(user=newcomer, name="authenticator", confirmed=False)
    patient = PatientFactory(referring_provider=referrer, height_cm=170,
                             email="ada@patient.example",
                             self_report_consent_on=today - timedelta(days=5))
    weight = WeightFactory(patient=patient, measured_on=today - timedelta(days=60),
                           recorded_by=clinician)
    # clonazepam: a benzodiazepine, so the course has a flag to decide.
    medication = MedicationFactory(patient=patient, started_on=today - timedelta(days=365),
                                   recorded_by=clinician)
    course = CourseFactory(patient=patient, started_on=today - timedelta(days=40),
                           created_by=clinician)
    session = SessionFactory(course=course, clinician=clinician)
    assessment = AssessmentFactory(course=course, scored_by=clinician)
    evaluation = refresh_evaluation(course)
    flag = next(f["code"] for f in evaluation["flags"] if f["code"] == "BENZODIAZEPINE")
    appointment = AppointmentFactory(course=course, booked_by=clinician,
                                     starts_at=timezone.now() + timedelta(days=1))
    patient.rems_enrolled_on = today - timedelta(days=60)
    patient.save(update_fields=["rems_enrolled_on"])
    # Everything the REMS form takes from the clinic and the clinician: it can be submitted.
    ClinicSettings(pk=1, setting_name="Fuzz Clinic", address="1 Main St", city="Springfield",
                   state="IL", zip_code="62701", telephone="+1 555 010 4000").save()
    clinician.telephone, clinician.email = "+1 555 010 3002", "dr@clinic.example"
    clinician.save(update_fields=["telephone", "email"])
    rems_session, rems_submitted = (
        IntranasalSessionFactory(course=course, clinician=clinician,
                                 started_at=timezone.now() - timedelta(days=days))
        for days in (3, 5)
    )
    Submission.objects.create(session=rems_submitted, submitted_on=today, confirmation="RC-1",
                              recorded_by=clinician, recorded_at=timezone.now())
    self_report_plan, token = sent_self_report_link(course, clinician)
    return Clinic(as_user, clinician, newcomer, referrer, patient, weight, medication, course,
                  session, assessment, flag, self_report_plan=self_report_plan,
                  link_token=token, admin=clinic_admin,
                  other_referrer=UserFactory(role=Role.REFERRING_PROVIDER), today=today,
                  appointment=appointment, courseless=PatientFactory(referring_provider=referrer),
                  rems_session=rems_session, rems_submitted=rems_submitted)


WATCHED_MODELS = [
    User, Patient, WeightRecord, PriorTrial, Medication, Course, PhaseChange, TreatmentSession,
    AdverseEvent, FlagDecision, Assessment, ClinicSettings, Plan, Appointment,
    SessionAmendment, SessionVoid,
    SelfReportPlan, Invitation, Alert, Submission,
]


def state(clinic: Clinic, ignored_actions: tuple[str, ...]) -> dict:
    """Everything a refused form must leave alone: each table's rows (how many, the last id),
    the audit trail (less the ``ignored_actions``) and the clinic's own rows, field by field."""
    found = {
        model._meta.label: model.objects.aggregate(rows=Count("pk"), last=Max("pk"))
        for model in WATCHED_MODELS
    }
    found["audit"] = AuditEvent.objects.exclude(action__in=ignored_actions).aggregate(
        rows=Count("pk"), last=Max("pk")
    )
    found["authenticators"] = list(
        TOTPDevice.objects.order_by("pk").values_list("user_id", "confirmed")
    )
    for row in clinic.rows():
        # last_login moves when a rolled-back login is done again between examples.
        names = [f.name for f in row._meta.concrete_fields if f.name != "last_login"]
        found[f"{row._meta.label} {row.pk}"] = snapshot(
            type(row).objects.get(pk=row.pk), names
        )
    return found


def _strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def assert_storable(row) -> None:
    """What SQLite keeps but PostgreSQL refuses with an error page: text longer than its
    column, or a NUL anywhere in text or JSON. Checked on every row a form saved, so that a
    run on SQLite finds these too."""
    for column in row._meta.concrete_fields:
        name, value = f"{row._meta.label}.{column.name}", getattr(row, column.attname)
        if isinstance(column, JSONField):
            value = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
        for text in _strings(value):
            assert "\x00" not in text, f"{name} holds a NUL"
        if isinstance(value, str) and column.max_length:
            assert len(value) <= column.max_length, f"{name}: {len(value)} characters"


def assert_saved_rows_storable(clinic: Clinic, before: dict) -> None:
    for model in WATCHED_MODELS:
        for row in model.objects.filter(pk__gt=before[model._meta.label]["last"] or 0):
            assert_storable(row)
    for row in AuditEvent.objects.filter(pk__gt=before["audit"]["last"] or 0):
        assert_storable(row)
    for row in clinic.rows():
        assert_storable(type(row).objects.get(pk=row.pk))


@contextmanager
def rolled_back():
    """Run one example in a savepoint and undo it, so each example meets the same clinic."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


# -- every form of the app -----------------------------------------------------------------------

@dataclass(frozen=True)
class FormSpec:
    name: str
    url: object  # (Clinic) -> str
    valid: object  # (Clinic) -> dict: a submission the form accepts
    created: type | None = None  # the model a saved form adds a row to
    actor: str = ""  # that row's field naming who saved it
    login: str = "verified"  # how the poster is logged in: see Clinic.log_in
    user: str = "clinician"  # who posts: an attribute of Clinic
    ignored_actions: tuple[str, ...] = (Action.LOGIN,)
    # For a view that redirects either way: (posted data) -> True when the form refused it.
    refuses: Callable[[dict], bool] | None = None


def _posted(data: dict, name: str):
    """What ``request.POST.get(name)`` reads: the last of a repeated key."""
    value = data.get(name)
    return value[-1] if isinstance(value, list) else value


CLASSES = {value for value, _ in ClassifyMedicationForm.base_fields["drug_class"].choices}


def _patient_fields(c: Clinic, record_number: str) -> dict:
    return {
        "record_number": record_number, "first_name": "Ada", "last_name": "Fuzz",
        "date_of_birth": "1980-05-01", "sex": "female", "height_cm": "170.0",
        "diagnosis": "mdd", "psychotic_features": "on", "comorbidities": "asthma",
        "prior_ect": "", "prior_tms": "on", "referring_provider": str(c.referrer.pk),
        "email": "ada@patient.example", "self_report_consent_on": "2026-01-05",
        "rems_enrolled_on": "2026-01-05", "rems_number": "RP-2026-0001",
    }


TOKEN = "0b5c2a4e-7f1d-4c39-9a57-3e2f8d6b1c0a"  # the one-time token a form is rendered with
STAFF_PASSWORD = "a-New-passphrase-4-staff"  # an initial or new password an admin sets


def _items(count: int, score: int = 2) -> dict:
    return {f"item_{n}": str(score) for n in range(1, count + 1)}


def _session_fields(c: Clinic) -> dict:
    start = timezone.now() - timedelta(days=1)
    return {
        "started_at": _local(start), "route": "iv", "dose_mg_per_kg": "0.5",
        "weight_basis": "actual", "infusion_minutes": "40", "dose_mg": "",
        "enhanced_monitoring": "", "bp_pre_systolic": "128", "bp_pre_diastolic": "82",
        "hr_pre": "70", "bp_peak_systolic": "150", "bp_peak_diastolic": "90", "hr_peak": "90",
        "bp_discharge_systolic": "125", "bp_discharge_diastolic": "80", "hr_discharge": "72",
        "spo2_min": "96", "dissociation": "mild", "benzodiazepine_24h": "",
        "recovery_minutes": "60", "discharged_at": _local(start + timedelta(hours=2)),
        "status": "completed", "stop_reason": "", "note": "tolerated well",
        "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0", "ae-MIN_NUM_FORMS": "0",
        "ae-MAX_NUM_FORMS": "10", "ae-0-description": "nausea", "ae-0-severity": "mild",
        "ae-1-description": "", "ae-1-severity": "", "ae-2-description": "",
        "ae-2-severity": "", "submission_token": TOKEN, **REMS_BLANK,
    }


# The Spravato REMS questions as an IV session's page posts them (hidden, unanswered; the
# server clears whatever comes), and as an intranasal session answers them.
REMS_BLANK = {name: "" for name in INTRANASAL_FIELDS} | {
    name: "unknown" for name in ("sedation", "dissociation_seen", "respiratory_depression",
                                 "serious_adverse_event")}


def _intranasal_session_fields(c: Clinic) -> dict:
    start = timezone.now() - timedelta(hours=4)
    return {
        **_session_fields(c), "route": "intranasal", "dose_mg_per_kg": "", "dose_mg": "56",
        "weight_basis": "", "infusion_minutes": "", "started_at": _local(start),
        "discharged_at": _local(start + timedelta(minutes=125)), "device_lot": "LOT-24A01",
        "bp_40_systolic": "142", "bp_40_diastolic": "88", "vitals_ok_before": "on",
        "vitals_ok_completion": "on", "ready_minutes": "90", "sedation": "false",
        "dissociation": "mild", "dissociation_seen": "true",
        "dissociation_seen_details": "mild, gone by 60 minutes",
        "respiratory_depression": "false", "serious_adverse_event": "false",
    }


def current_code(user: User) -> str:
    """What the user's authenticator app shows now."""
    device = TOTPDevice.objects.get(user=user)
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


FORMS = [
    FormSpec(
        "login", lambda c: reverse("login"),
        lambda c: {"username": c.clinician.username, "password": PASSWORD},
        login="anonymous", ignored_actions=(Action.LOGIN, Action.LOGIN_FAILED),
    ),
    FormSpec(
        "two-factor", lambda c: reverse("two-factor"),
        lambda c: {"token": current_code(c.clinician), "next": reverse("patients:list")},
        login="password", ignored_actions=(Action.LOGIN, Action.LOGIN_FAILED),
    ),
    FormSpec(
        "two-factor-setup", lambda c: reverse("two-factor-setup"),
        lambda c: {"token": current_code(c.newcomer), "next": reverse("patients:list")},
        login="password", user="newcomer", ignored_actions=(Action.LOGIN, Action.LOGIN_FAILED),
    ),
    FormSpec(
        # The button that creates the authenticator being enrolled (a GET creates nothing).
        "two-factor-start", lambda c: reverse("two-factor-setup"),
        lambda c: {"start": "1", "next": reverse("patients:list")},
        login="password", user="newcomer", ignored_actions=(Action.LOGIN, Action.LOGIN_FAILED),
    ),
    FormSpec(
        "password-change", lambda c: reverse("password_change"),
        lambda c: {"old_password": PASSWORD, "new_password1": "a-New-passphrase-4-fuzz",
                   "new_password2": "a-New-passphrase-4-fuzz"},
    ),
    FormSpec(
        "patient-new", lambda c: reverse("patients:new"),
        lambda c: {**_patient_fields(c, "FUZZ-1"), "weight_kg": "70.5", "version": ""},
        created=Patient,
    ),
    FormSpec(
        "patient-edit", lambda c: reverse("patients:edit", args=[c.patient.pk]),
        lambda c: {**_patient_fields(c, c.patient.record_number),
                   "version": str(c.patient.version)},
    ),
    FormSpec(
        "weight-new", lambda c: reverse("patients:weight-new", args=[c.patient.pk]),
        lambda c: {"measured_on": c.today.isoformat(), "weight_kg": "81.5"},
        created=WeightRecord, actor="recorded_by",
    ),
    FormSpec(
        "trial-new", lambda c: reverse("patients:trial-new", args=[c.patient.pk]),
        lambda c: {"drug": "sertraline", "drug_class": "ssri", "dose": "150 mg", "weeks": "8",
                   "adequate": "on", "outcome": "no_response"},
        created=PriorTrial, actor="recorded_by",
    ),
    FormSpec(
        "medication-new", lambda c: reverse("patients:medication-new", args=[c.patient.pk]),
        lambda c: {"name": "lithium", "dose": "300 mg", "drug_class": "",
                   "started_on": (c.today - timedelta(days=10)).isoformat()},
        created=Medication, actor="recorded_by",
    ),
    FormSpec(
        "medication-stop", lambda c: reverse("patients:medication-stop", args=[c.medication.pk]),
        lambda c: {"stopped_on": c.today.isoformat(), "reason": "tapered"},
    ),
    FormSpec(
        "medication-classify",
        lambda c: reverse("patients:medication-classify", args=[c.medication.pk]),
        lambda c: {"drug_class": "ssri"},
        refuses=lambda data: _posted(data, "drug_class") not in CLASSES,
    ),
    FormSpec(
        "course-new", lambda c: reverse("courses:new", args=[c.courseless.pk]),
        lambda c: {"started_on": c.today.isoformat(), "phase": "induction",
                   "planned_protocol": "IV 0.5 mg/kg × 6"},
        created=Course, actor="created_by",
    ),
    FormSpec(
        "phase-change", lambda c: reverse("courses:phase", args=[c.course.pk]),
        lambda c: {"to_phase": "maintenance", "effective_on": c.today.isoformat(),
                   "note": "responded"},
        created=PhaseChange, actor="changed_by",
    ),
    FormSpec(
        "course-end", lambda c: reverse("courses:end", args=[c.course.pk]),
        lambda c: {"ended_on": c.today.isoformat(), "reason": "completed", "note": "done"},
        created=PhaseChange, actor="changed_by",
    ),
    FormSpec(
        "session-new", lambda c: reverse("courses:session-new", args=[c.course.pk]),
        _session_fields, created=TreatmentSession, actor="clinician",
    ),
    FormSpec(
        "session-new-intranasal", lambda c: reverse("courses:session-new", args=[c.course.pk]),
        _intranasal_session_fields, created=TreatmentSession, actor="clinician",
    ),
    # A saved session amended: one SessionAmendment per changed field, so not "created".
    FormSpec(
        "session-amend", lambda c: reverse("courses:session-amend", args=[c.session.pk]),
        lambda c: {**{name: value for name, value in _session_fields(c).items()
                      if name != "submission_token"},
                   "version": str(c.session.version), "reason": "vitals typed late"},
    ),
    FormSpec(
        "session-discharge", lambda c: reverse("courses:session-discharge", args=[c.session.pk]),
        lambda c: {"discharged_at": _local(c.session.started_at + timedelta(hours=2)),
                   "recovery_minutes": "90", "bp_discharge_systolic": "124",
                   "bp_discharge_diastolic": "78", "hr_discharge": "70", "spo2_min": "97",
                   "version": str(c.session.version), "reason": ""},
    ),
    FormSpec(
        "session-void", lambda c: reverse("courses:session-void", args=[c.session.pk]),
        lambda c: {"reason": "entered on the wrong patient", "version": str(c.session.version)},
        created=SessionVoid, actor="voided_by",
    ),
    FormSpec(
        "flag-decide", lambda c: reverse("courses:flag-decide", args=[c.course.pk, c.flag]),
        lambda c: {"decision": "accepted", "action": "medication_change",
                   "detail": "clonazepam held on treatment days", "reason": ""},
        created=FlagDecision, actor="decided_by",
    ),
    FormSpec(
        "assessment-madrs", lambda c: reverse("assessments:new", args=[c.course.pk, "madrs"]),
        lambda c: {"administered_at": _local(timezone.now()), **_items(10),
                   "submission_token": TOKEN},
        created=Assessment, actor="scored_by",
    ),
    FormSpec(
        "assessment-phq9", lambda c: reverse("assessments:new", args=[c.course.pk, "phq9"]),
        lambda c: {"administered_at": _local(timezone.now()), **_items(9, 1),
                   "difficulty": "somewhat", "submission_token": TOKEN},
        created=Assessment, actor="scored_by",
    ),
    FormSpec(
        "assessment-correct", lambda c: reverse("assessments:correct", args=[c.assessment.pk]),
        lambda c: {"administered_at": _local(c.assessment.administered_at), **_items(10, 3),
                   "reason": "item 4 misread", "submission_token": TOKEN},
        created=Assessment, actor="scored_by",
    ),
    # Patient self-report (tests/test_selfreport.py has its rules).
    FormSpec(
        "self-report-plan", lambda c: reverse("selfreport:plan-new", args=[c.course.pk]),
        lambda c: {"schedule": "after_maintenance"}, created=SelfReportPlan, actor="created_by",
    ),
    FormSpec(
        "self-report-stop",
        lambda c: reverse("selfreport:plan-stop", args=[c.self_report_plan.pk]), lambda c: {},
    ),
    FormSpec(
        "self-report-send-again",
        lambda c: reverse("selfreport:plan-send-again", args=[c.self_report_plan.pk]), lambda c: {},
    ),
    # The patient's questionnaire, through the link and no login; signed by the link, so no
    # clinician is its actor.
    FormSpec(
        "self-report-answer", lambda c: reverse("selfreport:answer", args=[c.link_token]),
        lambda c: {**_items(9, 1), "difficulty": "very"}, created=Assessment,
        login="anonymous",
    ),
    # Staff accounts, posted by a clinic admin (tests/test_staff.py has their rules).
    FormSpec(
        "staff-create", lambda c: reverse("staff-create"),
        lambda c: {"username": "np-fuzz", "first_name": "Nora", "last_name": "Fuzz",
                   "email": "nora@clinic.example", "telephone": "+1 555 010 3000",
                   "credentials": "NP", "role": "clinician",
                   "password1": STAFF_PASSWORD, "password2": STAFF_PASSWORD},
        created=User, user="admin",
    ),
    FormSpec(
        "staff-edit", lambda c: reverse("staff-edit", args=[c.clinician.pk]),
        lambda c: {"first_name": "Ada", "last_name": "Fuzz", "email": "ada@clinic.example",
                   "telephone": "555-010-3001", "credentials": "MD",
                   "version": version_of(c.clinician)},
        user="admin",
    ),
    FormSpec(
        "staff-role", lambda c: reverse("staff-role", args=[c.clinician.pk]),
        lambda c: {"role": "clinic_admin", "version": version_of(c.clinician)}, user="admin",
    ),
    FormSpec(
        "staff-password", lambda c: reverse("staff-password", args=[c.clinician.pk]),
        lambda c: {"new_password1": STAFF_PASSWORD, "new_password2": STAFF_PASSWORD},
        user="admin",
    ),
    FormSpec(
        "exports-list", lambda c: reverse("exports:list"),
        # Filters the clinic's course meets (one that matches no course is refused).
        lambda c: {"started_from": "2026-01-01", "started_to": c.today.isoformat(),
                   "statuses": Course.objects.get(pk=c.course.pk).status, "routes": "iv",
                   "include_pdfs": "on", "submission_token": TOKEN},
        # Not a watched model (its id is a UUID, and the harness finds new rows by the
        # largest id); an export is never saved without its audit row, which is watched.
        user="admin",
    ),
    # Plans and appointments (tests/test_clinic.py has their rules).
    FormSpec(
        "clinic-settings", lambda c: reverse("clinic:settings"),
        lambda c: {**CLINIC_SETTINGS_POST, "book_weekends": "on", "default_time": "09:30",
                   "setting_name": "Fuzz Clinic", "address": "1 Main St", "city": "Springfield",
                   "state": "IL", "zip_code": "62701", "telephone": "+1 555 010 4000"},
        created=ClinicSettings, user="admin",
    ),
    FormSpec(
        "plan", lambda c: reverse("clinic:plan", args=[c.course.pk]),
        lambda c: {"route": "iv", "dose_mg_per_kg": "0.5", "dose_mg": "",
                   "schedule": "ketamine_induction", "starts_on": c.today.isoformat()},
        created=Plan, actor="set_by",
    ),
    FormSpec(
        "appointment-new", lambda c: reverse("clinic:appointment-new", args=[c.course.pk]),
        lambda c: {"starts_at": _local(timezone.now() + timedelta(days=2)), "route": "intranasal",
                   "dose_mg_per_kg": "", "dose_mg": "84", "note": "after work",
                   "submission_token": TOKEN},
        created=Appointment, actor="booked_by",
    ),
    FormSpec(
        "appointment-move", lambda c: reverse("clinic:appointment-move", args=[c.appointment.pk]),
        lambda c: {"starts_at": _local(timezone.now() + timedelta(days=3)), "route": "iv",
                   "dose_mg_per_kg": "0.6", "dose_mg": "", "note": "moved by phone"},
    ),
    FormSpec(
        "appointment-cancel",
        lambda c: reverse("clinic:appointment-cancel", args=[c.appointment.pk]),
        lambda c: {"reason": "patient unwell"},
    ),
    FormSpec(
        "rems-submit", lambda c: reverse("rems:submit", args=[c.rems_session.pk]),
        lambda c: {"submitted_on": c.today.isoformat(), "confirmation": "RC-20260401-77"},
        created=Submission, actor="recorded_by",
    ),
    FormSpec(
        "rems-undo", lambda c: reverse("rems:undo", args=[c.rems_submitted.pk]),
        lambda c: {"reason": "confirmation number mistyped"},
    ),
    # The buttons: no fields, so only smuggled ones are fuzzed.
    FormSpec(
        "staff-deactivate", lambda c: reverse("staff-deactivate", args=[c.clinician.pk]),
        lambda c: {}, user="admin",
    ),
    FormSpec(
        "staff-reactivate", lambda c: reverse("staff-reactivate", args=[c.clinician.pk]),
        lambda c: {}, user="admin",
    ),
    FormSpec(
        "staff-two-factor-reset",
        lambda c: reverse("staff-two-factor-reset", args=[c.clinician.pk]),
        lambda c: {}, user="admin",
    ),
    FormSpec(
        "staff-link", lambda c: reverse("staff-link", args=[c.other_referrer.pk]),
        lambda c: {"record_number": c.patient.record_number, "replace": "on"}, user="admin",
    ),
    FormSpec(
        "staff-unlink",
        lambda c: reverse("staff-unlink", args=[c.referrer.pk, c.patient.pk]),
        lambda c: {}, user="admin",
    ),
]


def post_and_check(client, clinic: Clinic, spec: FormSpec, data: dict) -> int:
    """Post ``data`` to the form and check the answer; returns its status code.

    Never a 500. Refused (anything but a redirect): every table, the clinic's rows and the
    audit trail are as they were. Saved: at most one row added, by the clinician who posted
    it, and the page the redirect leads to renders with any injected markup escaped.
    """
    if spec.login == "anonymous":
        client.logout()
    elif "_auth_user_id" not in client.session:  # a rolled-back login or password change
        clinic.log_in(client, spec.login, getattr(clinic, spec.user))
    with rolled_back():
        before = clinic.baseline(spec.ignored_actions)
        response = client.post(spec.url(clinic), data)
        assert response.status_code < 500
        if response.status_code != 302 or (spec.refuses and spec.refuses(data)):
            assert state(clinic, spec.ignored_actions) == before, "a refused form saved data"
            return response.status_code
        assert not response.url.startswith(reverse("login")), "the clinician was logged out"
        assert_saved_rows_storable(clinic, before)
        if spec.created:
            added = spec.created.objects.filter(
                pk__gt=before[spec.created._meta.label]["last"] or 0
            )
            assert added.count() <= 1
            for row in added if spec.actor else []:
                assert getattr(row, f"{spec.actor}_id") == clinic.clinician.pk, "actor forged"
        if spec.login != "anonymous":
            page = client.get(response.url)
            assert page.status_code < 500, response.url
            body = page.content.decode()
            assert not [markup for markup in MARKUP if markup in body], "markup not escaped"
        return response.status_code


# Views that take no form: GET pages (their parameters are fuzzed below) and logout, whose
# POST has no fields and only ends the session.
NOT_FORMS = {
    "home", "keepalive", "logout", "patients:list", "patients:detail", "courses:detail",
    "courses:sessions", "courses:scores",  # GET only: ids in PK_URLS, page in tests/test_courses
    "courses:chart", "reports:course-chart",  # GET only, no parameters: ids in PK_URLS
    "courses:session-detail", "assessments:detail", "audit:report", "audit:export",
    "reports:list", "reports:patient",  # read-only, GET only: fuzzed in tests/test_reports.py
    "reports:patient-pdf", "reports:record-pdf",  # GET only: tests/test_reports.py
    # GET only, or a button (again): tests/test_exports.py
    "exports:detail", "exports:status", "exports:download", "exports:again",
    "staff-list", "staff-detail",  # GET only: tests/test_staff.py; ids fuzzed below
    "outcomes:dashboard",  # GET only: its period is fuzzed in tests/test_outcomes.py
    # The patient's thank-you pages: static, GET only; the link's token: tests/test_selfreport.py
    "selfreport:thanks", "selfreport:thanks-help",
    "clinic:day", "clinic:unbooked", "clinic:undecided",  # GET only: parameters fuzzed below
    "guidance:rules", "guidance:sources",  # GET only, no parameters: tests/test_guidance.py
    # GET only: their parameters are fuzzed below; ids in PK_URLS
    "rems:queue", "rems:form", "rems:pdf", "rems:print", "rems:export",
}


def test_every_url_of_the_app_is_fuzzed(clinic):
    fuzzed = {resolve(urlsplit(spec.url(clinic)).path).view_name for spec in FORMS}
    assert url_names(get_resolver().url_patterns) == fuzzed | NOT_FORMS, (
        "a URL was added or renamed: add its form to FORMS, or its name to NOT_FORMS"
    )


def test_each_form_saves_its_valid_submission(client, clinic):
    """The submissions the fuzzer tampers with are accepted as they are, so its small changes
    reach each form's cross-field checks and its save."""
    for spec in FORMS:
        with rolled_back():
            clinic.log_in(client, spec.login, getattr(clinic, spec.user))
            response = client.post(spec.url(clinic), spec.valid(clinic))
            form = response.context and response.context.get("form")
            assert response.status_code == 302, (spec.name, form and form.errors)
            assert not response.url.startswith(reverse("login")), spec.name


@pytest.mark.parametrize("spec", FORMS, ids=lambda spec: spec.name)
def test_every_field_meets_its_edge_values(client, clinic, spec):
    """Each field in turn, every other field valid: the edges of its kind (dates at the ends of
    the calendar, numbers beyond any range), NUL, 10,000 characters, a repeated key, left out;
    and an empty post."""
    valid = spec.valid(clinic)
    tries = [(name, edge) for name, value in valid.items()
             for edge in EDGES[kind(value)] + COMMON_EDGES]
    for name, edge in [*tries, ("(every field)", MISSING)]:
        data = {**valid, name: edge} if name in valid else {}
        if edge == MISSING:
            data.pop(name, None)
        try:
            post_and_check(client, clinic, spec, data)
        except Exception as error:
            raise AssertionError(f"{spec.name}: {name}={str(edge)[:60]!r}") from error


# What a form's page holds that no sweep needs: Django's CSRF token, where to go next; and,
# by spec, another form on the same page with its own spec.
NOT_SWEPT = {"csrfmiddlewaretoken", "next"}
OTHER_FORM = {"two-factor-start": {"token"}}  # the code, swept by "two-factor-setup"
FIELD_NAME = re.compile(r'<(?:input|select|textarea)\b[^>]*?\bname="([^"]+)"')


@pytest.mark.parametrize("spec", FORMS, ids=lambda spec: spec.name)
def test_each_forms_valid_post_gives_every_field_its_page_shows(client, clinic, spec):
    """The sweep above meets the fields of the valid post only: a field the page shows and the
    post leaves out would never be fuzzed (a staff member's telephone once answered 500 so)."""
    if spec.login == "anonymous":
        client.logout()
    else:
        clinic.log_in(client, spec.login, getattr(clinic, spec.user))
    page = client.get(spec.url(clinic))
    if page.status_code != 200:  # posted from another page (a button, a confirmation)
        return
    shown = set(FIELD_NAME.findall(page.content.decode())) - NOT_SWEPT - OTHER_FORM.get(
        spec.name, set())
    assert shown <= set(spec.valid(clinic)), sorted(shown - set(spec.valid(clinic)))


@pytest.mark.parametrize("spec", FORMS, ids=lambda spec: spec.name)
@FUZZ
@given(draw=st.data())
def test_hostile_form_posts_never_fail_and_save_nothing_when_refused(client, clinic, spec,
                                                                     draw):
    post_and_check(client, clinic, spec, draw.draw(tampered(spec.valid(clinic)), "posted"))


# Each of these answered 500 before it was fixed: the form now refuses it, naming the field.
REGRESSIONS = [
    # django-axes keeps failed logins' user names in 255 characters (PostgreSQL only)
    ("login", "username", "A" * 256, "username"),
    # not convertible to UTC (year 10000) or to the clinic's time (year 0)
    ("session-new", "discharged_at", "9999-12-31T23:59", "discharged_at"),
    ("session-new", "discharged_at", "9999-12-31T23:59-14:00", "discharged_at"),
    ("session-new", "started_at", "0001-01-01T00:00+14:00", "started_at"),
    ("assessment-madrs", "administered_at", "0001-01-01T00:00+14:00", "administered_at"),
    ("assessment-correct", "administered_at", "0001-01-01T00:00+14:00", "administered_at"),
    # kept as the last phase change's note too, 200 characters (PostgreSQL only)
    ("course-end", "note", "A" * 201, "note"),
]


@pytest.mark.parametrize("name,field_name,value,error", REGRESSIONS,
                         ids=[f"{r[0]}-{r[1]}" for r in REGRESSIONS])
def test_inputs_that_once_failed_are_refused_by_the_form(client, clinic, name, field_name,
                                                         value, error):
    spec = next(spec for spec in FORMS if spec.name == name)
    clinic.log_in(client, spec.login, getattr(clinic, spec.user))
    response = client.post(spec.url(clinic), {**spec.valid(clinic), field_name: value})
    assert response.status_code == 200
    assert error in response.context["form"].errors


def _is_date(value) -> bool:
    try:
        return isinstance(value, str) and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


@pytest.mark.parametrize("spec", FORMS, ids=lambda spec: spec.name)
def test_every_date_field_takes_only_1900_to_2099(client, clinic, spec):
    """The plausibility bound of session and assessment times holds for every date a form
    takes: course, weight, phase, medication, birth, and the export filters."""
    valid = spec.valid(clinic)
    dates = [name for name, value in valid.items() if _is_date(value)]
    clinic.log_in(client, spec.login, getattr(clinic, spec.user))
    for name in dates:
        for typo in ("0202-05-01", "1899-12-31", "2100-01-01", "9999-12-31"):
            with rolled_back():
                before = clinic.baseline(spec.ignored_actions)
                response = client.post(spec.url(clinic), {**valid, name: typo})
                assert response.status_code == 200, (spec.name, name, typo)
                errors = response.context["form"].errors[name]
                assert "Enter a date between 1900 and 2099." in errors, (spec.name, name, errors)
                assert state(clinic, spec.ignored_actions) == before


# -- URL parameters ------------------------------------------------------------------------------

QUERY = st.one_of(TEXT, NUMBERS)


@pytest.fixture
def more_patients(db):
    PatientFactory.create_batch(PAGE_SIZE)  # a second page of patients


@FUZZ
@given(q=QUERY, page=QUERY)
@example(q="\x00", page="1")  # answered 500 on PostgreSQL, which refuses NUL in a query
@example(q="a\x00b c", page="-1")
def test_patient_list_search_and_page_never_fail(client, clinic, more_patients, q, page):
    clinic.log_in(client)
    response = client.get(reverse("patients:list"), {"q": q, "page": page})
    assert response.status_code == 200
    body = response.content.decode()
    for markup in MARKUP:
        assert markup not in body


@FEW
@given(decision=QUERY)
def test_flag_decision_prefill_never_fails(client, clinic, decision):
    clinic.log_in(client)
    url = reverse("courses:flag-decide", args=[clinic.course.pk, clinic.flag])
    assert client.get(url, {"decision": decision}).status_code == 200


@FUZZ
@given(day=QUERY | DATES, page=QUERY)
@example(day="0001-01-01", page="1")
@example(day="9999-12-31", page="-1")
@example(day="2026-03-08", page="1")  # the day the clocks change in New York
def test_day_sheet_and_unbooked_parameters_never_fail(client, clinic, day, page):
    clinic.log_in(client)
    response = client.get(reverse("clinic:day"), {"day": day})
    assert response.status_code == 200
    assert not [markup for markup in MARKUP if markup in response.content.decode()]
    assert client.get(reverse("clinic:unbooked"), {"page": page}).status_code == 200
    assert client.get(reverse("clinic:undecided"), {"page": page}).status_code == 200


@FEW
@given(show=QUERY, forms=st.lists(QUERY, max_size=4), start=QUERY | DATES,
       end=QUERY | DATES)
@example(show="overdue", forms=["0", "9" * 400], start="2026-01-01", end="0001-01-01")
@example(show="", forms=["²"], start="", end="")  # isdigit() but not int(): answered 500
def test_rems_queue_print_and_export_parameters_never_fail(client, clinic, show, forms, start,
                                                           end):
    clinic.log_in(client)
    response = client.get(reverse("rems:queue"), {"show": show})
    assert response.status_code == 200
    assert not [markup for markup in MARKUP if markup in response.content.decode()]
    assert client.get(reverse("rems:print"), {"form": forms}).status_code in (200, 302, 404)
    clinic.log_in(client, user=clinic.admin)
    assert client.get(reverse("rems:export"), {"start": start, "end": end}).status_code == 200


@FEW
@given(appointment=QUERY)
@example(appointment="1" * 30)
@example(appointment="²")
def test_session_form_appointment_parameter_never_fails(client, clinic, appointment):
    clinic.log_in(client)
    url = reverse("courses:session-new", args=[clinic.course.pk])
    assert client.get(url, {"appointment": appointment}).status_code == 200


OFF_SITE = [
    "//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "\x00/patients/", "/%0d%0aSet-Cookie:x=1", "http:/evil.example",
]


@FEW
@given(next_url=st.one_of(TEXT, st.sampled_from(OFF_SITE)), idle=QUERY)
def test_login_page_parameters_never_fail_nor_redirect_away(client, clinic, next_url, idle):
    assert client.get(reverse("login"), {"next": next_url, "idle": idle}).status_code == 200
    with rolled_back():
        response = client.post(
            f"{reverse('login')}?{urlencode({'next': next_url})}",
            {"username": clinic.clinician.username, "password": PASSWORD},
        )
        assert response.status_code == 302
        target = urlsplit(response.url)
        assert (target.scheme, target.netloc) == ("", ""), response.url  # stays on this site
        assert not response.url.startswith(("//", "/\\", "\\")), response.url


@FEW
@given(next_url=st.one_of(TEXT, st.sampled_from(OFF_SITE)), query=QUERY)
@example(next_url="ß" * 20, query="")  # read as a view name by redirect(): answered 500
@example(next_url="home", query="")
def test_two_factor_next_parameter_never_fails_nor_redirects_away(client, clinic, next_url,
                                                                  query):
    clinic.log_in(client, "password")
    # Every page sends the clinician to the second factor first, with where they were going.
    assert client.get(reverse("patients:list"), {"q": query}).status_code in (302, 400)
    assert client.get(reverse("two-factor"), {"next": next_url}).status_code == 200
    with rolled_back():
        response = client.post(
            reverse("two-factor"), {"token": current_code(clinic.clinician), "next": next_url}
        )
        assert response.status_code == 302
        target = urlsplit(response.url)
        assert (target.scheme, target.netloc) == ("", ""), response.url  # stays on this site
        assert response.url.startswith("/") and not response.url.startswith(("//", "/\\"))


@FEW
@example(params={"patient": "²"})  # isdigit() but not int(): answered 500
@example(params={"patient": "٣", "user": "\x00", "sort": "-hash"})
@given(params=st.fixed_dictionaries({}, optional={
    name: QUERY | DATES for name in ("start", "end", "user", "patient", "action", "sort", "page")
}))
def test_audit_report_filters_never_fail(client, clinic, params):
    clinic.log_in(client, user=UserFactory(role=Role.CLINIC_ADMIN))
    assert client.get(reverse("audit:report"), params).status_code == 200
    response = client.get(reverse("audit:export"), params)
    # 400: the filters are sent back to the report, and a redirect of more than 16,384
    # characters is refused by Django.
    assert response.status_code in (200, 302, 400)
    if response.status_code == 200:
        b"".join(response.streaming_content)


# Every URL that takes an object's id, and what the id is of.
PK_URLS = [
    ("patients:detail", "patient"), ("patients:edit", "patient"),
    ("patients:weight-new", "patient"), ("patients:trial-new", "patient"),
    ("patients:medication-new", "patient"), ("patients:medication-stop", "medication"),
    ("patients:medication-classify", "medication"), ("courses:new", "patient"),
    ("courses:detail", "course"), ("courses:sessions", "course"), ("courses:scores", "course"),
    ("courses:chart", "course"), ("reports:course-chart", "course"), ("courses:phase", "course"),
    ("courses:end", "course"),
    ("courses:session-new", "course"), ("courses:session-detail", "session"),
    ("courses:session-amend", "session"), ("courses:session-discharge", "session"),
    ("courses:session-void", "session"),
    ("assessments:detail", "assessment"), ("assessments:correct", "assessment"),
    ("selfreport:plan-new", "course"), ("selfreport:plan-stop", "self_report_plan"),
    ("selfreport:plan-send-again", "self_report_plan"),
    ("clinic:plan", "course"), ("clinic:appointment-new", "course"),
    ("clinic:appointment-move", "appointment"), ("clinic:appointment-cancel", "appointment"),
    ("rems:form", "session"), ("rems:pdf", "session"), ("rems:submit", "session"),
    ("rems:undo", "session"),
]
PK_TEXT = st.one_of(
    st.integers(min_value=0, max_value=2**80).map(str),
    st.sampled_from([
        "0", "00", "0" * 50, "007", str(2**31), str(2**63 - 1), str(2**63), str(2**64),
        "9" * 5000, "-1", "1.0", "1e3", "٣", "²", "%00", "1%00", "1 OR 1=1", "abc",
    ]),
)


@FUZZ
@given(name=st.sampled_from(PK_URLS), pk=PK_TEXT, extra=st.dictionaries(TEXT, QUERY, max_size=2))
def test_object_ids_in_paths_never_fail(client, clinic, name, pk, extra):
    clinic.log_in(client)
    url = reverse(name[0], args=[0]).replace("/0/", f"/{quote(pk, safe='')}/", 1)
    assert client.get(url, extra).status_code in (200, 404, 405), url
    with rolled_back():
        # 400: Django's multipart parser refuses a body it will not read (a field name over
        # 1,024 characters, say) before any view code runs; 405: a page that is only read.
        assert client.post(url, extra).status_code in (200, 302, 400, 404, 405), url


# The staff URLs that take an account's id: for clinic admins only.
STAFF_PK_URLS = [
    "staff-detail", "staff-edit", "staff-role", "staff-password", "staff-deactivate",
    "staff-reactivate", "staff-two-factor-reset", "staff-link",
]


@FEW
@given(name=st.sampled_from(STAFF_PK_URLS), pk=PK_TEXT, patient_pk=PK_TEXT)
def test_account_ids_in_staff_paths_never_fail(client, clinic, name, pk, patient_pk):
    clinic.log_in(client, user=clinic.admin)
    url = reverse(name, args=[0]).replace("/0/", f"/{quote(pk, safe='')}/", 1)
    unlink = reverse("staff-unlink", args=[0, 0]).replace(
        "/0/patients/0/", f"/{quote(pk, safe='')}/patients/{quote(patient_pk, safe='')}/", 1
    )
    assert client.get(url).status_code in (200, 404, 405), url
    for target in (url, unlink):
        with rolled_back():
            # 405: the account page itself is GET only
            assert client.post(target).status_code in (200, 302, 404, 405), target


@FUZZ
@given(instrument=TEXT, code=TEXT, pk=PK_TEXT)
def test_instrument_and_flag_codes_in_paths_never_fail(client, clinic, instrument, code, pk):
    clinic.log_in(client)
    new = f"/courses/{quote(pk, safe='')}/assessments/new/{quote(instrument, safe='')}/"
    flag = f"/courses/{clinic.course.pk}/flags/{quote(code, safe='')}/"
    for url in (new, flag):
        with rolled_back():
            assert client.get(url).status_code in (200, 404), url
            assert client.post(url, {"decision": "declined", "reason": code}).status_code in (
                200, 302, 404
            ), url


def test_bytes_that_are_not_utf8_never_fail(client, clinic):
    """Lone surrogates and invalid UTF-8 cannot be typed but can be sent: they arrive as U+FFFD
    and are refused or searched for like any other text."""
    clinic.log_in(client)
    for raw in ("%ED%A0%80", "%ED%B0%80", "%FF%FE", "%C0%80", "%F4%90%80%80", "%E2%80"):
        response = client.get(reverse("patients:list"), QUERY_STRING=f"q={raw}&page={raw}")
        assert response.status_code == 200, raw
        body = f"measured_on={raw}&weight_kg=8{raw}0".encode()
        with rolled_back():
            before = state(clinic, (Action.LOGIN,))
            response = client.generic(
                "POST", reverse("patients:weight-new", args=[clinic.patient.pk]), body,
                content_type="application/x-www-form-urlencoded",
            )
            assert response.status_code == 200, raw
            assert state(clinic, (Action.LOGIN,)) == before


# -- ids in URLs cannot be guessed into a patient's data -----------------------------------------

def _objects(pk_base: int, **patient) -> dict:
    """A patient with one of each object, with distinctive ids to look for in pages."""
    p = PatientFactory(pk=pk_base, **patient)
    course = CourseFactory(pk=pk_base + 1, patient=p)
    WeightFactory(patient=p)
    return {
        "patient": p, "course": course,
        "medication": MedicationFactory(pk=pk_base + 2, patient=p),
        "session": SessionFactory(pk=pk_base + 3, course=course),
        "assessment": AssessmentFactory(pk=pk_base + 4, course=course),
        "appointment": AppointmentFactory(pk=pk_base + 5, course=course),
        "self_report_plan": SelfReportPlan.objects.create(
            pk=pk_base + 6, course=course, schedule=Schedule.WEEKLY, created_by=course.created_by
        ),
    }


def _without_tokens(body: bytes) -> str:
    """The page without what differs between any two requests: the CSRF token and the
    seconds left before automatic logoff."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body.decode())
    return re.sub(r'data-idle-seconds="\d+"', "", body)


def test_a_referring_provider_cannot_guess_ids_into_any_patient(as_user, referrer):
    mine = _objects(7_310_010, referring_provider=referrer, last_name="Referredpatient")
    other = _objects(7_310_020, last_name="Otherpatient")
    mine["course"].evaluation = {"flags": [{"code": "BENZODIAZEPINE", "message": "x"}]}
    mine["course"].save()
    client = as_user(referrer)
    missing = client.get(reverse("patients:detail", args=[7_319_999]))
    assert missing.status_code == 404
    not_found = _without_tokens(missing.content)
    assert "7319999" not in not_found
    urls = [f"{reverse('patients:list')}?q=patient", f"{reverse('patients:list')}?q=7310010"]
    for objects in (mine, other):
        # (the course charts of their reports: tests/test_reports.py)
        urls += [reverse(name, args=[objects[target].pk]) for name, target in PK_URLS
                 if name != "reports:course-chart"]
        urls += [
            reverse("assessments:new", args=[objects["course"].pk, "madrs"]),
            reverse("courses:flag-decide", args=[objects["course"].pk, "BENZODIAZEPINE"]),
        ]
    secrets = [
        str(pk) for objects in (mine, other) for pk in (o.pk for o in objects.values())
    ] + ["Referredpatient", "Otherpatient", mine["patient"].record_number,
         other["patient"].record_number]
    for url in urls:
        for response in (client.get(url), client.post(url, {"decision": "declined"})):
            assert response.status_code == 404, url
            body = _without_tokens(response.content)
            # The same page as for an id that does not exist: no oracle, and no id given away.
            assert body == not_found, url
            assert not [s for s in secrets if s in body], url
    assert not AuditEvent.objects.filter(action=Action.VIEW).exists()
    assert not FlagDecision.objects.exists()


def test_error_pages_give_no_id_or_name_away(as_user, clinician):
    objects = _objects(7_310_030, last_name="Hiddenpatient")
    client = as_user(UserFactory(role=Role.CLINIC_ADMIN))
    forbidden = client.post(reverse("patients:edit", args=[objects["patient"].pk]), {})
    assert forbidden.status_code == 403
    client = as_user(clinician)
    for response in (
        forbidden,
        client.get(reverse("patients:detail", args=[7_319_998])),
        client.get(reverse("courses:flag-decide", args=[objects["course"].pk, "NOT_RAISED"])),
        client.get(reverse("assessments:new", args=[objects["course"].pk, "hamd"])),
    ):
        assert response.status_code in (403, 404)
        body = response.content.decode()
        for secret in ("7310030", "7310031", "7319998", "Hiddenpatient", "NOT_RAISED", "hamd",
                       "Traceback", "not raised on this course"):
            assert secret not in body
