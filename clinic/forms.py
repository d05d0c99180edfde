from datetime import timedelta

from django import forms
from django.utils import timezone

from clinic.models import Appointment, ClinicSettings, Plan, plain
from clinical import dosing
from clinical.schedules import Schedule, describe
from clinical.vocab import Route, choices
from ketacare.forms import PlausibleDateField, SubmitOnceForm
from ketacare.validators import plausible_datetime
from ketacare.widgets import DateInput, DateTimeInput

BOOKING_HORIZON_DAYS = 400  # an appointment more than this far ahead is a typing error


class ClinicSettingsForm(forms.ModelForm):
    """Every setting of the clinic, on one page. A setting added to the model joins it by
    being named here (the REMS setting's name and address, issue 13, will)."""

    class Meta:
        model = ClinicSettings
        fields = [
            "induction_sessions", "induction_per_week_min", "induction_per_week_max",
            "esketamine_induction_weeks", "esketamine_induction_per_week",
            "esketamine_weekly_weeks", "esketamine_later_min_weeks",
            "esketamine_later_max_weeks",
            "spacing_weekly_sessions", "spacing_biweekly_min", "spacing_biweekly_max",
            "spacing_triweekly_sessions", "spacing_monthly_min", "spacing_monthly_max",
            "spacing_month_days", "book_weekends", "default_time",
            "setting_name", "address", "city", "state", "zip_code", "telephone",
        ]
        widgets = {"default_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        # Short labels: the page groups them under each schedule's heading (the model's
        # labels, which the audit report shows, name the schedule too).
        labels = {
            "induction_sessions": "Sessions", "induction_per_week_min": "Fewest a week",
            "induction_per_week_max": "Most a week",
            "esketamine_induction_weeks": "Induction weeks",
            "esketamine_induction_per_week": "Sessions a week",
            "esketamine_weekly_weeks": "Then weekly, for … weeks",
            "esketamine_later_min_weeks": "Afterwards every … weeks, at least",
            "esketamine_later_max_weeks": "at most",
            "spacing_weekly_sessions": "Weekly: sessions",
            "spacing_biweekly_min": "Every 2 weeks: fewest", "spacing_biweekly_max": "most",
            "spacing_triweekly_sessions": "Every 3 weeks: sessions",
            "spacing_monthly_min": "Monthly: fewest", "spacing_monthly_max": "most",
            "spacing_month_days": "Days in a “month”",
        }

    RANGES = [
        ("induction_per_week_min", "induction_per_week_max", "sessions a week"),
        ("esketamine_later_min_weeks", "esketamine_later_max_weeks", "weeks"),
        ("spacing_biweekly_min", "spacing_biweekly_max", "sessions"),
        ("spacing_monthly_min", "spacing_monthly_max", "sessions"),
    ]

    def clean(self):
        data = super().clean()
        for low, high, unit in self.RANGES:
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, f"The most ({data[high]} {unit}) cannot be fewer than the "
                               f"fewest ({data[low]} {unit}).")
        return data

    def schedules(self) -> list[tuple[str, str]]:
        """Each schedule as the saved settings make it, for the page to show. Not from the
        form's instance: a refused post has put its unchecked values there (a 0 a week)."""
        clinic = ClinicSettings.load()
        return [(s.label, describe(clinic.steps(s))) for s in Schedule]


def clean_planned_dose(form: forms.Form, data: dict) -> None:
    """The planned route's dose in its unit (SPEC §2): mg/kg for IV and IM, mg otherwise;
    the same limits as a session's."""
    route = data.get("route")
    if not route:
        return
    route = Route(route)
    if route.weight_based:
        data["dose_mg"] = None
        dose = data.get("dose_mg_per_kg")
        if dose is None:
            if "dose_mg_per_kg" not in form.errors:
                form.add_error("dose_mg_per_kg", "IV and IM doses are planned in mg/kg.")
        elif reason := dosing.check_dose_mg_per_kg(dose):
            form.add_error("dose_mg_per_kg", f"Dose {reason}.")
    else:
        data["dose_mg_per_kg"] = None
        dose = data.get("dose_mg")
        if dose is None:
            if "dose_mg" not in form.errors:
                form.add_error("dose_mg", f"{route.label} doses are planned in mg.")
        elif reason := dosing.check_dose_mg(route, dose):
            form.add_error("dose_mg", f"Dose {reason}.")


