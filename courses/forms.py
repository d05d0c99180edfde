import functools
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from clinical import dosing
from clinical.vocab import Intensity, Phase, Route, SessionStatus, choices
from courses.models import (
    CONFIRMATIONS,
    ActionTaken,
    Course,
    Decision,
    EndReason,
    TreatmentSession,
    WeightBasis,
)
from ketacare.formrender import PLAIN_WIDGETS, BootstrapForm
from ketacare.forms import PlausibleDateField, SubmitOnceForm
from ketacare.prepared import Prepared
from ketacare.validators import plain_number, plausible_datetime
from ketacare.widgets import DateInput, DateTimeInput
from patients.models import Patient

_NEAR_COLUMNS = ("pk", "started_at", "submission_token")


def _others(other_than):
    """Sessions other than ``other_than`` (0: a new session, no id yet), in no order."""
    return TreatmentSession.objects.exclude(pk=other_than).order_by()


def _near(patient, since, until, other_than):
    """The patient's sessions not voided that started between ``since`` and ``until``."""
    return (_others(other_than).filter(course__patient_id=patient, void__isnull=True,
                                       started_at__gt=since, started_at__lt=until)
            .values_list(*_NEAR_COLUMNS))


def _near_or_saved(token, **values):
    """The same, and the session this very form saved if it was sent before. A UNION, not an
    OR: each half reads its own index (an OR of the two read every session of the clinic:
    15 ms at 60,000 sessions)."""
    saved = _others(values["other_than"]).filter(submission_token=token)
    return _near(**values).union(saved.values_list(*_NEAR_COLUMNS))


# Compiled once (ketacare.prepared): building the UNION cost more than running it.
_NEAR_VALUES = {"patient": int, "since": datetime, "until": datetime, "other_than": int}
_NEAR = Prepared(_near, **_NEAR_VALUES)
_NEAR_OR_SAVED = Prepared(_near_or_saved, token=UUID, **_NEAR_VALUES)


