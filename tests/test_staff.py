"""Staff accounts (issue 4): clinic admins create, edit, change the role of, deactivate and
reactivate accounts, set passwords, reset two-factor, and link referring providers to patients.
Every change is audited; nobody else reaches any of it."""

import json
import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import actions, forms
from accounts.models import Role, User
from audit.models import Action, AuditEvent
from patients.models import Patient
from tests.conftest import sent
from tests.factories import PASSWORD, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "quiet-lantern-harbour-42"


@pytest.fixture
def admin(as_user, clinic_admin):
    """The test client, logged in as a clinic admin (password and second factor given)."""
    return as_user(clinic_admin)


@pytest.fixture
def patient(db):
    return PatientFactory(record_number="MRN-LINK-1", last_name="Linkable")


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get(SESSION_KEY) == str(user.pk))


def logged_in_elsewhere(user) -> Client:
    other = Client()
    other.force_login(user)
    return other


def can_log_in(username: str, password: str) -> bool:
    """Through the login page (django-axes wants a request)."""
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def audit(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# -- who may use it ------------------------------------------------------------------------------

# (url name, takes the target's pk?, page (GET and POST) or POST-only). Deactivate, reset
# two-factor and unlink are pages too: their GET asks for confirmation.
PAGES = [("staff-list", False), ("staff-create", False), ("staff-detail", True),
         ("staff-edit", True), ("staff-role", True), ("staff-password", True),
         ("staff-deactivate", True), ("staff-two-factor-reset", True)]
POST_ONLY = ["staff-reactivate", "staff-link"]


def staff_urls(target: User, patient: Patient) -> list[tuple[str, bool]]:
    """(url, POST-only?) for every staff URL."""
    urls = [(reverse(name, args=[target.pk] if pk else None), False) for name, pk in PAGES]
    urls += [(reverse(name, args=[target.pk]), True) for name in POST_ONLY]
    urls.append((reverse("staff-unlink", args=[target.pk, patient.pk]), False))
    return urls


def test_it_sends_anonymous_visitors_to_login(client, referrer, patient):
    for url, _ in staff_urls(referrer, patient):
        for response in (client.get(url), client.post(url, {})):
            assert response.status_code == 302, url
            assert response.url.startswith(reverse("login")), url


def test_it_refuses_clinicians(as_user, clinician, referrer, patient):
    client = as_user(clinician)
    for url, _ in staff_urls(referrer, patient):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"role": "clinic_admin"}).status_code == 403, url
    assert User.objects.get(pk=clinician.pk).role == Role.CLINICIAN


def test_it_does_not_exist_for_referring_providers(as_user, referrer, patient):
    client = as_user(referrer)
    for url, _ in staff_urls(referrer, patient):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url


def test_it_opens_every_page_to_clinic_admins_and_changes_only_by_post(admin, referrer,
                                                                       patient):
    for url, post_only in staff_urls(referrer, patient):
        assert admin.get(url).status_code == (405 if post_only else 200), url


def test_it_answers_404_for_accounts_and_patients_that_do_not_exist(admin, referrer):
    for name, pk in PAGES:
        if pk:
            assert admin.get(reverse(name, args=[999_999])).status_code == 404, name
    for name in [*POST_ONLY, "staff-deactivate", "staff-two-factor-reset"]:
        assert admin.post(reverse(name, args=[999_999])).status_code == 404, name
    assert admin.post(reverse("staff-unlink", args=[referrer.pk, 999_999])).status_code == 404


def test_the_nav_shows_staff_to_clinic_admins_only(admin, as_user, clinician):
    assert f'href="{reverse("staff-list")}"' in admin.get(reverse("audit:report")).content.decode()
    page = as_user(clinician).get(reverse("patients:list")).content.decode()
    assert f'href="{reverse("staff-list")}"' not in page


def test_changes_need_the_csrf_token(clinic_admin, clinician):
    from tests.conftest import verified_login

    client = Client(enforce_csrf_checks=True)
    verified_login(client, clinic_admin)
    response = client.post(reverse("staff-deactivate", args=[clinician.pk]))
    assert response.status_code == 403
    clinician.refresh_from_db()
    assert clinician.is_active


# -- the list ------------------------------------------------------------------------------------