def _dose_fields():
    return (
        forms.DecimalField(label="Dose (mg/kg)", required=False, max_digits=4,
                           decimal_places=3, help_text="IV and IM: 0.05–1.0 mg/kg."),
        forms.DecimalField(label="Dose (mg)", required=False, max_digits=6, decimal_places=1,
                           help_text=dosing.DOSE_MG_HELP),
    )


class PlanForm(forms.Form):
    route = forms.ChoiceField(choices=choices(Route))
    dose_mg_per_kg, dose_mg = _dose_fields()
    schedule = forms.ChoiceField(choices=[(s.value, s.label) for s in Schedule])
    starts_on = PlausibleDateField(
        label="Counting from", widget=DateInput(),
        help_text="Sessions from this day on count toward the schedule.",
    )

    def __init__(self, *args, course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        clinic = ClinicSettings.load()
        self.fields["schedule"].choices = [
            (s.value, f"{s.label}: {describe(clinic.steps(s))}") for s in Schedule
        ]

    def clean_starts_on(self):
        day = self.cleaned_data["starts_on"]
        if day < self.course.started_on:
            raise forms.ValidationError(
                f"Cannot be before the course started ({self.course.started_on})."
            )
        if day > timezone.localdate() + timedelta(days=BOOKING_HORIZON_DAYS):
            raise forms.ValidationError("More than a year ahead: check the date.")
        return day

    def clean(self):
        data = super().clean()
        clean_planned_dose(self, data)
        return data


def _clean_starts_at(form, at, course):
    today = timezone.localdate()
    if timezone.localdate(at) < today:
        raise forms.ValidationError("An appointment cannot be booked in the past.")
    if timezone.localdate(at) > today + timedelta(days=BOOKING_HORIZON_DAYS):
        raise forms.ValidationError("More than a year ahead: check the date.")
    if timezone.localdate(at) < course.started_on:
        raise forms.ValidationError(f"The course starts on {course.started_on}.")
    return at


class AppointmentForm(SubmitOnceForm):
    starts_at = forms.DateTimeField(label="Date and time", widget=DateTimeInput(),
                                    validators=[plausible_datetime])
    route = forms.ChoiceField(label="Planned route", choices=choices(Route))
    dose_mg_per_kg, dose_mg = _dose_fields()
    note = forms.CharField(max_length=200, required=False)
    series = forms.BooleanField(
        label="Also book the rest of this step of the plan", required=False,
    )

    def __init__(self, *args, course, series_count: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        self.series_count = series_count
        if series_count:
            self.fields["series"].label = (
                f"Also book the rest of this step of the plan: {series_count} more at the "
                "plan's spacing"
            )
        else:
            del self.fields["series"]

    def clean_starts_at(self):
        return _clean_starts_at(self, self.cleaned_data["starts_at"], self.course)

    def clean(self):
        data = super().clean()
        clean_planned_dose(self, data)
        return data


class MoveAppointmentForm(forms.ModelForm):
    dose_mg_per_kg, dose_mg = _dose_fields()

    class Meta:
        model = Appointment
        fields = ["starts_at", "route", "dose_mg_per_kg", "dose_mg", "note"]
        widgets = {"starts_at": DateTimeInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["starts_at"].validators.append(plausible_datetime)

    def clean_starts_at(self):
        return _clean_starts_at(self, self.cleaned_data["starts_at"], self.instance.course)

    def clean(self):
        data = super().clean()
        clean_planned_dose(self, data)
        return data


class CancelAppointmentForm(forms.Form):
    reason = forms.CharField(
        label="Reason for cancelling", max_length=200,
        help_text="e.g. patient unwell, rescheduled by phone, transport.",
    )


def plan_initial(plan: Plan | None) -> dict:
    if plan is None:
        return {}
    return {"route": plan.route, "dose_mg_per_kg": plain(plan.dose_mg_per_kg),
            "dose_mg": plain(plan.dose_mg)}
