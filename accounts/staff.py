"""Staff accounts, for clinic admins (issue 4): create, edit, change the role of, deactivate and
reactivate accounts, set a new password, reset two-factor, and link referring providers to
their patients.

Every view is for clinic admins only (``clinic_admin_required``: 403 for clinicians, 404 for
referring providers, the login page for anyone else), every change is a POST, and every change
goes through ``accounts.actions``, which writes the audit row in the same transaction.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError
from django.db.models import Count, Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import actions
from accounts.access import clinic_admin_required, get_patient_for_user, get_staff_member_for_user
from accounts.forms import (
    LinkPatientForm,
    NewStaffForm,
    RoleForm,
    StaffDetailsForm,
    StaffFilterForm,
    StaffPasswordForm,
)
from accounts.models import User
from accounts.twofactor import DEMO_DEVICE, TWO_FACTOR_ROLES, usable_device
from audit.log import snapshot
from patients.models import Patient


def _enrolled_devices():
    """Confirmed authenticators that open a session here (see ``twofactor.usable_device``)."""
    devices = TOTPDevice.objects.filter(confirmed=True)
    return devices if settings.DEBUG else devices.exclude(name=DEMO_DEVICE)


# /staff/
@clinic_admin_required
@require_GET
def staff_list(request: HttpRequest) -> HttpResponse:
    form = StaffFilterForm(request.GET)
    members = User.objects.annotate(
        linked_patients=Count("referred_patients"),
        two_factor=Exists(_enrolled_devices().filter(user=OuterRef("pk"))),
    ).order_by("role", "last_name", "first_name", "username")
    if form.is_valid():
        if role := form.cleaned_data["role"]:
            members = members.filter(role=role)
        if active := form.cleaned_data["active"]:
            members = members.filter(is_active=active == "yes")
    return render(request, "accounts/staff_list.html", {
        "members": members, "filter_form": form, "two_factor_roles": TWO_FACTOR_ROLES,
    })


def _form_page(request: HttpRequest, form: forms.Form, title: str, cancel_url: str,
               member: User | None = None, submit: str = "Save") -> HttpResponse:
    return render(request, "accounts/staff_form.html", {
        "form": form, "title": title, "cancel_url": cancel_url, "member": member,
        "submit": submit,
    })


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_create(request: HttpRequest) -> HttpResponse:
    form = NewStaffForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = actions.create_user(request.user, form.save(commit=False))
        except IntegrityError:  # the same user name saved a moment ago by another admin
            form.add_error("username", "A user with that username already exists.")
        else:
            messages.success(
                request, f"Account {member.username} created. Give them their initial password; "
                "they can change it from the Password button once logged in.",
            )
            return redirect("staff-detail", pk=member.pk)
    return _form_page(request, form, "New account", reverse("staff-list"), submit="Create")


def _detail_page(request: HttpRequest, member: User, link_form: LinkPatientForm | None = None
                 ) -> HttpResponse:
    patients = None
    if member.is_referring_provider:
        patients = Patient.objects.filter(referring_provider=member)
    enrolled, required = usable_device(member) is not None, member.role in TWO_FACTOR_ROLES
    return render(request, "accounts/staff_detail.html", {
        "member": member,
        "is_self": member.pk == request.user.pk,
        "two_factor": enrolled,
        "two_factor_required": required,
        # As actions.two_factor_reset_refusal judges (and the reset checks again): a role that
        # uses two-factor, and an authenticator to lose.
        "two_factor_resettable": required and enrolled,
        "patients": patients,
        "link_form": link_form or LinkPatientForm(member),
    })


# /staff/<pk>/
@clinic_admin_required
@require_GET
def staff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, get_staff_member_for_user(request.user, pk))


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_edit(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    before = snapshot(member, actions.ACCOUNT_FIELDS)
    title = f"Edit {member.signature}"  # before the form writes the typed name on it
    form = StaffDetailsForm(request.POST or None, instance=member)
    if request.method == "POST" and form.is_valid():
        changed = [name for name in form.changed_data if name != "version"]
        try:
            actions.update_user(request.user, form.save(commit=False), before, changed,
                                read_version=form.read_version())
        except actions.StaleAccountEdit:
            # Keep what they typed; the next save goes over the version now on record.
            fresh = get_staff_member_for_user(request.user, pk)
            data = request.POST.copy()
            data["version"] = actions.version_of(fresh)
            differ = [f"{form.fields[name].label}: {getattr(fresh, name) or '—'}"
                      for name in changed if getattr(fresh, name) != form.cleaned_data[name]]
            form = StaffDetailsForm(data, instance=fresh)
            form.is_valid()
            form.add_error(None, _changed_meanwhile(fresh, differ))
        else:
            messages.success(request, "Account details saved.")
            return redirect("staff-detail", pk=member.pk)
    return _form_page(request, form, title, reverse("staff-detail", args=[member.pk]), member)


def _changed_meanwhile(member: User, differ: list[str]) -> str:
    now = f" The account now has {'; '.join(differ)}." if differ else ""
    return (f"Another clinic admin changed {member.signature}'s account while you were "
            f"editing. Your changes are below and not saved yet.{now} Check and save again.")


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_role(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    form = RoleForm(request.POST or None, initial={
        "role": member.role, "version": actions.version_of(member),
    })
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]
        if role == member.role:
            messages.info(request, f"{member.signature} is already a "
                          f"{member.get_role_display().lower()}: nothing changed.")
            return redirect("staff-detail", pk=member.pk)
        try:
            actions.change_role(request.user, member, role, read_version=form.read_version())
        except actions.StaffChangeRefused as refusal:
            form.add_error("role", str(refusal))
        except actions.StaleAccountEdit:
            data = request.POST.copy()
            data["version"] = actions.version_of(member)
            form = RoleForm(data)
            form.is_valid()
            form.add_error(None, _changed_meanwhile(member, [
                f"role: {member.get_role_display().lower()}"]))
        else:
            messages.success(request, f"{member.signature} is now a "
                             f"{member.get_role_display().lower()}.")
            return redirect("staff-detail", pk=member.pk)
    return _form_page(request, form, f"Change the role of {member.signature}",
                      reverse("staff-detail", args=[member.pk]), member, "Change role")


def _confirm_page(request: HttpRequest, member: User, title: str, consequences: list[str],
                  submit: str, refusal: str = "") -> HttpResponse:
    """The page a destructive change is confirmed on: it names the account and says what the
    change does; only its button (a POST) makes the change. A change the rules refuse is said
    so here, without the button."""
    if member.pk == request.user.pk:
        refusal = "This is your own account: ask another clinic admin."
    return render(request, "accounts/staff_confirm.html", {
        "member": member, "title": title, "consequences": consequences, "submit": submit,
        "refusal": refusal,
    })


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    if request.method == "GET":
        consequences = [
            f"{member.signature} ({member.username}) will no longer be able to log in, and "
            "any session they have open now ends at once.",
            "Everything they recorded or signed stays as it is, under their name.",
        ]
        if member.is_referring_provider:
            consequences.append("Their patients stay linked to them, but they cannot read "
                                "the reports until the account is active again.")
        consequences.append("You can reactivate the account later.")
        return _confirm_page(request, member, f"Deactivate {member.signature}?", consequences,
                             "Deactivate the account")
    try:
        actions.deactivate_user(request.user, member)
    except actions.StaffChangeRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{member.signature} is deactivated: they can no longer log "
                         "in, and any open session has ended.")
    return redirect("staff-detail", pk=member.pk)


@clinic_admin_required
@require_POST
def staff_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    actions.reactivate_user(request.user, member)
    messages.success(request, f"{member.signature} is active again and can log in.")
    return redirect("staff-detail", pk=member.pk)


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_password(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    form = StaffPasswordForm(member, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.reset_password(request.user, form.save(commit=False))
        except actions.StaffChangeRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, f"New password set for {member.signature}; their open "
                             "sessions have ended. Give them the password.")
            return redirect("staff-detail", pk=member.pk)
    return _form_page(request, form, f"Set a new password for {member.signature}",
                      reverse("staff-detail", args=[member.pk]), member, "Set password")


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_two_factor_reset(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    if request.method == "GET":
        title = f"Reset two-factor for {member.signature}?"
        if refusal := actions.two_factor_reset_refusal(member):
            # Nothing to lose and nothing to set up again: say why instead of what it does.
            return _confirm_page(request, member, title, [], "Reset two-factor", refusal=refusal)
        count = TOTPDevice.objects.filter(user=member).count()
        return _confirm_page(request, member, title, [
            f"{member.signature} ({member.username}) loses their authenticator"
            f"{'' if count == 1 else 's'} ({count} now), and any session they have open "
            "ends at once.",
            "At their next login they set up a new authenticator app with their phone before "
            "they can open any page. Do this when they have lost or replaced their phone.",
        ], "Reset two-factor")
    try:
        removed = actions.reset_two_factor(request.user, member)
    except actions.StaffChangeRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(
            request, f"Two-factor reset for {member.signature}: {removed} authenticator"
            f"{'' if removed == 1 else 's'} removed and their sessions ended. They set up a "
            "new one at their next login.",
        )
    return redirect("staff-detail", pk=member.pk)


# /staff/<pk>/patients/
@clinic_admin_required
@require_POST
def staff_link(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    if not member.is_referring_provider:
        messages.error(request, f"{member.signature} is a {member.get_role_display().lower()}: "
                       "only referring providers can be linked to patients.")
        return redirect("staff-detail", pk=member.pk)
    form = LinkPatientForm(member, request.POST)
    if form.is_valid():
        try:
            patient = actions.link_patient(request.user, member, form.cleaned_data["record_number"],
                                           replace=form.cleaned_data["replace"])
        except actions.StaffChangeRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, f"{patient} is now linked to {member.signature}.")
            return redirect("staff-detail", pk=member.pk)
    return _detail_page(request, member, link_form=form)


@clinic_admin_required
@require_http_methods(["GET", "POST"])
def staff_unlink(request: HttpRequest, pk: int, patient_pk: int) -> HttpResponse:
    member = get_staff_member_for_user(request.user, pk)
    patient = get_patient_for_user(request.user, patient_pk)
    if request.method == "GET":
        return _confirm_page(request, member, f"Unlink {patient} from {member.signature}?", [
            f"{member.signature} ({member.username}) will no longer read the course reports "
            f"of {patient}, nor download them.",
            "Nothing else in the patient's record changes, and you can link them again.",
        ], "Unlink the patient", refusal="" if patient.referring_provider_id == member.pk
            else f"{patient} is not linked to {member.signature}.")
    try:
        actions.unlink_patient(request.user, member, patient)
    except actions.StaffChangeRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{patient} is no longer linked to {member.signature}.")
    return redirect("staff-detail", pk=member.pk)