def test_list_shows_each_account_with_its_facts(admin, clinician, referrer):
    TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=True)
    PatientFactory.create_batch(2, referring_provider=referrer)
    retired = UserFactory(role=Role.CLINICIAN, username="retired", is_active=False)
    response = admin.get(reverse("staff-list"))
    members = {m.username: m for m in response.context["members"]}
    assert set(members) >= {"admin-test", "dr-test", "referrer-test", "retired"}
    assert members["referrer-test"].linked_patients == 2
    assert members["dr-test"].two_factor and not members["retired"].two_factor
    body = response.content.decode()
    assert "not enrolled" in body and "not required" in body and "inactive" in body
    assert retired.get_full_name() in body


def test_list_filters_by_role_and_active(admin, clinician, referrer):
    UserFactory(role=Role.CLINICIAN, username="retired", is_active=False)
    names = lambda params: {  # noqa: E731
        m.username for m in admin.get(reverse("staff-list"), params).context["members"]
    }
    assert names({"role": "referring_provider"}) == {"referrer-test"}
    assert names({"role": "clinician", "active": "yes"}) == {"dr-test"}
    assert names({"active": "no"}) == {"retired"}
    # Values no filter offers are ignored, not an error.
    assert "retired" in names({"role": "superuser", "active": "maybe"})


def test_list_queries_do_not_grow_with_accounts(admin):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin.get(reverse("staff-list")).status_code == 200
        return len(sent(queries))

    few = count()
    for n in range(10):
        referrer = UserFactory(role=Role.REFERRING_PROVIDER)
        PatientFactory(referring_provider=referrer)
        TOTPDevice.objects.create(user=UserFactory(), name=f"a{n}", confirmed=True)
    # session, user, accounts with their linked patients and two-factor
    assert count() == few == 3


# -- creating and editing ------------------------------------------------------------------------

def new_account(**changes) -> dict:
    return {
        "username": "np-jones", "first_name": "Nora", "last_name": "Jones",
        "email": "nora@clinic.example", "credentials": "NP", "role": "clinician",
        "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, **changes,
    }


def test_it_creates_an_account_that_can_log_in(admin, clinic_admin):
    response = admin.post(reverse("staff-create"), new_account(telephone="+1 555 010 2000"))
    user = User.objects.get(username="np-jones")
    assert response.url == reverse("staff-detail", args=[user.pk])
    assert (user.signature, user.role, user.is_active) == ("Nora Jones, NP", Role.CLINICIAN, True)
    assert user.check_password(NEW_PASSWORD)
    [event] = audit(Action.CREATE)
    assert (event.actor, event.object_id, event.before) == (clinic_admin, str(user.pk), None)
    assert event.after == {
        "username": "np-jones", "first_name": "Nora", "last_name": "Jones",
        "email": "nora@clinic.example", "telephone": "+1 555 010 2000", "credentials": "NP",
        "role": "clinician", "is_active": True,
    }
    assert "created" in messages_of(admin.get(response.url))[0]
    assert can_log_in("np-jones", NEW_PASSWORD)


@pytest.mark.parametrize("password,error", [
    ("short-pw-1", "too short"),  # the settings ask for 12 characters
    ("password1234", "too common"),
    ("nora-jones-np", "too similar"),
])
def test_it_refuses_a_weak_initial_password(admin, password, error):
    response = admin.post(reverse("staff-create"),
                          new_account(password1=password, password2=password))
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["password2"])
    assert not User.objects.filter(username="np-jones").exists()
    assert not audit(Action.CREATE)


def test_it_refuses_mismatched_passwords_and_missing_names(admin):
    response = admin.post(reverse("staff-create"),
                          new_account(password2="another-long-phrase-9", last_name=""))
    errors = response.context["form"].errors
    assert "password2" in errors and "last_name" in errors
    assert not User.objects.filter(username="np-jones").exists()


def test_it_refuses_a_user_name_already_taken_in_any_case(admin, clinician):
    response = admin.post(reverse("staff-create"), new_account(username="DR-TEST"))
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["username"][0]
    assert User.objects.filter(username__iexact="dr-test").count() == 1
    assert not audit(Action.CREATE)