class CourseForm(forms.ModelForm):
    phase = forms.ChoiceField(
        choices=[(p, label) for p, label in choices(Phase) if p != Phase.ENDED],
        initial=Phase.INDUCTION,
    )

    class Meta:
        model = Course
        fields = ["started_on", "phase", "planned_protocol"]
        widgets = {"started_on": DateInput()}
        field_classes = {"started_on": PlausibleDateField}

    def __init__(self, *args, patient: Patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.open_course = patient.courses.active().first()

    def clean(self):
        data = super().clean()
        if self.open_course is not None:
            raise forms.ValidationError(open_course_message(self.open_course))
        return data

    def clean_started_on(self):
        day = self.cleaned_data["started_on"]
        if day > timezone.localdate() + timezone.timedelta(days=60):
            raise forms.ValidationError("Start date is more than 60 days ahead.")
        return day


def open_course_message(course: Course) -> str:
    return (
        f"This patient already has an open course, started {course.started_on} "
        f"({course.get_phase_display().lower()}). A patient has one course at a time: log "
        "sessions on that course, or end it before starting another."
    )


class PhaseChangeForm(forms.Form):
    to_phase = forms.ChoiceField(label="New phase")
    effective_on = PlausibleDateField(label="Effective on", widget=DateInput())
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, course: Course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        self.fields["to_phase"].choices = [
            (p, label) for p, label in choices(Phase) if p not in (Phase.ENDED, course.phase)
        ]

    def clean_effective_on(self):
        day = self.cleaned_data["effective_on"]
        if day < self.course.started_on:
            raise forms.ValidationError(
                f"Cannot be before the course started ({self.course.started_on})."
            )
        return day


class EndCourseForm(forms.Form):
    ended_on = PlausibleDateField(label="Ended on", widget=DateInput())
    reason = forms.ChoiceField(choices=EndReason.choices)
    # Kept as the note of the course's last phase change too, which holds 200 characters.
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=200
    )

    def __init__(self, *args, course: Course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course

    def clean_ended_on(self):
        day = self.cleaned_data["ended_on"]
        if day < self.course.started_on:
            raise forms.ValidationError(
                f"Cannot be before the course started ({self.course.started_on})."
            )
        return day


# What the Spravato REMS monitoring form asks of an intranasal session (SPEC §8): asked only
# for intranasal sessions (static/js/session-form.js shows them; the server clears them for the
# other routes whatever is sent).
INTRANASAL_FIELDS = (
    "device_lot", "bp_40_systolic", "bp_40_diastolic",
    "vitals_ok_before", "vitals_ok_completion", "ready_minutes",
    "sedation", "sedation_details", "dissociation_seen", "dissociation_seen_details",
    "respiratory_depression", "respiratory_depression_details",
    "serious_adverse_event", "serious_adverse_event_details",
)
class YesNoSelect(forms.NullBooleanSelect):
    """Not answered, yes or no; shows a saved answer again (an amendment keeps it)."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "—"), ("true", "Yes"), ("false", "No")]


class SessionForm(BootstrapForm, forms.ModelForm, SubmitOnceForm):
    """One dosing session. For IV and IM the clinician gives mg/kg and the weight basis; the
    milligrams are computed from the weight in force on the session date (SPEC §2). Rendered
    by hand (templates/courses/session_form.html) with plain widgets (ketacare.formrender):
    it is opened for every session given."""

    dose_mg = forms.DecimalField(
        label="Dose (mg)", required=False, max_digits=6, decimal_places=1,
        help_text=dosing.DOSE_MG_HELP,
    )
    dose_mg_per_kg = forms.DecimalField(
        label="Dose (mg/kg)", required=False, max_digits=4, decimal_places=3,
        help_text="IV and IM: 0.05–1.0 mg/kg.",
    )

    class Meta:
        model = TreatmentSession
        fields = [
            "started_at", "route", "dose_mg_per_kg", "weight_basis", "infusion_minutes",
            "enhanced_monitoring",
            "bp_pre_systolic", "bp_pre_diastolic", "hr_pre",
            "bp_peak_systolic", "bp_peak_diastolic", "hr_peak",
            "bp_discharge_systolic", "bp_discharge_diastolic", "hr_discharge", "spo2_min",
            "dissociation", "benzodiazepine_24h", "recovery_minutes", "discharged_at",
            "status", "stop_reason", "note", *CONFIRMATIONS,
            *INTRANASAL_FIELDS,
        ]
        labels = {
            "confirmed_critical_bp": "Blood pressure rechecked: go ahead with the session",
            "confirmed_recent_session": "A separate session, not the same one entered twice",
            "confirmed_old_weight": "Dose on the weight on record",
        }
        # dose_mg is not a model field here: for IV/IM it is computed, never typed.
        widgets = {
            "started_at": DateTimeInput(),
            "discharged_at": DateTimeInput(),
            "note": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, course: Course, **kwargs):
        _plain_session_fields(type(self))
        super().__init__(*args, **kwargs)
        self.course = course
        self.weight_record = None  # the weight an IV or IM dose was computed from
        self.already_saved = None  # the id of the session an earlier POST of this form saved
        # The warnings that apply to what was posted, by confirmation field: the page shows
        # each with its checkbox (and only those).
        self.warnings: dict[str, str] = {}

    # Each number field in plain words: its name and unit in every message.
    NUMBERS = {
        "dose_mg_per_kg": ("The dose", "mg/kg"), "dose_mg": ("The dose", "mg"),
        "infusion_minutes": ("Infusion time", "minutes"),
        "bp_pre_systolic": ("Systolic BP before", "mmHg"),
        "bp_pre_diastolic": ("Diastolic BP before", "mmHg"),
        "bp_peak_systolic": ("Peak systolic BP", "mmHg"),
        "bp_peak_diastolic": ("Peak diastolic BP", "mmHg"),
        "bp_discharge_systolic": ("Systolic BP at discharge", "mmHg"),
        "bp_discharge_diastolic": ("Diastolic BP at discharge", "mmHg"),
        "hr_pre": ("Heart rate before", "beats a minute"),
        "hr_peak": ("Peak heart rate", "beats a minute"),
        "hr_discharge": ("Heart rate at discharge", "beats a minute"),
        "spo2_min": ("Lowest SpO2", "%"),
        "recovery_minutes": ("Recovery time", "minutes"),
        "bp_40_systolic": ("Systolic BP at 40 minutes", "mmHg"),
        "bp_40_diastolic": ("Diastolic BP at 40 minutes", "mmHg"),
        "ready_minutes": ("Ready to leave after", "minutes"),
    }

    def clean_started_at(self):
        at = self.cleaned_data["started_at"]
        if timezone.localdate(at) < self.course.started_on:
            raise forms.ValidationError(
                f"The session cannot be before the course started ({self.course.started_on})."
            )
        if at > timezone.now() + timezone.timedelta(hours=1):
            raise forms.ValidationError("The session cannot be in the future.")
        return at

    def clean(self):
        data = super().clean()
        route = data.get("route")
        if route:
            route = Route(route)
            if route.weight_based:
                self._clean_weight_based_dose(data)
            else:
                self._clean_fixed_dose(route, data)
            self._clean_infusion(route, data)
        clean_discharge_time(self, data, data.get("started_at"))
        self._clean_intranasal(route, data)
        if data.get("status") == SessionStatus.STOPPED and not data.get("stop_reason"):
            self.add_error("stop_reason", "Give the reason the session was stopped early.")
        clean_bp_pairs(self, data, ("bp_pre", "bp_peak", "bp_discharge"))
        self._confirm(data, "confirmed_critical_bp", self._critical_bp_warning(data))
        self._confirm(data, "confirmed_recent_session", self._recent_session_warning(data))
        self._confirm(data, "confirmed_old_weight", self._old_weight_warning(data))
        return data

    def confirmations(self) -> list:
        """(checkbox, warning) for each warning that applies to what was posted."""
        return [(self[name], warning) for name, warning in self.warnings.items()]

    def _confirm(self, data, name: str, warning: str | None) -> None:
        """Saving past a warning takes its box ticked; with no warning nothing is confirmed."""
        if warning is None:
            data[name] = False
            return
        self.warnings[name] = warning
        if not data.get(name):
            self.add_error(name, warning)

    def _critical_bp_warning(self, data) -> str | None:
        systolic, diastolic = data.get("bp_pre_systolic"), data.get("bp_pre_diastolic")
        if systolic is None or diastolic is None:
            return None
        limit_s, limit_d = settings.KETACARE_RULES["BP_CRITICAL"]
        if systolic <= limit_s and diastolic <= limit_d:
            return None
        return (
            f"Blood pressure before the session is {systolic}/{diastolic} mmHg, above the "
            f"critical limit of {limit_s}/{limit_d}. Consider holding the session; recheck and "
            "manage the blood pressure first."
        )

    def _recent_session_warning(self, data) -> str | None:
        at = data.get("started_at")
        if at is None:
            return None
        gap = timezone.timedelta(hours=settings.KETACARE_RULES["SESSION_GAP_HOURS"])
        # The patient's sessions near this one and, in the same query, the one this very form
        # saved if it was sent before (a double click, a retry): that one is not another
        # session, and the view answers it was already saved.
        token = data.get("submission_token")
        values = {"patient": self.course.patient_id, "since": at - gap, "until": at + gap,
                  "other_than": self.instance.pk or 0}  # 0: a new session, no id yet
        query = _NEAR_OR_SAVED.rows(**values, token=token) if token else _NEAR.rows(**values)
        found = sorted(query, key=lambda row: (row[1], row[0]), reverse=True)  # latest first
        self.already_saved = next((pk for pk, _, saved in found if token and saved == token),
                                  None)
        near = next((started for pk, started, saved in found
                     if not token or saved != token), None)
        if near is None:
            return None
        hours = abs(at - near).total_seconds() / 3600
        return (
            "Another session of this patient is logged at "
            f"{timezone.localtime(near):%Y-%m-%d %H:%M}, {hours:.1f} h from this one "
            f"(less than {gap.total_seconds() / 3600:.0f} h). Check it is not the same session "
            "entered twice."
        )

    def _old_weight_warning(self, data) -> str | None:
        weight, at = self.weight_record, data.get("started_at")
        if weight is None or at is None:
            return None
        days = (timezone.localdate(at) - weight.measured_on).days
        limit = settings.KETACARE_RULES["WEIGHT_MAX_AGE_DAYS"]
        if days <= limit:
            return None
        return (
            f"The dose in mg is computed from the weight on record, {weight.weight_kg} kg of "
            f"{weight.measured_on}: {days} days old (more than {limit}). Record today's weight "
            "first, or confirm."
        )

    def _clean_weight_based_dose(self, data) -> None:
        dose = data.get("dose_mg_per_kg")
        data["dose_mg"] = None
        if dose is None:
            if "dose_mg_per_kg" not in self.errors:
                self.add_error("dose_mg_per_kg", "IV and IM doses are given in mg/kg.")
            return
        reason = dosing.check_dose_mg_per_kg(dose)
        if reason:
            self.add_error("dose_mg_per_kg", f"Dose {reason}.")
            return
        if dose > dosing.ENHANCED_MONITORING_ABOVE and not data.get("enhanced_monitoring"):
            self.add_error(
                "enhanced_monitoring",
                "Above 0.75 mg/kg, confirm enhanced cardiovascular monitoring and a 90–120 "
                "minute recovery before saving.",
            )
        basis = data.get("weight_basis") or WeightBasis.ACTUAL
        data["weight_basis"] = basis
        weight = self._weight_for(data, basis)
        if weight is not None:
            data["weight_kg_used"] = weight
            data["dose_mg"] = dosing.dose_mg(dose, weight)

    def _weight_for(self, data, basis: str) -> Decimal | None:
        patient = self.course.patient
        if basis == WeightBasis.IDEAL:
            ideal = patient.ideal_body_weight_kg()
            if ideal is None:
                self.add_error(
                    "weight_basis", "Ideal body weight needs the patient's height on record and "
                    "a sex of female or male (the Devine formula has no other)."
                )
            return ideal
        at = data.get("started_at")
        if at is None:
            return None
        record = self.weight_record = patient.weight_on(timezone.localdate(at))
        if record is None:
            self.add_error(
                "weight_basis",
                f"No weight is recorded on or before {timezone.localdate(at)}; record the "
                "patient's weight first.",
            )
            return None
        return record.weight_kg

    def _clean_fixed_dose(self, route: Route, data) -> None:
        data["dose_mg_per_kg"] = None
        data["weight_basis"] = ""
        data["enhanced_monitoring"] = False
        dose = data.get("dose_mg")
        if dose is None:
            if "dose_mg" not in self.errors:
                self.add_error("dose_mg", f"{route.label} doses are given in mg.")
            return
        reason = dosing.check_dose_mg(route, dose)
        if reason:
            self.add_error("dose_mg", f"Dose {reason}.")

    def _clean_infusion(self, route: Route, data) -> None:
        if route == Route.IV:
            if data.get("infusion_minutes") is None and "infusion_minutes" not in self.errors:
                self.add_error("infusion_minutes", "An IV session needs its infusion minutes.")
        else:
            data["infusion_minutes"] = None

    def _clean_intranasal(self, route, data) -> None:
        """The REMS fields belong to intranasal sessions only; answered ones are checked."""
        if route != Route.INTRANASAL:
            for name in INTRANASAL_FIELDS:
                data[name] = "" if name.endswith("_details") or name == "device_lot" else None
            return
        clean_bp_pairs(self, data, ("bp_40",))
        for name in ("sedation", "dissociation_seen", "respiratory_depression",
                     "serious_adverse_event"):
            if data.get(name) is True and not data.get(f"{name}_details"):
                self.add_error(f"{name}_details", "Give the details of what was seen.")
            elif data.get(name) is not True:
                data[f"{name}_details"] = ""
        # The REMS form's yes/no agrees with the session's own dissociation.
        seen, intensity = data.get("dissociation_seen"), data.get("dissociation")
        if seen is not None and intensity and seen != (intensity != Intensity.NONE):
            self.add_error("dissociation_seen", (
                f"The session's dissociation is {Intensity(intensity).label.lower()}: answer "
                f"{'Yes, with what was seen' if seen is False else 'No'}, or correct the "
                "session's dissociation."))
        clean_ready_minutes(self, "ready_minutes", data.get("ready_minutes"),
                            data.get("started_at"), data.get("discharged_at"))

    def save(self, commit: bool = True):
        session = super().save(commit=False)
        session.course = self.course
        session.dose_mg = self.cleaned_data["dose_mg"]
        session.weight_kg_used = self.cleaned_data.get("weight_kg_used")
        if "submission_token" in self.fields:
            session.submission_token = self.cleaned_data.get("submission_token")
        if commit:
            session.save()
        return session


# Units said in a vital's label (the form's own; the record and its history keep the model's).
LABEL_UNITS = {"mmHg": "mmHg", "beats a minute": "bpm"}


@functools.cache
def _plain_session_fields(form_class: type[SessionForm]) -> None:
    """The session form's fields in plain words, with their widgets and limits: set once on
    each form class's own fields (its ``base_fields``, which every form copies), not on every
    form opened (a third of building one). Every step may run twice without harm."""
    fields = form_class.base_fields
    fields["weight_basis"].required = False
    for name in ("started_at", "discharged_at"):
        if plausible_datetime not in fields[name].validators:
            fields[name].validators.append(plausible_datetime)
    fields["dissociation"].choices = choices(Intensity)
    from rems.filling import REQUIRED_SESSION_FIELDS

    for name in INTRANASAL_FIELDS:
        field = fields[name]
        if isinstance(field, forms.NullBooleanField):
            field.widget = YesNoSelect()
        if name == "ready_minutes":  # the 2-hour rule aside
            field.label, field.help_text = "Would have been ready to leave after (min)", ""
        if name == "serious_adverse_event":  # the details say which
            field.label = "Serious adverse event"
        if name.endswith("_details"):
            field.label = "Details"
            field.widget.attrs["aria-label"] = fields[name[:-8]].label + ": details"
        if name in REQUIRED_SESSION_FIELDS:  # the REMS form needs it: marked, not forced
            field.widget.attrs["data-rems-required"] = "1"
    fields["serious_adverse_event_details"].widget.attrs["placeholder"] = (
        "Hospitalised or emergency care: what happened")
    for name, (what, unit) in form_class.NUMBERS.items():
        short = LABEL_UNITS.get(unit)
        if short and not fields[name].label.endswith(f"({short})"):  # the unit beside the box
            fields[name].label = f"{fields[name].label} ({short})"
        limits = {  # the model's own limits (SPEC §2, and plausible vitals)
            type(v).__name__: v.limit_value
            for v in TreatmentSession._meta.get_field(name).validators
            if isinstance(v, MinValueValidator | MaxValueValidator)
        } if name != "dose_mg" else {}
        plain_number(fields[name], what, limits.get("MinValueValidator", 0 if limits else None),
                     limits.get("MaxValueValidator"), unit)


def clean_bp_pairs(form: forms.Form, data: dict, pairs) -> None:
    for name in pairs:
        sys_, dia = data.get(f"{name}_systolic"), data.get(f"{name}_diastolic")
        if (sys_ is None) != (dia is None):
            form.add_error(f"{name}_systolic", "Give both systolic and diastolic, or neither.")
        elif sys_ is not None and dia >= sys_:
            form.add_error(f"{name}_diastolic", "Diastolic must be lower than systolic.")


def clean_discharge_time(form: forms.Form, data: dict, started_at) -> None:
    discharged = data.get("discharged_at")
    if started_at and discharged and discharged <= started_at:
        form.add_error("discharged_at", "Discharge must be after the session started.")
    elif discharged and discharged > timezone.now() + timezone.timedelta(hours=1):
        form.add_error("discharged_at", "The discharge cannot be in the future.")


def clean_ready_minutes(form: forms.Form, field: str, ready, start, end) -> None:
    """The REMS form's "would have been ready to leave after" lies within the monitoring."""
    if ready is not None and start and end and end > start:
        total = int((end - start).total_seconds() // 60)
        if ready > total:
            form.add_error(
                field,
                f"Ready to leave after {ready} minutes is after the end of monitoring "
                f"({total} minutes after the first device).")


class CorrectionFields(forms.Form):
    """What every correction of a saved session carries: the version it was read at (the
    second of two concurrent corrections is refused) and an optional reason."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    reason = forms.CharField(
        label="Reason for the amendment", max_length=200, required=False,
        help_text="Optional; kept in the session's history with who and when.",
    )


class SessionAmendForm(SessionForm, CorrectionFields):
    """The whole session, amended: the same checks as a new session (dose limits, enhanced
    monitoring, the confirmations)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["submission_token"]  # the version guards a resend instead
        self.fields["version"].initial = self.instance.version
        if self.instance.dose_mg_per_kg is None:
            self.fields["dose_mg"].initial = self.instance.dose_mg


class DischargeForm(forms.ModelForm, CorrectionFields):
    """Discharge time, vitals and recovery: typically added after the session."""

    class Meta:
        model = TreatmentSession
        fields = [
            "discharged_at", "recovery_minutes", "bp_discharge_systolic",
            "bp_discharge_diastolic", "hr_discharge", "spo2_min",
        ]
        widgets = {"discharged_at": DateTimeInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].initial = self.instance.version
        self.fields["discharged_at"].validators.append(plausible_datetime)
        self.fields["reason"].label = "Note"
        now = timezone.localtime().replace(second=0, microsecond=0)
        if self.instance.discharged_at is None and self.instance.started_at < now <= (
            self.instance.started_at + timezone.timedelta(hours=12)
        ):  # completed at the patient's discharge, the usual case: now is the time
            self.initial["discharged_at"] = now

    def clean(self):
        data = super().clean()
        clean_discharge_time(self, data, self.instance.started_at)
        clean_bp_pairs(self, data, ("bp_discharge",))
        # The session's own REMS answer must still hold (a refused time is no longer in data).
        clean_ready_minutes(self, "discharged_at", self.instance.ready_minutes,
                            self.instance.started_at, data.get("discharged_at"))
        return data


class VoidForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    reason = forms.CharField(
        label="Why this session was entered in error", max_length=200,
        help_text="e.g. logged on the wrong patient; entered twice.",
    )


class AdverseEventForm(BootstrapForm, forms.Form):
    description = forms.CharField(max_length=200, required=False)
    severity = forms.ChoiceField(
        required=False,
        choices=[("", "—")] + [c for c in choices(Intensity) if c[0] != Intensity.NONE],
    )

    def clean(self):
        data = super().clean()
        if data.get("description") and not data.get("severity"):
            self.add_error("severity", "Give the severity of this adverse event.")
        if data.get("severity") and not data.get("description"):
            self.add_error("description", "Describe the adverse event.")
        return data


AdverseEventFormSet = forms.formset_factory(AdverseEventForm, extra=3, max_num=10,
                                           renderer=PLAIN_WIDGETS)


def adverse_events_from(formset) -> list[tuple[str, str]]:
    return [
        (form.cleaned_data["description"], form.cleaned_data["severity"])
        for form in formset
        if form.cleaned_data.get("description")
    ]


class FlagDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    action = forms.ChoiceField(
        label="What was done", required=False, choices=[("", "—")] + ActionTaken.choices
    )
    detail = forms.CharField(
        label="Details", max_length=300, required=False,
        help_text="e.g. 0.6 mg/kg from the next session; clonazepam held on treatment days.",
    )
    reason = forms.CharField(label="Reason for declining", max_length=300, required=False)

    def clean(self):
        data = super().clean()
        if data.get("decision") == Decision.ACCEPTED:
            if not data.get("action"):
                self.add_error("action", "Say what was done when accepting a flag.")
            if not data.get("detail"):
                self.add_error("detail", "Give the details of what was done.")
            data["reason"] = ""
        elif data.get("decision") == Decision.DECLINED:
            if not data.get("reason"):
                self.add_error("reason", "Give the reason for declining this flag.")
            data["action"], data["detail"] = "", ""
        return data
