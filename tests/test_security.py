"""Headers, deployment checks, login throttling, automatic logoff, sessions ended on password
change (HIPAA 164.312, OWASP ASVS L2)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import Action, AuditEvent
from tests.conftest import verified_login
from tests.factories import PASSWORD, CourseFactory

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_check_deploy_passes_with_no_warning_under_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="clinic.example")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_pages_carry_a_csp_without_inline_script_and_have_none(as_user, clinician):
    course = CourseFactory()
    client = as_user(clinician)
    for url in [reverse("patients:list"), reverse("courses:detail", args=[course.pk]),
                reverse("courses:session-new", args=[course.pk]),
                reverse("assessments:new", args=[course.pk, "madrs"])]:
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        body = response.content.decode()
        inline = [tag for tag in re.findall(r"<script[^>]*>", body)
                  if "src=" not in tag and 'type="application/json"' not in tag]
        assert inline == [], url
        assert " style=" not in body and "<style" not in body, url
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"


def test_repeated_failed_logins_lock_out_and_are_audited(client, clinician):
    url = reverse("login")
    for _ in range(5):
        client.post(url, {"username": clinician.username, "password": "not-the-password"})
    locked = client.post(url, {"username": clinician.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action=Action.LOGIN_FAILED, summary=f"locked out: {clinician.username}"
    ).exists()


def test_the_session_is_an_idle_timeout(settings, client, clinician):
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    verified_login(client, clinician)
    assert client.get(reverse("keepalive")).status_code == 204
    assert 29 * 60 < client.session.get_expiry_age() <= 30 * 60
    body = client.get(reverse("patients:list")).content.decode()
    assert 'data-idle-seconds="1800"' in body and 'id="idle-warning"' in body


def test_keepalive_needs_a_login(client):
    assert client.get(reverse("keepalive")).status_code == 302


def test_changing_the_password_ends_the_other_sessions(clinician):
    here, elsewhere = Client(), Client()
    device = TOTPDevice.objects.create(user=clinician, confirmed=True)
    for client in (here, elsewhere):
        assert client.post(reverse("login"), {"username": clinician.username,
                                              "password": PASSWORD}).status_code == 302
        device.refresh_from_db()
        device.last_t = -1  # the same 30-second code may be used by each browser in this test
        device.save()
        client.post(reverse("two-factor"), {"token": f"{totp(device.bin_key):06d}"})
    new = "amber-orchard-telescope-77"
    here.post(reverse("password_change"),
              {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert here.get(reverse("patients:list")).status_code == 200
    assert elsewhere.get(reverse("patients:list")).status_code == 302