def test_it_edits_name_email_and_credentials(admin, clinician):
    response = admin.post(reverse("staff-edit", args=[clinician.pk]), {
        "first_name": "Test", "last_name": clinician.last_name, "email": "dr@clinic.example",
        "credentials": "MD", "role": "clinic_admin", "is_active": "", "password": "x",
    })
    assert response.status_code == 302
    before_password = clinician.password
    clinician.refresh_from_db()
    assert (clinician.email, clinician.credentials) == ("dr@clinic.example", "MD")
    # Fields the form does not offer are left alone.
    assert (clinician.role, clinician.is_active) == (Role.CLINICIAN, True)
    assert clinician.password == before_password
    [event] = audit(Action.UPDATE)
    assert event.before == {"email": "", "credentials": ""}
    assert event.after == {"email": "dr@clinic.example", "credentials": "MD"}


def test_it_sets_changes_and_clears_a_telephone_number_audited(admin, clinician):
    # The REMS forms print the prescriber's number; an edit of it once answered 500 (its
    # before was not read).
    url = reverse("staff-edit", args=[clinician.pk])
    details = {"first_name": clinician.first_name, "last_name": clinician.last_name}
    for before, typed in [("", "+1 555 010 1234"), ("+1 555 010 1234", "555-010-9999"),
                          ("555-010-9999", "")]:
        response = admin.post(url, {**details, "telephone": typed})
        assert response.status_code == 302
        clinician.refresh_from_db()
        assert clinician.telephone == typed
        event = audit(Action.UPDATE)[-1]
        assert (event.before, event.after) == ({"telephone": before}, {"telephone": typed})
    assert len(audit(Action.UPDATE)) == 3


def test_the_account_page_shows_the_telephone_number(admin, clinician):
    """The number the REMS form prints as the monitoring clinician's: the admin who types it
    sees it on the account."""
    detail = reverse("staff-detail", args=[clinician.pk])
    assert re.search(r"<dt[^>]*>Telephone</dt><dd[^>]*>—</dd>", admin.get(detail).content.decode())
    User.objects.filter(pk=clinician.pk).update(telephone="+1 555 010 4321")
    body = admin.get(detail).content.decode()
    assert re.search(r"<dt[^>]*>Telephone</dt><dd[^>]*>\+1 555 010 4321</dd>", body)


@pytest.mark.parametrize("form", [forms.NewStaffForm, forms.StaffDetailsForm])
def test_every_field_a_staff_form_edits_is_audited(form):
    assert set(form._meta.fields) <= set(actions.ACCOUNT_FIELDS)


def test_an_unchanged_edit_writes_no_audit_row(admin, clinician):
    admin.post(reverse("staff-edit", args=[clinician.pk]), {
        "first_name": clinician.first_name, "last_name": clinician.last_name, "email": "",
        "credentials": "",
    })
    assert not audit(Action.UPDATE)


# -- roles ---------------------------------------------------------------------------------------

def test_it_changes_a_role_and_audits_before_and_after(admin, clinic_admin, clinician):
    response = admin.post(reverse("staff-role", args=[clinician.pk]), {"role": "clinic_admin"})
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.role == Role.CLINIC_ADMIN
    [event] = audit(Action.ROLE_CHANGE)
    assert (event.actor, event.object_type, event.object_id) == (
        clinic_admin, "accounts.User", str(clinician.pk))
    assert (event.before, event.after) == ({"role": "clinician"}, {"role": "clinic_admin"})
    assert "now a clinic admin" in messages_of(admin.get(response.url))[0]


def test_an_admin_cannot_demote_themselves(admin, clinic_admin):
    UserFactory(role=Role.CLINIC_ADMIN)  # not the last admin: the rule is about oneself
    response = admin.post(reverse("staff-role", args=[clinic_admin.pk]), {"role": "clinician"})
    assert response.status_code == 200
    assert "your own account" in response.context["form"].errors["role"][0]
    clinic_admin.refresh_from_db()
    assert clinic_admin.role == Role.CLINIC_ADMIN
    assert not audit(Action.ROLE_CHANGE)


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(clinic_admin):
    """Two admins demoting each other at the same moment: the second change finds its target
    the last active admin (the view's own check ran before the first change saved)."""
    other = UserFactory(role=Role.CLINIC_ADMIN)
    UserFactory(role=Role.CLINIC_ADMIN, is_active=False)  # an inactive admin does not count
    stale = User.objects.get(pk=clinic_admin.pk)
    actions.change_role(other, clinic_admin, Role.CLINICIAN)
    for change in (lambda: actions.change_role(stale, other, Role.CLINICIAN),
                   lambda: actions.deactivate_user(stale, other)):
        with pytest.raises(actions.StaffChangeRefused, match="last active clinic admin"):
            change()
    other.refresh_from_db()
    assert (other.role, other.is_active) == (Role.CLINIC_ADMIN, True)
    assert len(audit(Action.ROLE_CHANGE)) == 1 and not audit(Action.DEACTIVATE)


