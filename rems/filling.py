"""The Spravato REMS patient monitoring form, filled from the record (SPEC §8).

One form per intranasal session of a REMS-enrolled patient. Nothing of the form is stored but
its submission (rems.models.Submission): every value is read from the patient, the session, the
medication list, the monitoring clinician and the clinic settings when the form is shown, in
§8's order. A required value the record does not hold is listed as missing, with the page where
it is given (the session's amendment, at that field).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from clinic.models import ClinicSettings
from clinical.vocab import MedClass, Route
from courses.models import TreatmentSession
from ketacare.paths import path_maker
from patients.models import Medication

DUE_DAYS = 7  # submitted within 7 calendar days of the session
AMBER_DAYS = 2  # due within this many days: shown amber
MIN_MONITORING = 120  # minutes from the first device to the end of monitoring
CONCOMITANT = (
    (MedClass.BENZODIAZEPINE, "Benzodiazepines"),
    (MedClass.SEDATIVE_HYPNOTIC, "Non-benzodiazepine sedative hypnotics"),
    (MedClass.PSYCHOSTIMULANT, "Psychostimulants"),
    (MedClass.MAOI, "Monoamine oxidase inhibitors (MAOIs)"),
)
# The session's fields the form requires (given yes/no questions: the answer, not "yes").
REQUIRED_SESSION_FIELDS = (
    "device_lot", "bp_40_systolic", "ready_minutes", "vitals_ok_before",
    "vitals_ok_completion", "sedation", "dissociation_seen", "respiratory_depression",
    "serious_adverse_event", "discharged_at", "bp_pre_systolic", "bp_discharge_systolic",
)
YES_NO_EVENTS = (
    ("sedation", "Sedation"),
    ("dissociation_seen", "Dissociation"),
    ("respiratory_depression", "Respiratory depression"),
    ("serious_adverse_event", "Serious adverse event (hospitalisation or emergency care)"),
)


@dataclass
class Item:
    label: str
    value: str
    missing: bool = False
    fix_url: str = ""  # where the missing value is given


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)

    def add(self, label: str, value, *, required: bool = True, fix_url: str = "") -> None:
        text = _text(value)
        self.items.append(Item(label, text, required and text == "", fix_url))


@dataclass
class RemsForm:
    session: TreatmentSession
    due_on: date
    sections: list[Section]
    submission: object = None  # rems.models.Submission or None
    url: str = ""  # the form's page

    @property
    def missing(self) -> list[Item]:
        return [item for section in self.sections for item in section.items if item.missing]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def submitted(self) -> bool:
        return self.submission is not None

    def state(self, today: date) -> str:
        """submitted, overdue or due (a form not submitted is also incomplete or not)."""
        if self.submitted:
            return "submitted"
        return "overdue" if today > self.due_on else "due"

    def urgency(self, today: date) -> str:
        """The row's colour: red when overdue, amber when due within 2 days."""
        if self.submitted:
            return ""
        if today > self.due_on:
            return "danger"
        return "warning" if (self.due_on - today).days <= AMBER_DAYS else ""


def _text(value) -> str:
    if value is None or value == "":
        return ""
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    return str(value)


def due_on(session: TreatmentSession) -> date:
    """Session day + 7, the day counted in the clinic's time zone."""
    return timezone.localdate(session.started_at) + timedelta(days=DUE_DAYS)


def amend_url(session: TreatmentSession, name: str, amend_path=None) -> str:
    """The session's amendment, opened at the field ``name`` (``amend_path``: the
    amendment's path maker, when filling many forms)."""
    path = (amend_path or path_maker("courses:session-amend"))(session.pk)
    return f"{path}#id_{name}"


