from django import forms
from django.utils import timezone

from ketacare.forms import PlausibleDateField
from ketacare.widgets import DateInput


class SubmissionForm(forms.Form):
    submitted_on = PlausibleDateField(label="Submitted on", widget=DateInput())
    confirmation = forms.CharField(
        label="REMS confirmation number", max_length=40,
        error_messages={"required": "Give the REMS confirmation number to mark the form "
                        "submitted."},
    )

    def __init__(self, *args, session, missing=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.missing = [item.label for item in missing]  # what the form still lacks
        self.fields["submitted_on"].initial = timezone.localdate()

    def clean(self):
        # An incomplete form is not sent to the REMS: marked submitted, it would leave every
        # list of forms to finish.
        if self.missing:
            raise forms.ValidationError(
                "The form cannot be marked submitted while it is incomplete: "
                + "; ".join(self.missing) + (" is" if len(self.missing) == 1 else " are")
                + " missing.")
        return super().clean()

    def clean_submitted_on(self):
        day = self.cleaned_data["submitted_on"]
        session_day = timezone.localdate(self.session.started_at)
        if day < session_day:
            raise forms.ValidationError(
                f"The form cannot be submitted before the session ({session_day}).")
        if day > timezone.localdate():
            raise forms.ValidationError("The submission date cannot be in the future.")
        return day

    def clean_confirmation(self):
        value = self.cleaned_data["confirmation"].strip()
        if not value.isprintable():
            raise forms.ValidationError("The confirmation number has characters it cannot have.")
        return value


class UndoForm(forms.Form):
    reason = forms.CharField(
        label="Reason for undoing", max_length=200,
        error_messages={"required": "Give the reason the submission is undone."},
    )


class PeriodForm(forms.Form):
    start = PlausibleDateField(label="From", widget=DateInput())
    end = PlausibleDateField(label="To", widget=DateInput())

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The end of the period is before its start.")
        return data