def test_another_admin_can_be_demoted_while_one_remains(admin):
    other = UserFactory(role=Role.CLINIC_ADMIN)
    admin.post(reverse("staff-role", args=[other.pk]), {"role": "referring_provider"})
    other.refresh_from_db()
    assert other.role == Role.REFERRING_PROVIDER


def test_a_referrer_with_patients_keeps_the_role_until_unlinked(admin, referrer, patient):
    Patient.objects.filter(pk=patient.pk).update(referring_provider=referrer)
    response = admin.post(reverse("staff-role", args=[referrer.pk]), {"role": "clinician"})
    assert "unlink them first" in response.context["form"].errors["role"][0]
    referrer.refresh_from_db()
    assert referrer.role == Role.REFERRING_PROVIDER


def test_the_same_role_changes_nothing(admin, clinician):
    response = admin.post(reverse("staff-role", args=[clinician.pk]), {"role": "clinician"})
    assert response.status_code == 302
    assert not audit(Action.ROLE_CHANGE)


def test_a_role_that_does_not_exist_is_refused(admin, clinician):
    response = admin.post(reverse("staff-role", args=[clinician.pk]), {"role": "superuser"})
    assert response.status_code == 200 and "role" in response.context["form"].errors
    clinician.refresh_from_db()
    assert clinician.role == Role.CLINICIAN


# -- deactivating and reactivating ---------------------------------------------------------------

def test_deactivating_ends_the_sessions_and_the_login(admin, clinic_admin, clinician):
    elsewhere = logged_in_elsewhere(clinician)
    assert sessions_of(clinician) == 1
    response = admin.post(reverse("staff-deactivate", args=[clinician.pk]))
    assert response.url == reverse("staff-detail", args=[clinician.pk])
    clinician.refresh_from_db()
    assert not clinician.is_active
    assert sessions_of(clinician) == 0
    assert elsewhere.get(reverse("patients:list")).url.startswith(reverse("login"))
    assert not can_log_in(clinician.username, PASSWORD)
    [event] = audit(Action.DEACTIVATE)
    assert (event.actor, event.object_id) == (clinic_admin, str(clinician.pk))
    assert (event.before, event.after) == ({"is_active": True}, {"is_active": False})
    assert event.summary == "deactivated; 1 session ended"
    assert sessions_of(clinic_admin) == 1  # the admin's own session goes on


def test_an_admin_cannot_deactivate_themselves(admin, clinic_admin):
    UserFactory(role=Role.CLINIC_ADMIN)
    response = admin.post(reverse("staff-deactivate", args=[clinic_admin.pk]), follow=True)
    assert "cannot deactivate your own account" in messages_of(response)[0]
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active
    assert not audit(Action.DEACTIVATE)


def test_deactivating_a_referrer_keeps_their_patients(admin, referrer, patient):
    Patient.objects.filter(pk=patient.pk).update(referring_provider=referrer)
    admin.post(reverse("staff-deactivate", args=[referrer.pk]))
    patient.refresh_from_db()
    assert patient.referring_provider == referrer


def test_reactivating_lets_them_log_in_again(admin, clinic_admin, clinician):
    admin.post(reverse("staff-deactivate", args=[clinician.pk]))
    response = admin.post(reverse("staff-reactivate", args=[clinician.pk]), follow=True)
    assert "active again" in messages_of(response)[-1]
    clinician.refresh_from_db()
    assert clinician.is_active
    assert can_log_in(clinician.username, PASSWORD)
    [event] = audit(Action.REACTIVATE)
    assert (event.actor, event.before, event.after) == (
        clinic_admin, {"is_active": False}, {"is_active": True})


# -- passwords and two-factor --------------------------------------------------------------------

