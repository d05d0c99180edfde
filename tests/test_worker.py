"""Exports on a real Celery worker, on the machine's Redis and PostgreSQL, end to end.

The worker is another process, so it needs the test database committed (transactional tests)
and on a server (PostgreSQL, not in-memory SQLite). CI (.ci/run) provides both; elsewhere the
tests are skipped when either is missing, and in CI they fail instead.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from courses.evaluation import refresh_evaluation
from exports import files, tasks
from exports.models import Export, ExportState
from ketacare.celery import app
from tests.factories import AssessmentFactory, CourseFactory, SessionFactory, at

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("KETACARE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run provides it")
    pytest.skip(reason)


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Worker:
    """``celery worker`` in its own process group, logging to a file."""

    def __init__(self, env: dict, log):
        self.env, self.log, self.process = env, log, None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ketacare", "worker", "--pool=solo",
             "--without-mingle", "--without-gossip", "--loglevel=INFO",
             "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self, sig=signal.SIGKILL):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


def fresh_connections():
    """Even eager calls open the app's connection and producer pools on the broker configured
    then; drop both so the next task goes to the broker configured now. (``app.close()`` skips
    a pool that has no connection checked out.)"""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def worker(settings, tmp_path):
    if connection.vendor != "postgresql":
        unavailable("a real worker needs the test database on PostgreSQL")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL} ({error})")
    db = connection.settings_dict
    settings.EXPORT_ROOT = tmp_path / "exports"
    env = {
        **os.environ, "DEBUG": "1", "CELERY_BROKER_URL": REDIS_URL,
        "EXPORT_ROOT": str(settings.EXPORT_ROOT),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
                        f"{db['PORT'] or 5432}/{db['NAME']}",
    }
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, REDIS_URL
    fresh_connections()
    with open(tmp_path / "worker.log", "w+") as log:
        handle = Worker(env, log)
        handle.start()
        try:
            yield handle
        finally:
            handle.kill()
            app.conf.task_always_eager, app.conf.broker_url = saved
            fresh_connections()
            log.seek(0)
            print(log.read())  # shown by pytest when the test fails


def courses(count: int):
    for _ in range(count):
        course = CourseFactory()
        AssessmentFactory(course=course)
        SessionFactory(course=course)
        AssessmentFactory(course=course, items=[1] * 9 + [3],  # 36 to 12: response
                          administered_at=at(course.started_on + timedelta(days=3), 12))
        refresh_evaluation(course)


def status(client, export_id) -> dict:
    return client.get(reverse("exports:status", args=[export_id])).json()


def test_a_real_worker_builds_an_export_the_admin_downloads(worker, as_user, clinic_admin):
    courses(12)
    client = as_user(clinic_admin)
    response = client.post(reverse("exports:list"), {"statuses": ["response"]})
    export = Export.objects.get()
    assert response["Location"] == reverse("exports:detail", args=[export.pk])

    final = wait_for(lambda: (s := status(client, export.pk))["finished"] and s, 60,
                     "the worker to finish the export")
    assert final["state"] == "done" and final["done"] == final["total"] == 12
    download = client.get(final["download_url"])
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0].startswith("record_number,course_id,") and len(lines) == 13
    assert all(",response," in line for line in lines[1:])


def test_a_worker_killed_mid_export_leaves_nothing_offered(worker, as_user, clinic_admin,
                                                           settings):
    courses(30)
    client = as_user(clinic_admin)
    client.post(reverse("exports:list"), {"include_pdfs": "on"})
    export = Export.objects.get()
    # Kill it outright once it is writing PDFs: past the 30 CSV rows, before the 60th item.
    wait_for(lambda: Export.objects.filter(pk=export.pk, done__gt=30).exists(), 90,
             "the worker to start on the PDFs")
    worker.kill()
    export.refresh_from_db()
    assert export.state == ExportState.RUNNING and export.done < export.total
    assert not files.exists(export) and not export.is_ready
    assert status(client, export.pk)["download_url"] is None
    assert client.get(reverse("exports:download", args=[export.pk])).status_code == 404

    # No sign of life since: the sweep gives up on it and clears what the worker left.
    settings.EXPORT_STALE_MINUTES = 0
    assert tasks.sweep_exports() == {"expired": 0, "stalled": 1}
    export.refresh_from_db()
    assert export.state == ExportState.FAILED and "Run it again" in export.error
    assert not settings.EXPORT_ROOT.exists() or list(settings.EXPORT_ROOT.iterdir()) == []

    # Run it again, on a new worker: this time it completes.
    worker.start()
    again = client.post(reverse("exports:again", args=[export.pk]))
    rerun = Export.objects.exclude(pk=export.pk).get()
    assert again["Location"] == reverse("exports:detail", args=[rerun.pk])
    final = wait_for(lambda: (s := status(client, rerun.pk))["finished"] and s, 120,
                     "the second worker to finish")
    assert final["state"] == "done" and final["total"] == 60
    assert client.get(final["download_url"]).status_code == 200
