from decimal import Decimal

from django import forms
from django.utils import timezone

from clinical import dosing
from clinical.vocab import Intensity, Phase, Route, SessionStatus, choices
from courses.models import (
    ActionTaken,
    Course,
    Decision,
    EndReason,
    TreatmentSession,
    WeightBasis,
)
from ketacare.forms import SubmitOnceForm
from ketacare.validators import plausible_datetime
from ketacare.widgets import DateInput, DateTimeInput


class CourseForm(forms.ModelForm):
    phase = forms.ChoiceField(
        choices=[(p, label) for p, label in choices(Phase) if p != Phase.ENDED],
        initial=Phase.INDUCTION,
    )

    class Meta:
        model = Course
        fields = ["started_on", "phase", "planned_protocol"]
        widgets = {"started_on": DateInput()}

    def clean_started_on(self):
        day = self.cleaned_data["started_on"]
        if day > timezone.localdate() + timezone.timedelta(days=60):
            raise forms.ValidationError("Start date is more than 60 days ahead.")
        return day


class PhaseChangeForm(forms.Form):
    to_phase = forms.ChoiceField(label="New phase")
    effective_on = forms.DateField(label="Effective on", widget=DateInput())
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
    ended_on = forms.DateField(label="Ended on", widget=DateInput())
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
YES_NO = [("", "—"), ("true", "Yes"), ("false", "No")]


class SessionForm(forms.ModelForm, SubmitOnceForm):
    """One dosing session. For IV and IM the clinician gives mg/kg and the weight basis; the
    milligrams are computed from the weight in force on the session date (SPEC §2)."""

    dose_mg = forms.DecimalField(
        label="Dose (mg)", required=False, max_digits=6, decimal_places=1,
        help_text="Intranasal: 28, 56 or 84 mg. Sublingual and oral: 10–1,000 mg.",
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
            "status", "stop_reason", "note",
            *INTRANASAL_FIELDS,
        ]
        # dose_mg is not a model field here: for IV/IM it is computed, never typed.
        widgets = {
            "started_at": DateTimeInput(),
            "discharged_at": DateTimeInput(),
            "note": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, course: Course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        self.fields["weight_basis"].required = False
        for name in ("started_at", "discharged_at"):
            self.fields[name].validators.append(plausible_datetime)
        self.fields["dissociation"].choices = choices(Intensity)
        from rems.filling import REQUIRED_SESSION_FIELDS

        for name in INTRANASAL_FIELDS:
            field = self.fields[name]
            if isinstance(field, forms.NullBooleanField):
                field.widget = forms.Select(choices=YES_NO)
            if name == "ready_minutes":  # the 2-hour rule aside
                field.label, field.help_text = "Would have been ready to leave after (min)", ""
            if name.endswith("_details"):
                field.label = "Details"
                field.widget.attrs["aria-label"] = self.fields[name[:-8]].label + ": details"
            if name in REQUIRED_SESSION_FIELDS:  # the REMS form needs it: marked, not forced
                field.widget.attrs["data-rems-required"] = "1"

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
        self._clean_times(data)
        self._clean_intranasal(route, data)
        if data.get("status") == SessionStatus.STOPPED and not data.get("stop_reason"):
            self.add_error("stop_reason", "Give the reason the session was stopped early.")
        for name in ("bp_pre", "bp_peak", "bp_discharge"):
            sys_, dia = data.get(f"{name}_systolic"), data.get(f"{name}_diastolic")
            if (sys_ is None) != (dia is None):
                self.add_error(f"{name}_systolic", "Give both systolic and diastolic, or neither.")
            elif sys_ is not None and dia >= sys_:
                self.add_error(f"{name}_diastolic", "Diastolic must be lower than systolic.")
        return data

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
                    "weight_basis", "Ideal body weight needs the patient's height on record."
                )
            return ideal
        at = data.get("started_at")
        if at is None:
            return None
        record = patient.weight_on(timezone.localdate(at))
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
        sys_, dia = data.get("bp_40_systolic"), data.get("bp_40_diastolic")
        if (sys_ is None) != (dia is None):
            self.add_error("bp_40_systolic", "Give both systolic and diastolic, or neither.")
        elif sys_ is not None and dia >= sys_:
            self.add_error("bp_40_diastolic", "Diastolic must be lower than systolic.")
        for name in ("sedation", "dissociation_seen", "respiratory_depression",
                     "serious_adverse_event"):
            if data.get(name) is True and not data.get(f"{name}_details"):
                self.add_error(f"{name}_details", "Give the details of what was seen.")
            elif data.get(name) is not True:
                data[f"{name}_details"] = ""
        ready, start, end = data.get("ready_minutes"), data.get("started_at"), data.get(
            "discharged_at")
        if ready is not None and start and end and end > start:
            total = int((end - start).total_seconds() // 60)
            if ready > total:
                self.add_error(
                    "ready_minutes",
                    f"Ready to leave after {ready} minutes is after the end of monitoring "
                    f"({total} minutes after the first device).")

    def _clean_times(self, data) -> None:
        start, discharged = data.get("started_at"), data.get("discharged_at")
        if start and discharged and discharged <= start:
            self.add_error("discharged_at", "Discharge must be after the session started.")

    def save(self, commit: bool = True):
        session = super().save(commit=False)
        session.course = self.course
        session.dose_mg = self.cleaned_data["dose_mg"]
        session.weight_kg_used = self.cleaned_data.get("weight_kg_used")
        session.submission_token = self.cleaned_data.get("submission_token")
        if commit:
            session.save()
        return session


class AdverseEventForm(forms.Form):
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


AdverseEventFormSet = forms.formset_factory(AdverseEventForm, extra=3, max_num=10)


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
