"""/healthz, /readyz and /metrics: what a load balancer and the operator ask of each node."""

import re
from unittest import mock
from urllib.parse import quote

import pytest
from django.db import OperationalError
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from exports.tasks import sweep_exports
from ketacare import metrics, ops
from tests.factories import CourseFactory, PatientFactory, UserFactory
from tests.test_fuzz import FUZZ, QUERY

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/metrics", headers=headers)


@pytest.fixture
def production(settings):
    """As served: DEBUG off, HTTPS redirect on, only the clinic's host name allowed."""
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["clinic.example"]


def test_healthz_answers_without_the_database(client, production, django_assert_num_queries):
    # Plain HTTP, by address, no session: as a load balancer probes a node.
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200 and response.content == b"ok\n"
    assert response["Cache-Control"] == "no-store"
    with mock.patch.object(ops, "database_ready", side_effect=OperationalError("down")):
        assert client.get("/healthz").status_code == 200


def test_readyz_says_ready_when_database_broker_and_storage_answer(client, production):
    response = client.get("/readyz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200 and response.content == b"ready\n"


@pytest.mark.parametrize("part", ["database", "broker", "storage"])
def test_readyz_is_503_with_no_details_when_a_part_is_down(client, settings, tmp_path, part,
                                                           caplog):
    if part == "database":
        ops.CHECKS["database"] = mock.Mock(side_effect=OperationalError("password for x@db"))
    elif part == "broker":
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        settings.EXPORT_ROOT = blocker / "exports"  # cannot be a folder
    try:
        response = client.get("/readyz")
    finally:
        ops.CHECKS["database"] = ops.database_ready
    assert response.status_code == 503 and response.content == b"not ready\n"
    # The operator learns which part, from the log, never the caller.
    assert f"not ready: {part}" in caplog.text and "password" not in caplog.text


def test_probes_skip_logins_two_factor_and_idle_logoff(client, clinician):
    # A clinician half logged in (password, no second factor yet) is sent to two-factor on
    # every page, but not from the probes, and the probes do not renew the session.
    client.force_login(clinician)
    assert client.get(reverse("patients:list"))["Location"].startswith("/accounts/2fa/")
    session_before = client.session.get("_idle_renewed")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.session.get("_idle_renewed") == session_before
    assert client.post("/healthz").status_code == 405


def test_metrics_do_not_exist_without_the_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert scrape(client).status_code == 404
    assert scrape(client, token="").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert scrape(client, token="").status_code == 404
    assert scrape(client, token="wrong").status_code == 404
    assert scrape(client).status_code == 200


def test_metrics_time_each_view_by_name_and_carry_no_patient_data(as_user, clinician,
                                                                  settings):
    settings.METRICS_TOKEN = TOKEN
    patient = PatientFactory(record_number="MRN-METRICS-7", last_name="Quillfeather")
    client = as_user(clinician)
    for _ in range(3):
        assert client.get(reverse("patients:detail", args=[patient.pk])).status_code == 200
    client.get("/no/such/page/12345/")
    text = scrape(client).content.decode()

    count = re.search(
        r'^ketacare_request_duration_seconds_count\{method="GET",view="patients:detail"\} '
        r"(\d+)", text, re.M)
    assert count and int(float(count.group(1))) >= 3
    assert re.search(r'^ketacare_request_duration_seconds_bucket\{le="0.1",method="GET",'
                     r'view="patients:detail"\}', text, re.M)
    assert re.search(r'^ketacare_responses_total\{method="GET",status="200",'
                     r'view="patients:detail"\}', text, re.M)
    assert 'view="unresolved"' in text
    # Labels are view names: no URL, no id, no name, no record number.
    views = set(re.findall(r'view="([^"]*)"', text))
    assert "patients:detail" in views
    assert all(re.fullmatch(r"[a-z0-9_-]+(:[a-z0-9_-]+)?", view) for view in views), views
    # Every sample's name and labels (its value is a number, and a number may hold any digits:
    # a sum of seconds once held "12345").
    samples = "\n".join(line.rsplit(" ", 1)[0] for line in text.splitlines()
                         if line and not line.startswith("#"))
    for secret in ("MRN-METRICS-7", "Quillfeather", "/patients/", "12345"):
        assert secret not in samples
    assert "Quillfeather" not in text and "MRN-METRICS-7" not in text


def test_metrics_count_celery_tasks_and_failures(as_user, clinic_admin, settings,
                                                 django_capture_on_commit_callbacks, tmp_path):
    settings.METRICS_TOKEN = TOKEN
    settings.EXPORT_ROOT = tmp_path
    metrics.TASKS.local.clear()
    client = as_user(clinic_admin)
    CourseFactory()  # an export that matches no course is refused before any task
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("exports:list"), {})
    # A task that raises, as on a worker (eager calls re-raise before Celery counts a failure).
    with mock.patch("exports.tasks.sweep_exports.run", side_effect=RuntimeError("boom")):
        assert sweep_exports.apply(throw=False).failed()
    text = scrape(client).content.decode()
    assert ('ketacare_celery_tasks_total{outcome="succeeded",task="exports.tasks.build_export"}'
            " 1.0") in text
    assert ('ketacare_celery_tasks_total{outcome="failed",task="exports.tasks.sweep_exports"}'
            " 1.0") in text


def test_the_metrics_path_is_not_a_page_of_the_app(as_user, settings):
    # Not in the URL configuration: only the middleware answers it, before any login.
    settings.METRICS_TOKEN = TOKEN
    admin = UserFactory(role="clinic_admin")
    response = scrape(as_user(admin), token="nope")
    assert response.status_code == 404 and b"metrics" not in response.content


def test_behind_the_proxy_lockouts_use_the_address_the_proxy_saw(rf, settings):
    from ketacare.proxy import client_ip

    request = rf.get("/", REMOTE_ADDR="172.18.0.5",
                     HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")  # forged, then what nginx saw
    settings.AXES_IPWARE_PROXY_COUNT = 0
    assert client_ip(request) == "172.18.0.5"
    settings.AXES_IPWARE_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"
    assert client_ip(rf.get("/", REMOTE_ADDR="172.18.0.5")) == "172.18.0.5"


@FUZZ
@given(path=st.sampled_from(["/healthz", "/readyz", "/metrics"]),
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE"]),
       query=QUERY, authorization=QUERY)
def test_the_probes_answer_hostile_requests_without_failing(client, settings, path, method,
                                                          query, authorization):
    settings.METRICS_TOKEN = TOKEN
    response = client.generic(method, f"{path}?q={quote(query)}",
                              headers={"Authorization": f"Bearer {authorization}"})
    assert response.status_code in (200, 404, 405)
    assert (response.status_code == 405) == (method not in ("GET", "HEAD"))
    assert response["Cache-Control"] == "no-store"


def test_gunicorn_starts_each_run_with_no_figures_from_the_last(tmp_path, monkeypatch):
    import runpy

    from django.conf import settings as django_settings

    hooks = runpy.run_path(str(django_settings.BASE_DIR / "gunicorn.conf.py"))
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "histogram_123.db").write_bytes(b"old figures")
    (folder / "notes.txt").write_text("not prometheus_client's: kept")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    hooks["on_starting"](None)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