def test_setting_a_password_replaces_the_old_and_ends_sessions(admin, clinic_admin, clinician):
    elsewhere = logged_in_elsewhere(clinician)
    response = admin.post(reverse("staff-password", args=[clinician.pk]),
                          {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password(NEW_PASSWORD) and not clinician.check_password(PASSWORD)
    assert sessions_of(clinician) == 0
    assert elsewhere.get(reverse("patients:list")).status_code == 302
    [event] = audit(Action.PASSWORD_RESET)
    assert (event.actor, event.object_id, event.before, event.after) == (
        clinic_admin, str(clinician.pk), None, None)
    assert event.summary == "new password set by a clinic admin; 1 session ended"


def test_no_password_or_hash_ever_reaches_the_audit_trail(admin, clinician):
    admin.post(reverse("staff-create"), new_account())
    admin.post(reverse("staff-password", args=[clinician.pk]),
               {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    created = User.objects.get(username="np-jones")
    clinician.refresh_from_db()
    trail = json.dumps([[e.summary, e.before, e.after] for e in AuditEvent.objects.all()])
    for secret in (NEW_PASSWORD, created.password, clinician.password, "md5$", '"password"'):
        assert secret not in trail


def test_a_weak_new_password_is_refused(admin, clinician):
    response = admin.post(reverse("staff-password", args=[clinician.pk]),
                          {"new_password1": "12345", "new_password2": "12345"})
    assert response.status_code == 200
    assert "too short" in " ".join(response.context["form"].errors["new_password2"])
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)
    assert not audit(Action.PASSWORD_RESET)


def test_an_admin_sets_their_own_password_from_the_password_page(admin, clinic_admin):
    response = admin.post(reverse("staff-password", args=[clinic_admin.pk]),
                          {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert "Password button" in str(response.context["form"].non_field_errors())
    clinic_admin.refresh_from_db()
    assert clinic_admin.check_password(PASSWORD)


def test_resetting_two_factor_removes_the_authenticators(admin, clinic_admin, clinician):
    TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=True)
    TOTPDevice.objects.create(user=clinician, name="half enrolled", confirmed=False)
    elsewhere = logged_in_elsewhere(clinician)
    response = admin.post(reverse("staff-two-factor-reset", args=[clinician.pk]), follow=True)
    assert "2 authenticators removed" in messages_of(response)[0]
    assert not TOTPDevice.objects.filter(user=clinician).exists()
    assert TOTPDevice.objects.filter(user=clinic_admin).exists()
    assert sessions_of(clinician) == 0
    assert elsewhere.get(reverse("patients:list")).status_code == 302
    [event] = audit(Action.TWO_FACTOR_RESET)
    assert (event.actor, event.object_id) == (clinic_admin, str(clinician.pk))
    assert (event.before, event.after) == ({"authenticators": 2}, {"authenticators": 0})
    # At the next login they are sent to enrol a new authenticator.
    client = Client()
    client.post(reverse("login"), {"username": clinician.username, "password": PASSWORD})
    response = client.get(reverse("patients:list"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two-factor-setup"))


def reset_link(member) -> str:
    return f'href="{reverse("staff-two-factor-reset", args=[member.pk])}"'


@pytest.mark.parametrize("who", ["referrer", "never enrolled", "half enrolled"])
def test_two_factor_reset_is_offered_and_done_only_where_it_means_something(
        admin, clinician, referrer, who):
    """A referring provider logs in without two-factor, and an account with no authenticator
    has nothing to lose: no button, a confirmation page that says why, and a POST refused
    with the same words, changing nothing and auditing nothing."""
    member = referrer if who == "referrer" else clinician
    if who == "half enrolled":  # scanned the code, never typed one
        TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=False)
    devices = TOTPDevice.objects.filter(user=member).count()
    detail = admin.get(reverse("staff-detail", args=[member.pk])).content.decode()
    assert reset_link(member) not in detail and "resetting two-factor" not in detail
    reason = ("that role logs in without two-factor authentication" if who == "referrer"
              else "has no authenticator set up, so there is nothing to reset")

    page = admin.get(reverse("staff-two-factor-reset", args=[member.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and reason in body
    assert ">Reset two-factor</button>" not in body
    assert "At their next login" not in body and "(0 now)" not in body

    response = admin.post(reverse("staff-two-factor-reset", args=[member.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("staff-detail", args=[member.pk])
    [message] = messages_of(response)
    assert reason in message and "removed" not in message
    assert TOTPDevice.objects.filter(user=member).count() == devices
    assert not audit(Action.TWO_FACTOR_RESET)


def test_the_action_refuses_a_reset_that_means_nothing(clinic_admin, referrer):
    with pytest.raises(actions.StaffChangeRefused, match="nothing to reset"):
        actions.reset_two_factor(clinic_admin, referrer)
    assert not audit(Action.TWO_FACTOR_RESET)


def test_two_factor_reset_is_offered_for_an_enrolled_clinician(admin, clinician):
    TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=True)
    detail = admin.get(reverse("staff-detail", args=[clinician.pk])).content.decode()
    assert reset_link(clinician) in detail and "resetting two-factor" in detail
    body = admin.get(reverse("staff-two-factor-reset", args=[clinician.pk])).content.decode()
    assert "loses their authenticator (1 now)" in body and ">Reset two-factor</button>" in body


def test_an_admin_cannot_reset_their_own_two_factor(admin, clinic_admin):
    response = admin.post(reverse("staff-two-factor-reset", args=[clinic_admin.pk]),
                          follow=True)
    assert "your own two-factor" in messages_of(response)[0]
    assert TOTPDevice.objects.filter(user=clinic_admin).exists()
    assert not audit(Action.TWO_FACTOR_RESET)


# -- linking referring providers to patients -----------------------------------------------------

def link(admin, referrer, record_number, **extra):
    return admin.post(reverse("staff-link", args=[referrer.pk]),
                      {"record_number": record_number, **extra})


def test_linking_and_unlinking_a_patient(admin, as_user, clinic_admin, referrer, patient):
    response = link(admin, referrer, " mrn-link-1 ")  # typed as a clinician might
    assert response.url == reverse("staff-detail", args=[referrer.pk])
    patient.refresh_from_db()
    assert patient.referring_provider == referrer
    assert patient.version == 2
    [event] = audit(Action.LINK)
    assert (event.actor, event.patient_id, event.object_type) == (
        clinic_admin, patient.pk, "patients.Patient")
    assert (event.before, event.after) == (
        {"referring_provider": None}, {"referring_provider": referrer.pk})
    page = admin.get(response.url)
    assert "now linked" in messages_of(page)[0]
    assert list(page.context["patients"]) == [patient]

    # The referring provider now reads the patient's report.
    reports = as_user(referrer)
    assert patient in reports.get(reverse("reports:list")).context["patients"]
    assert reports.get(reverse("reports:patient", args=[patient.pk])).status_code == 200

    admin = as_user(clinic_admin)
    response = admin.post(reverse("staff-unlink", args=[referrer.pk, patient.pk]))
    assert response.url == reverse("staff-detail", args=[referrer.pk])
    patient.refresh_from_db()
    assert patient.referring_provider is None and patient.version == 3
    [event] = audit(Action.UNLINK)
    assert (event.actor, event.patient_id) == (clinic_admin, patient.pk)
    assert (event.before, event.after) == (
        {"referring_provider": referrer.pk}, {"referring_provider": None})

    reports = as_user(referrer)
    assert patient not in reports.get(reverse("reports:list")).context["patients"]
    assert reports.get(reverse("reports:patient", args=[patient.pk])).status_code == 404


def test_an_unknown_record_number_is_named_on_its_field(admin, referrer):
    response = link(admin, referrer, "NOPE-1")
    assert response.status_code == 200
    assert response.context["link_form"].errors["record_number"] == [
        "No patient has the record number “NOPE-1”."]
    assert not audit(Action.LINK)


def test_a_patient_of_another_referrer_moves_only_when_replace_is_ticked(admin, referrer,
                                                                        patient):
    other = UserFactory(role=Role.REFERRING_PROVIDER, username="dr-other", first_name="Olga",
                        last_name="Other", credentials="MD")
    Patient.objects.filter(pk=patient.pk).update(referring_provider=other)
    response = link(admin, referrer, patient.record_number)
    assert response.status_code == 200
    [error] = response.context["link_form"].errors["replace"]
    assert "Olga Other, MD (dr-other)" in error and "Replace" in error
    patient.refresh_from_db()
    assert patient.referring_provider == other and patient.version == 1

    response = link(admin, referrer, patient.record_number, replace="on")
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.referring_provider == referrer and patient.version == 2
    [event] = audit(Action.LINK)
    assert (event.before, event.after) == (
        {"referring_provider": other.pk}, {"referring_provider": referrer.pk})
    assert event.summary == f"linked to {referrer.username}, replacing dr-other"


def test_a_patient_already_linked_to_this_referrer_is_said_so(admin, referrer, patient):
    Patient.objects.filter(pk=patient.pk).update(referring_provider=referrer)
    response = link(admin, referrer, patient.record_number, replace="on")
    assert "already linked" in response.context["link_form"].errors["record_number"][0]
    assert not audit(Action.LINK)


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMIN])
def test_only_referring_providers_can_be_linked(admin, patient, role):
    staff = UserFactory(role=role)
    response = link(admin, staff, patient.record_number)
    assert response.status_code == 302
    assert "only referring providers" in messages_of(admin.get(response.url))[0]
    patient.refresh_from_db()
    assert patient.referring_provider is None and patient.version == 1
    with pytest.raises(actions.StaffChangeRefused):  # the action checks too
        actions.link_patient(staff, staff, patient)
    assert not audit(Action.LINK)


def test_unlinking_a_patient_of_another_referrer_changes_nothing(admin, referrer, patient):
    other = UserFactory(role=Role.REFERRING_PROVIDER)
    Patient.objects.filter(pk=patient.pk).update(referring_provider=other)
    response = admin.post(reverse("staff-unlink", args=[referrer.pk, patient.pk]), follow=True)
    assert "is not linked to" in messages_of(response)[0]
    patient.refresh_from_db()
    assert patient.referring_provider == other and patient.version == 1
    assert not audit(Action.UNLINK)


def test_a_clinicians_edit_begun_before_a_link_is_refused(as_user, clinic_admin, clinician,
                                                          referrer, patient):
    """The link moves the patient's version on, so an edit form opened earlier cannot put the
    old referring provider back."""
    as_user(clinic_admin)
    link(as_user(clinic_admin), referrer, patient.record_number)
    client = as_user(clinician)
    response = client.post(reverse("patients:edit", args=[patient.pk]), {
        "record_number": patient.record_number, "first_name": patient.first_name,
        "last_name": patient.last_name, "date_of_birth": "1980-01-01", "sex": "female",
        "height_cm": "165.0", "diagnosis": "mdd", "referring_provider": "", "version": "1",
    })
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.referring_provider == referrer


def test_staff_pages_have_no_inline_script_or_style(admin, referrer, patient):
    """The Content-Security-Policy forbids both (see tests/test_security.py)."""
    Patient.objects.filter(pk=patient.pk).update(referring_provider=referrer)
    urls = [reverse(name, args=[referrer.pk] if pk else None) for name, pk in PAGES]
    urls.append(reverse("staff-list") + "?role=referring_provider&active=yes")
    for url in urls:
        body = admin.get(url).content.decode()
        inline = [tag for tag in re.findall(r"<script[^>]*>", body) if "src=" not in tag]
        assert inline == [], url
        assert " style=" not in body and "<style" not in body, url
    # On an account page: the referrer's patients, each with its unlink button.
    body = admin.get(reverse("staff-detail", args=[referrer.pk])).content.decode()
    assert patient.record_number in body
    assert reverse("staff-unlink", args=[referrer.pk, patient.pk]) in body


# -- confirmation, lockouts, two admins at once --------------------------------------------------

@pytest.mark.parametrize("name,words", [
    ("staff-deactivate", ["will no longer be able to log in", "You can reactivate"]),
    ("staff-two-factor-reset", ["loses their authenticator", "At their next login"]),
])
def test_deactivate_and_two_factor_reset_ask_first_naming_the_account(admin, clinician, name,
                                                                      words):
    TOTPDevice.objects.create(user=clinician, name="authenticator", confirmed=True)
    page = admin.get(reverse(name, args=[clinician.pk]))
    body = page.content.decode()
    assert clinician.signature in body and clinician.username in body
    assert all(word in body for word in words) and 'method="post"' in body
    clinician.refresh_from_db()
    assert clinician.is_active and not AuditEvent.objects.exclude(action=Action.LOGIN).exists()
    detail = admin.get(reverse("staff-detail", args=[clinician.pk])).content.decode()
    assert f'href="{reverse(name, args=[clinician.pk])}"' in detail  # a link, not the change


def test_unlink_asks_first_naming_the_account_and_the_patient(admin, referrer, patient):
    admin.post(reverse("staff-link", args=[referrer.pk]), {"record_number": patient.record_number})
    url = reverse("staff-unlink", args=[referrer.pk, patient.pk])
    body = admin.get(url).content.decode()
    assert referrer.signature in body and str(patient) in body
    assert "will no longer read the course reports" in body
    patient.refresh_from_db()
    assert patient.referring_provider == referrer
    admin.post(url)
    patient.refresh_from_db()
    assert patient.referring_provider is None


def test_the_confirmation_says_when_the_change_is_refused(admin, clinic_admin, referrer,
                                                          patient):
    body = admin.get(reverse("staff-deactivate", args=[clinic_admin.pk])).content.decode()
    assert "your own account" in body and "Deactivate the account" not in body
    body = admin.get(reverse("staff-unlink", args=[referrer.pk, patient.pk])).content.decode()
    assert "is not linked to" in body and "Unlink the patient" not in body


def lock_out(username: str, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post(reverse("login"), {"username": username, "password": "wrong-password"})


def test_a_new_password_clears_the_lockout(admin, clinician, settings):
    lock_out(clinician.username, settings)
    assert not can_log_in(clinician.username, PASSWORD)  # locked out, right password or not
    admin.post(reverse("staff-password", args=[clinician.pk]),
               {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert can_log_in(clinician.username, NEW_PASSWORD)
    [event] = audit(Action.PASSWORD_RESET)
    assert event.summary.endswith("; failed logins (and any lockout) from 1 address cleared")


def test_reactivating_clears_the_lockout(admin, clinician, settings):
    admin.post(reverse("staff-deactivate", args=[clinician.pk]))
    lock_out(clinician.username, settings)
    admin.post(reverse("staff-reactivate", args=[clinician.pk]))
    assert can_log_in(clinician.username, PASSWORD)
    [event] = audit(Action.REACTIVATE)
    assert event.summary == "reactivated; failed logins (and any lockout) from 1 address cleared"


def test_a_second_admins_edit_over_the_first_is_refused_keeping_the_typing(
        as_user, clinic_admin, clinician):
    other_admin = UserFactory(role=Role.CLINIC_ADMIN)
    first = as_user(clinic_admin)
    url = reverse("staff-edit", args=[clinician.pk])
    version = first.get(url).context["form"]["version"].value()
    second = Client()
    from tests.conftest import verified_login

    verified_login(second, other_admin)
    second.post(url, {"first_name": "Ada", "last_name": "Second", "email": "",
                      "credentials": "", "version": version})
    response = first.post(url, {"first_name": "Ada", "last_name": "First", "email": "",
                                "credentials": "NP", "version": version})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "Another clinic admin changed" in errors and "Last name: Second" in errors
    assert response.context["form"]["last_name"].value() == "First"  # the typing is kept
    clinician.refresh_from_db()
    assert (clinician.last_name, clinician.credentials) == ("Second", "")
    # Saving again, now over the version on record, goes through.
    again = first.post(url, {"first_name": "Ada", "last_name": "First", "email": "",
                             "credentials": "NP",
                             "version": response.context["form"]["version"].value()})
    assert again.status_code == 302
    clinician.refresh_from_db()
    assert (clinician.last_name, clinician.credentials) == ("First", "NP")


def test_a_role_change_over_a_newer_account_is_refused(as_user, clinic_admin, clinician):
    url = reverse("staff-role", args=[clinician.pk])
    client = as_user(clinic_admin)
    version = client.get(url).context["form"]["version"].value()
    client.post(reverse("staff-edit", args=[clinician.pk]), {
        "first_name": "X", "last_name": "Y", "email": "", "credentials": "",
        "version": version})
    response = client.post(url, {"role": "clinic_admin", "version": version})
    assert response.status_code == 200
    assert "Another clinic admin changed" in " ".join(response.context["form"].non_field_errors())
    clinician.refresh_from_db()
    assert clinician.role == Role.CLINICIAN
