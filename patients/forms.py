
from django import forms
from django.utils import timezone

from clinical import dosing
from clinical.vocab import MedClass, choices
from ketacare.forms import PlausibleDateField
from ketacare.validators import plain_number
from ketacare.widgets import DateInput
from patients.models import Medication, Patient, PriorTrial


def _weight_field(**kwargs) -> forms.DecimalField:
    field = forms.DecimalField(label="Weight (kg)", max_digits=4, decimal_places=1, **kwargs)
    plain_number(field, "Weight", *dosing.WEIGHT_KG, "kg")
    return field


class PatientForm(forms.ModelForm):
    # The version the clinician started from; a save over a newer one is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Patient
        fields = [
            "record_number", "first_name", "last_name", "date_of_birth", "sex", "height_cm",
            "diagnosis", "psychotic_features", "comorbidities", "prior_ect", "prior_tms",
            "referring_provider", "email", "self_report_consent_on", "rems_enrolled_on",
            "rems_number",
        ]
        widgets = {
            "date_of_birth": DateInput(),
            "self_report_consent_on": DateInput(),
            "rems_enrolled_on": DateInput(),
            "comorbidities": forms.Textarea(attrs={"rows": 2}),
        }
        field_classes = {"date_of_birth": PlausibleDateField,
                         "self_report_consent_on": PlausibleDateField,
                         "rems_enrolled_on": PlausibleDateField}

    def clean(self):
        data = super().clean()
        if data.get("rems_number") and not data.get("rems_enrolled_on"):
            self.add_error("rems_enrolled_on", "Give the REMS enrolment date with the number.")
        born = data.get("date_of_birth")
        for name, what in [("self_report_consent_on", "The consent date"),
                           ("rems_enrolled_on", "The REMS enrolment date")]:
            day = data.get(name)
            if born and day and day < born:
                self.add_error(name, f"{what} is before the date of birth ({born}).")
        return data

    def clean_date_of_birth(self):
        born = self.cleaned_data["date_of_birth"]
        today = timezone.localdate()
        if born > today:
            raise forms.ValidationError("Date of birth cannot be in the future.")
        if born.year < today.year - 120:
            raise forms.ValidationError("Date of birth is more than 120 years ago.")
        if self.instance.pk:
            first = self.instance.first_dated()
            if first and first[0] < born:
                raise forms.ValidationError(
                    f"Date of birth is after the patient's {first[1]} ({first[0]}).")
        return born

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        plain_number(self.fields["height_cm"], "Height", *dosing.HEIGHT_CM, "cm")
        # Referring providers by the name they sign with, as everywhere else.
        provider = self.fields["referring_provider"]
        provider.queryset = provider.queryset.order_by("last_name", "first_name")
        provider.label_from_instance = lambda user: user.signature

    def clean_email(self):
        return self.cleaned_data["email"].strip()

    def clean_self_report_consent_on(self):
        day = self.cleaned_data["self_report_consent_on"]
        if day is not None and day > timezone.localdate():
            raise forms.ValidationError("The consent date cannot be in the future.")
        if day is not None and day.year < 2000:
            raise forms.ValidationError("The consent date is before 2000: check the year.")
        return day

    def clean_rems_enrolled_on(self):
        day = self.cleaned_data["rems_enrolled_on"]
        if day is not None and day > timezone.localdate():
            raise forms.ValidationError("The REMS enrolment date cannot be in the future.")
        return day

    def clean_record_number(self):
        return self.cleaned_data["record_number"].strip().upper()


class NewPatientForm(PatientForm):
    weight_kg = _weight_field(
        required=False, help_text="Today's weight; needed before an IV or IM dose."
    )


class OfPatientForm:
    """A form for something in one patient's record (``patient=``): a day in it can be neither
    in the future nor before the patient was born."""

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient

    def in_life(self, day, what: str):
        if day > timezone.localdate():
            raise forms.ValidationError(f"{what} cannot be in the future.")
        born = self.patient.date_of_birth
        if day < born:
            raise forms.ValidationError(
                f"{what} is before the patient's date of birth ({born}).")
        return day


class WeightForm(OfPatientForm, forms.Form):
    measured_on = PlausibleDateField(
        label="Measured on", widget=DateInput(), initial=timezone.localdate
    )
    weight_kg = _weight_field()

    def clean_measured_on(self):
        return self.in_life(self.cleaned_data["measured_on"], "The measurement date")


# The shortest trial that may be called adequate: the guidance evaluates a trial over 4–6
# weeks (seed 000), and a failed adequate trial counts towards treatment resistance
# (TRD_NOT_VERIFIED), so a shorter one marked adequate is refused, not stored.
ADEQUATE_MIN_WEEKS = 4


class PriorTrialForm(OfPatientForm, forms.ModelForm):
    class Meta:
        model = PriorTrial
        fields = ["drug", "drug_class", "dose", "weeks", "adequate", "outcome"]
        help_texts = {"adequate": f"An adequate dose for at least {ADEQUATE_MIN_WEEKS} weeks "
                                  "(usually 6 or more)."}

    def clean(self):
        data = super().clean()
        weeks = data.get("weeks")
        if data.get("adequate") and weeks is not None and weeks < ADEQUATE_MIN_WEEKS:
            self.add_error("weeks", (
                f"A trial of {weeks} week{'s' if weeks != 1 else ''} is too short to be adequate "
                f"(at least {ADEQUATE_MIN_WEEKS}, usually 6 or more): check the weeks, or "
                "leave Adequate unticked."))
        return data


class MedicationForm(OfPatientForm, forms.ModelForm):
    drug_class = forms.ChoiceField(
        label="Class", required=False,
        choices=[("", "From the catalogue")] + choices(MedClass),
        help_text="Leave as is: known names are classified from the catalogue; unknown names "
        "are kept as unclassified for you to classify.",
    )

    class Meta:
        model = Medication
        fields = ["name", "dose", "started_on", "drug_class"]
        widgets = {
            "started_on": DateInput(),
            "name": forms.TextInput(attrs={"list": "medication-catalogue", "autocomplete": "off"}),
        }
        field_classes = {"started_on": PlausibleDateField}

    def clean_name(self):
        return " ".join(self.cleaned_data["name"].split())

    def clean_started_on(self):
        return self.in_life(self.cleaned_data["started_on"], "The start date")


class StopMedicationForm(forms.Form):
    stopped_on = PlausibleDateField(label="Stopped on", widget=DateInput())
    reason = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, medication: Medication, **kwargs):
        super().__init__(*args, **kwargs)
        self.medication = medication

    def clean_stopped_on(self):
        day = self.cleaned_data["stopped_on"]
        if day < self.medication.started_on:
            raise forms.ValidationError(
                f"Stop date cannot be before the start date ({self.medication.started_on})."
            )
        if day > timezone.localdate():
            raise forms.ValidationError("Stop date cannot be in the future.")
        return day


class ClassifyMedicationForm(forms.Form):
    # Nothing preselected: one click must not classify an unknown drug.
    drug_class = forms.ChoiceField(
        label="Class",
        choices=[("", "Choose the class…")]
        + [c for c in choices(MedClass) if c[0] != MedClass.UNCLASSIFIED],
        error_messages={"required": "choose the drug's class."},
    )
