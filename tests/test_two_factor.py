"""Two-factor authentication: required for clinicians and admins, enrolment, the demo key."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.twofactor import DEMO_DEVICE
from audit.models import Action, AuditEvent
from demo.clinic import DEMO_TOTP_KEY
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def password_login(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return response


def code(device) -> str:
    return f"{totp(device.bin_key):06d}"


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMIN])
def test_the_password_alone_opens_nothing_for_staff(client, role):
    user = UserFactory(role=role)
    TOTPDevice.objects.create(user=user, confirmed=True)
    password_login(client, user)
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("two-factor"))


def test_referring_providers_are_not_asked_for_a_second_factor(client, referrer):
    password_login(client, referrer)
    assert client.get(reverse("reports:list")).status_code == 200


def test_referring_providers_cannot_enrol_an_authenticator(client, referrer):
    # They are never asked for a code, so one would protect nothing: the pages are not theirs.
    password_login(client, referrer)
    for name in ("two-factor-setup", "two-factor"):
        assert client.get(reverse(name)).status_code == 404
        assert client.post(reverse(name), {"start": "1", "token": "123456"}).status_code == 404
    assert not TOTPDevice.objects.exists()


def test_a_code_before_the_set_up_started_is_refused(client, clinician):
    password_login(client, clinician)
    response = client.post(reverse("two-factor-setup"), {"token": "123456"})
    assert response.status_code == 200 and "Start the set-up first" in response.content.decode()
    assert not TOTPDevice.objects.exists()


def test_enrolment_shows_a_qr_code_and_confirms_with_a_code(client, clinician):
    password_login(client, clinician)
    response = client.get(reverse("patients:list"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two-factor-setup"))
    assert "Show my QR code" in response.content.decode()
    assert not TOTPDevice.objects.exists()  # a GET creates nothing
    setup = response.redirect_chain[-1][0]
    response = client.post(setup, {"start": "1", "next": "/patients/"}, follow=True)
    body = response.content.decode()
    assert "<svg" in body and 'id="totp-secret"' in body
    device = TOTPDevice.objects.get(user=clinician, confirmed=False)
    client.post(setup, {"start": "1"})  # sent twice: still one authenticator, the same key
    assert TOTPDevice.objects.get(user=clinician).key == device.key
    wrong = client.post(reverse("two-factor-setup"), {"token": "000000"})
    assert "does not match" in wrong.content.decode() or code(device) == "000000"
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # a wrong code slows the next try down
    device.throttle_reset()
    client.post(reverse("two-factor-setup"), {"token": code(device), "next": "/patients/"})
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("patients:list")).status_code == 200
    assert AuditEvent.objects.filter(summary="authenticator enrolled", actor=clinician).exists()


def test_a_wrong_code_is_refused_and_audited(client, clinician):
    device = TOTPDevice.objects.create(user=clinician, confirmed=True)
    password_login(client, clinician)
    bad = "111111" if code(device) != "111111" else "222222"
    response = client.post(reverse("two-factor"), {"token": bad})
    assert "not right" in response.content.decode()
    assert client.get(reverse("patients:list")).status_code == 302
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED,
                                     summary="wrong second factor").exists()


@pytest.mark.parametrize("token", ["12345", "abcdef", "1234567", ""])
def test_a_malformed_code_is_a_form_error(client, clinician, token):
    TOTPDevice.objects.create(user=clinician, confirmed=True)
    password_login(client, clinician)
    response = client.post(reverse("two-factor"), {"token": token})
    assert response.status_code == 200 and response.context["form"].errors["token"]


def test_the_right_code_opens_the_app_and_only_redirects_inside_it(client, clinician):
    device = TOTPDevice.objects.create(user=clinician, confirmed=True)
    password_login(client, clinician)
    response = client.post(reverse("two-factor"),
                           {"token": code(device), "next": "https://evil.example/"})
    assert response.url == reverse("home")
    assert client.get(reverse("patients:list")).status_code == 200


def demo_device(user):
    return TOTPDevice.objects.create(user=user, name=DEMO_DEVICE, key=DEMO_TOTP_KEY,
                                     confirmed=True)


def test_the_demo_key_works_only_with_debug_on(client, clinician, settings):
    device = demo_device(clinician)
    settings.DEBUG = False
    password_login(client, clinician)
    # With DEBUG off the demo device does not count: the user is sent to enrol a real one.
    assert client.get(reverse("two-factor")).url.startswith(reverse("two-factor-setup"))
    settings.DEBUG = True
    client.post(reverse("two-factor"), {"token": code(device)})
    assert client.get(reverse("patients:list")).status_code == 200


def test_demo_code_prints_the_code_only_with_debug(settings, capsys):
    settings.DEBUG = True
    call_command("demo_code")
    assert capsys.readouterr().out.strip() == f"{totp(bytes.fromhex(DEMO_TOTP_KEY)):06d}"
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_code")


def test_the_page_asked_for_survives_the_second_factor_with_its_query(client, clinician):
    device = TOTPDevice.objects.create(user=clinician, confirmed=True)
    password_login(client, clinician)
    asked = "/patients/?q=a&page=2"
    response = client.get(asked)
    assert response.status_code == 302
    page = client.get(response.url)
    assert page.context["next"] == asked  # the query string was not cut at the "&"
    response = client.post(response.url, {"token": code(device), "next": page.context["next"]})
    assert response.url == asked
