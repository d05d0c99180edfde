"""Headers, deployment checks, login throttling, automatic logoff, sessions ended on password
change (HIPAA 164.312, OWASP ASVS L2)."""

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.idle import RENEWED
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


def _expires_in(client) -> float:
    """Seconds until the stored session expires, as the database holds it."""
    stored = Session.objects.get(pk=client.session.session_key)
    return (stored.expire_date - timezone.now()).total_seconds()


def _idle_seconds(body: str) -> int:
    return int(re.search(r'data-idle-seconds="(\d+)"', body).group(1))


def test_the_session_is_an_idle_timeout(settings, client, clinician):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    verified_login(client, clinician)
    assert client.get(reverse("keepalive")).status_code == 204
    assert 29 * 60 < _expires_in(client) <= 30 * 60
    body = client.get(reverse("patients:list")).content.decode()
    assert 29 * 60 < _idle_seconds(body) <= 30 * 60 and 'id="idle-warning"' in body


def test_the_idle_timeout_is_renewed_at_most_once_a_minute(client, clinician):
    verified_login(client, clinician)
    client.get(reverse("patients:list"))
    expires = Session.objects.get(pk=client.session.session_key).expire_date
    client.get(reverse("patients:list"))  # within the minute: no write
    assert Session.objects.get(pk=client.session.session_key).expire_date == expires

    # Ten minutes on (as the session records it), the next page renews the expiry, and the
    # page's own timer is told the whole timeout again.
    session = client.session
    session[RENEWED] -= 600
    session.save()
    Session.objects.filter(pk=session.session_key).update(
        expire_date=timezone.now() + timedelta(minutes=20)
    )
    body = client.get(reverse("patients:list")).content.decode()
    assert 29 * 60 < _expires_in(client) <= 30 * 60
    assert 29 * 60 < _idle_seconds(body) <= 30 * 60


def test_a_session_saved_for_another_reason_is_not_renewed(client, clinician):
    # The page's timer and the server must agree on the end: it is the last renewal plus the
    # timeout, whatever else is saved in the session meanwhile.
    verified_login(client, clinician)
    session = client.session
    session[RENEWED] -= 300
    session["something else"] = 1
    session.save()
    assert 24 * 60 < _expires_in(client) <= 25 * 60


def test_a_page_tells_its_timer_the_time_actually_left(client, clinician):
    verified_login(client, clinician)
    client.get(reverse("patients:list"))
    session = client.session
    session[RENEWED] -= 45  # renewed 45 s ago: the next page does not renew
    session.save()
    body = client.get(reverse("patients:list")).content.decode()
    assert 30 * 60 - 47 <= _idle_seconds(body) <= 30 * 60 - 45


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
