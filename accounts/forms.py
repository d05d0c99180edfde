from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm, UserCreationForm
from django.core.validators import MaxLengthValidator

from accounts import actions
from accounts.models import Role, User
from patients.models import Patient


class LoginForm(AuthenticationForm):
    """Django's login form, refusing a user name longer than any user's before it is looked up.

    Django only sets the field's ``max_length`` for the browser; a longer name typed by hand went
    on to the failed-login records (django-axes keeps 255 characters), which PostgreSQL refused
    with an error page.
    """

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


# Staff accounts (accounts/staff.py)

class StaffFilterForm(forms.Form):
    role = forms.ChoiceField(
        required=False, choices=[("", "All roles"), *Role.choices],
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    active = forms.ChoiceField(
        required=False, choices=[("", "Active and inactive"), ("yes", "Active"),
                                 ("no", "Inactive")],
        widget=forms.Select(attrs={"class": "form-select"}),
    )


def _names_required(form: forms.ModelForm) -> None:
    # Optional on Django's user, but signed entries and reports show the name.
    for name in ("first_name", "last_name"):
        form.fields[name].required = True


class NewStaffForm(UserCreationForm):
    """Django's user creation form (case-insensitive unique user name, the password validators
    run against the new user's details), with the clinic's fields."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "first_name", "last_name", "email", "telephone", "credentials",
                  "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _names_required(self)
        self.fields["password1"].label = "Initial password"
        self.fields["password2"].label = "Initial password again"


class AccountVersionForm(forms.Form):
    """The version of the account the form was read at (``actions.version_of``): a save over a
    newer one is refused, as two clinicians' edits of a patient are."""

    version = forms.CharField(widget=forms.HiddenInput, required=False, max_length=40)

    def read_version(self) -> str | None:
        return self.cleaned_data.get("version") or None


class StaffDetailsForm(forms.ModelForm, AccountVersionForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "telephone", "credentials"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _names_required(self)
        self.fields["version"].initial = actions.version_of(self.instance)


class RoleForm(AccountVersionForm):
    role = forms.ChoiceField(choices=Role.choices)


class StaffPasswordForm(SetPasswordForm):
    """A new password chosen by the admin, checked by the validators against the user."""


class LinkPatientForm(forms.Form):
    record_number = forms.CharField(
        label="Patient's record number", max_length=Patient._meta.get_field(
            "record_number").max_length,
    )
    replace = forms.BooleanField(label=actions.REPLACE_LABEL, required=False)

    def __init__(self, referrer: User, *args, **kwargs):
        self.referrer = referrer
        super().__init__(*args, **kwargs)

    def clean_record_number(self) -> Patient:
        # Stored upper case (PatientForm.clean_record_number).
        number = self.cleaned_data["record_number"].strip().upper()
        patient = (
            Patient.objects.select_related("referring_provider")
            .filter(record_number=number).first()
        )
        if patient is None:
            raise forms.ValidationError(f"No patient has the record number “{number}”.")
        return patient

    def clean(self):
        cleaned = super().clean()
        patient = cleaned.get("record_number")
        if patient is not None:
            reason = actions.link_refusal(self.referrer, patient,
                                          replace=cleaned.get("replace", False))
            if reason:
                other = patient.referring_provider_id not in (None, self.referrer.pk)
                self.add_error("replace" if other else "record_number", reason)
        return cleaned


# -- pages ---------------------------------------------------------------------------------------