def total_minutes(session: TreatmentSession) -> int | None:
    """Minutes from the first device to the end of monitoring (discharge)."""
    if session.discharged_at is None:
        return None
    return int((session.discharged_at - session.started_at).total_seconds() // 60)


def _bp(session, prefix: str) -> str:
    systolic, diastolic = getattr(session, f"{prefix}_systolic"), getattr(
        session, f"{prefix}_diastolic")
    return "" if systolic is None else f"{systolic}/{diastolic} mmHg"


def _dose(session) -> str:
    mg = session.dose_mg.normalize()
    return f"{mg:f} mg" if mg in (56, 84) else f"Other: {mg:f} mg"


def form_sessions() -> QuerySet:
    """The sessions that have a REMS form: intranasal sessions of REMS-enrolled patients
    (voided sessions have none), oldest first."""
    return TreatmentSession.objects.current().filter(
        route=Route.INTRANASAL, course__patient__rems_enrolled_on__isnull=False,
    ).order_by("started_at", "id")


def with_form_data(sessions: QuerySet) -> QuerySet:
    """``sessions`` (of :func:`form_sessions`) with what filling their forms reads, in a fixed
    number of queries."""
    earlier = TreatmentSession.objects.current().filter(
        course__patient=OuterRef("course__patient"), route=Route.INTRANASAL,
        started_at__lt=OuterRef("started_at"),
    )
    meds = Medication.objects.filter(drug_class__in=[c for c, _ in CONCOMITANT])
    return (
        sessions.annotate(has_earlier=Exists(earlier))
        .select_related("course__patient", "clinician", "rems_submission")
        .prefetch_related(Prefetch("course__patient__medications", queryset=meds,
                                   to_attr="rems_meds"))
    )


def forms_queryset() -> QuerySet:
    """The sessions that have a REMS form, with what filling them reads."""
    return with_form_data(form_sessions())


def fill(session: TreatmentSession, clinic: ClinicSettings, paths: dict | None = None
         ) -> RemsForm:
    """The form of one session (read through :func:`forms_queryset`). ``paths``: the path
    makers of :func:`form_paths`, when filling many."""
    patient = session.course.patient
    clinician = session.clinician
    day = timezone.localdate(session.started_at)
    first = not session.has_earlier
    paths = paths or form_paths()

    def fix(name: str) -> str:
        return amend_url(session, name, paths["amend"])

    who = Section("Patient")
    who.add("First name", patient.first_name)
    who.add("Last name", patient.last_name)
    who.add("Date of birth", patient.date_of_birth)
    who.add("Sex", patient.get_sex_display())
    who.add("First treatment", first)
    if first:
        who.add("Enrolled in the REMS", bool(patient.rems_enrolled_on))
        who.add("REMS enrolment date", patient.rems_enrolled_on)
    who.add("REMS patient number", patient.rems_number, required=False)

    meds = Section("Concomitant medications (may cause sedation or blood-pressure changes)")
    active = [m for m in patient.rems_meds
              if m.started_on <= day and (m.stopped_on is None or m.stopped_on >= day)]
    for med_class, label in CONCOMITANT:
        names = ", ".join(m.name for m in active if m.drug_class == med_class)
        meds.add(label, f"Yes: {names}" if names else "No")

    staff_url = paths["staff"](clinician.pk)
    settings_url = paths["settings"]
    monitoring = Section("Monitoring clinician and healthcare setting")
    monitoring.add("Clinician", clinician.get_full_name() or clinician.username)
    monitoring.add("Clinician telephone", clinician.telephone, fix_url=staff_url)
    monitoring.add("Clinician email", clinician.email, fix_url=staff_url)
    monitoring.add("Setting name", clinic.setting_name, fix_url=settings_url)
    monitoring.add("Address", clinic.address, fix_url=settings_url)
    monitoring.add("City", clinic.city, fix_url=settings_url)
    monitoring.add("State", clinic.state, fix_url=settings_url)
    monitoring.add("ZIP", clinic.zip_code, fix_url=settings_url)
    monitoring.add("Telephone", clinic.telephone, fix_url=settings_url)

    total = total_minutes(session)
    given = Section("Session")
    given.add("Date", day)
    given.add("Dose", _dose(session))
    given.add("Device lot number", session.device_lot, fix_url=fix("device_lot"))
    given.add("Total minutes, first device to end of monitoring",
              "" if total is None else (
                  f"{total}" + (f" (below {MIN_MONITORING})" if total < MIN_MONITORING else "")),
              fix_url=fix("discharged_at"))
    given.add("Would have been ready to leave after (minutes)", session.ready_minutes,
              fix_url=fix("ready_minutes"))
    given.add("Vital signs acceptable before administration", session.vitals_ok_before,
              fix_url=fix("vitals_ok_before"))
    given.add("Vital signs acceptable before completion", session.vitals_ok_completion,
              fix_url=fix("vitals_ok_completion"))
    given.add("Blood pressure before administration", _bp(session, "bp_pre"),
              fix_url=fix("bp_pre_systolic"))
    given.add("Blood pressure 40 minutes after administration", _bp(session, "bp_40"),
              fix_url=fix("bp_40_systolic"))
    given.add("Blood pressure before completion", _bp(session, "bp_discharge"),
              fix_url=fix("bp_discharge_systolic"))

    during = Section("During monitoring")
    for name, label in YES_NO_EVENTS:
        answer = getattr(session, name)
        during.add(label, answer, fix_url=fix(name))
        if answer:
            during.add(f"{label}: details", getattr(session, f"{name}_details"),
                       fix_url=fix(f"{name}_details"))
            if name == "respiratory_depression":
                during.add("Lowest SpO2 (%)", session.spo2_min, fix_url=fix("spo2_min"))

    submission = getattr(session, "rems_submission", None)
    return RemsForm(session, due_on(session), [who, meds, monitoring, given, during], submission,
                    url=paths["form"](session.pk))


def form_paths() -> dict:
    """The links a form holds, each URL name reversed once however many forms are filled."""
    return {"amend": path_maker("courses:session-amend"), "staff": path_maker("staff-edit"),
            "settings": reverse("clinic:settings"), "form": path_maker("rems:form")}


def fill_all(sessions) -> list[RemsForm]:
    sessions = list(sessions)
    if not sessions:
        return []
    clinic, paths = ClinicSettings.load(), form_paths()
    return [fill(session, clinic, paths) for session in sessions]


FILTERS = {
    "todo": "To do",
    "due": "Due",
    "overdue": "Overdue",
    "incomplete": "Incomplete",
    "submitted": "Submitted",
    "all": "All",
}


def filtered(forms: list[RemsForm], which: str, today: date) -> list[RemsForm]:
    if which == "all":
        return forms
    if which == "submitted":
        return [f for f in forms if f.submitted]
    if which == "incomplete":
        return [f for f in forms if not f.submitted and not f.complete]
    if which in ("due", "overdue"):
        return [f for f in forms if f.state(today) == which]
    return [f for f in forms if not f.submitted]


def sessions_for_filter(which: str, today: date) -> QuerySet:
    """The sessions of the forms ``which`` shows, as far as SQL can tell: all but
    incompleteness, which needs the filled form (:func:`filtered` finishes)."""
    sessions = form_sessions()
    if which == "submitted":
        return sessions.filter(rems_submission__isnull=False)
    if which == "all":
        return sessions
    sessions = sessions.filter(rems_submission__isnull=True)
    # Due on the session's day + 7 (in the clinic's time zone): overdue after it.
    due_from = timezone.make_aware(datetime.combine(today - timedelta(days=DUE_DAYS),
                                                    time.min))
    if which == "overdue":
        return sessions.filter(started_at__lt=due_from)
    if which == "due":
        return sessions.filter(started_at__gte=due_from)
    return sessions


def needs_filling(which: str) -> bool:
    """Whether only filled forms tell which ``which`` shows (incompleteness)."""
    return which == "incomplete"
