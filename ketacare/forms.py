import uuid

from django import forms

from ketacare.validators import plausible_date
from ketacare.widgets import DateInput


class SubmitOnceForm(forms.Form):
    """A one-time token rendered with the form: the action refuses a second save with it, so a
    double click or a retried POST creates one record."""

    submission_token = forms.UUIDField(
        required=False, initial=uuid.uuid4, widget=forms.HiddenInput
    )


def already_saved(model, form: SubmitOnceForm):
    """The record an earlier POST of this very form created, if any."""
    token = form.cleaned_data.get("submission_token")
    return model.objects.filter(submission_token=token).first() if token else None


class PlausibleDateField(forms.DateField):
    """Every date a form takes, clinical or a filter: between 1900 and 2099 (a year typed
    wrong is refused, not stored), with the browser's date picker bounded the same way."""

    default_validators = [plausible_date]
    widget = DateInput

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "min": "1900-01-01", "max": "2099-12-31"}
