"""Login, logout and password change, each audited."""

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout_are_audited(client, clinician):
    response = client.post(reverse("login"), {"username": clinician.username, "password": PASSWORD})
    assert response.status_code == 302
    client.post(reverse("logout"))
    actions = list(AuditEvent.objects.filter(actor=clinician).values_list("action", flat=True))
    assert actions == [Action.LOGIN, Action.LOGOUT]


def test_password_change_needs_12_characters_and_is_audited(as_user, clinician):
    client = as_user(clinician)
    url = reverse("password_change")
    short = client.post(url, {"old_password": PASSWORD, "new_password1": "Short1!x",
                              "new_password2": "Short1!x"})
    assert "at least 12 characters" in str(short.context["form"].errors["new_password2"])
    common = client.post(url, {"old_password": PASSWORD, "new_password1": "password1234",
                               "new_password2": "password1234"})
    assert "too common" in str(common.context["form"].errors["new_password2"])
    new = "violet-harbour-lantern-42"
    ok = client.post(url, {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert ok.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password(new)
    assert AuditEvent.objects.filter(action=Action.PASSWORD_CHANGE, actor=clinician).exists()


def test_the_first_account_made_with_createsuperuser_is_a_clinic_admin(db, monkeypatch):
    from django.core.management import call_command

    from accounts.models import Role, User

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-first-admin-passphrase")
    call_command("createsuperuser", "--noinput", username="first-admin",
                 email="admin@clinic.invalid")
    assert User.objects.get(username="first-admin").role == Role.CLINIC_ADMIN
