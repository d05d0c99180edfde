import uuid

from django import forms


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
