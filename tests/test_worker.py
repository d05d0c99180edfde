"""Exports on a real Celery worker (prefork, as in compose), on PostgreSQL and on a Redis
server of the test's own, end to end, including a Redis and a PostgreSQL restart.

The worker is another process, so it needs the test database committed (transactional tests)
and on a server (PostgreSQL, not in-memory SQLite). Each test starts its own ``redis-server``
on a free loopback port, so restarting it disturbs nobody. CI (.ci/run) provides PostgreSQL
and ``redis-server``; elsewhere the tests are skipped when either is missing, and in CI they
fail instead.
"""

import os
import shutil
import signal
import socket
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

# The machine's Redis, for tests/test_nodes.py; the tests here start a Redis of their own.
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A ``redis-server`` of this test's own on a free loopback port, with append-only
    persistence as in compose, that the test may restart."""

    def __init__(self, folder):
        self.folder, self.port, self.process = folder, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: self._answers(client), 10, "redis-server to start")

    @staticmethod
    def _answers(client) -> bool:
        import redis

        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self, down_seconds: float = 1.0):
        self.stop()
        time.sleep(down_seconds)
        self.start()


class Worker:
    """``celery worker`` with the prefork pool, as compose runs it, in its own process
    group, logging to a file."""

    def __init__(self, env: dict, log):
        self.env, self.log, self.process = env, log, None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ketacare", "worker", "--pool=prefork",
             "--concurrency=2", "--without-mingle", "--without-gossip", "--loglevel=INFO",
             "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


def fresh_connections():
    """Even eager calls open the app's connection and producer pools on the broker configured
    then; drop both so the next task goes to the broker configured now. (``app.close()`` skips
    a pool that has no connection checked out.)"""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(tmp_path):
    if not shutil.which("redis-server"):
        unavailable("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue(broker):
    """This process sends tasks to ``broker`` instead of running them inline."""
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, broker.url
    fresh_connections()
    try:
        yield broker
    finally:
        app.conf.task_always_eager, app.conf.broker_url = saved
        fresh_connections()


@pytest.fixture
def worker(settings, tmp_path, broker, queue):
    if connection.vendor != "postgresql":
        unavailable("a real worker needs the test database on PostgreSQL")
    db = connection.settings_dict
    settings.EXPORT_ROOT = tmp_path / "exports"
    env = {
        **os.environ, "DEBUG": "1", "CELERY_BROKER_URL": broker.url,
        "EXPORT_ROOT": str(settings.EXPORT_ROOT),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
                        f"{db['PORT'] or 5432}/{db['NAME']}",
    }
    with open(tmp_path / "worker.log", "w+") as log:
        handle = Worker(env, log)
        handle.start()
        try:
            yield handle
        finally:
            handle.kill()
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


def finished(client, export_id, seconds: float, what: str) -> dict:
    """The export's status once finished (done or failed)."""
    return wait_for(lambda: (s := status(client, export_id))["finished"] and s, seconds, what)


def zip_export_writing_pdfs(client, count: int) -> Export:
    """Ask for a ZIP of ``count`` courses' summaries and PDFs, and return once the worker is
    past the CSV rows and writing the PDFs."""
    courses(count)
    client.post(reverse("exports:list"), {"include_pdfs": "on"})
    export = Export.objects.get()
    wait_for(lambda: Export.objects.filter(pk=export.pk, done__gt=count).exists(), 90,
             "the worker to start on the PDFs")
    return export


def test_a_real_worker_builds_an_export_the_admin_downloads(worker, as_user, clinic_admin):
    courses(12)
    client = as_user(clinic_admin)
    response = client.post(reverse("exports:list"), {"statuses": ["response"]})
    export = Export.objects.get()
    assert response["Location"] == reverse("exports:detail", args=[export.pk])

    final = finished(client, export.pk, 60, "the worker to finish the export")
    assert final["state"] == "done" and final["done"] == final["total"] == 12
    download = client.get(final["download_url"])
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0].startswith("record_number,course_id,") and len(lines) == 13
    assert all(",response," in line for line in lines[1:])


def test_a_worker_killed_mid_export_leaves_nothing_offered(worker, as_user, clinic_admin,
                                                           settings):
    client = as_user(clinic_admin)
    # Kill it outright once it is writing PDFs: past the 30 CSV rows, before the 60th item.
    export = zip_export_writing_pdfs(client, 30)
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
    final = finished(client, rerun.pk, 120, "the second worker to finish")
    assert final["state"] == "done" and final["total"] == 60
    assert client.get(final["download_url"]).status_code == 200


def test_the_worker_survives_a_redis_restart_mid_export(worker, broker, as_user, clinic_admin):
    client = as_user(clinic_admin)
    export = zip_export_writing_pdfs(client, 20)
    broker.restart(down_seconds=2)

    final = finished(client, export.pk, 120, "the export to finish")
    assert final["state"] == "done"
    time.sleep(3)  # the worker exited just after the task, when it did
    assert worker.alive(), "the worker exited after the Redis restart"
    client.post(reverse("exports:list"), {"statuses": ["response"]})
    second = Export.objects.exclude(pk=export.pk).get()
    final = finished(client, second.pk, 60,
                     "the worker to build a second export after the restart")
    assert final["state"] == "done"


def test_an_export_asked_for_while_redis_is_down_fails_at_once_and_runs_again(
        queue, as_user, clinic_admin, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    courses(1)  # filters that match no course are refused before anything is queued
    queue.stop()
    client = as_user(clinic_admin)
    started = time.monotonic()
    response = client.post(reverse("exports:list"), {"statuses": ["response"]})
    took = time.monotonic() - started
    export = Export.objects.get()
    print(f"asking for an export with Redis down took {took:.1f} s")
    assert response.status_code == 302 and took < 8, took  # was a 500 after 19 s
    assert export.state == ExportState.FAILED and export.finished_at is not None
    assert export.error.startswith("The export could not be handed to the export worker")
    page = client.get(reverse("exports:detail", args=[export.pk])).content.decode()
    assert "could not be handed to the export worker" in page and "Run it again" in page

    queue.start()
    again = client.post(reverse("exports:again", args=[export.pk]))
    rerun = Export.objects.exclude(pk=export.pk).get()
    assert again["Location"] == reverse("exports:detail", args=[rerun.pk])
    assert rerun.state == ExportState.QUEUED
    import redis

    assert redis.Redis.from_url(queue.url).llen("celery") == 1  # handed over, waiting


def restart_postgresql():
    """Restart the machine's PostgreSQL cluster (fast shutdown: every connection is cut), and
    wait until it answers again; a few seconds of downtime."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart",
                    "-m", "fast"], check=True, capture_output=True, timeout=60)
    wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0,
             60, "PostgreSQL to answer again")


@pytest.fixture
def postgresql_restart():
    """Restarting the shared cluster disturbs everyone else's database: only in CI (where the
    suite runs alone) or when KETACARE_TEST_RESTART_POSTGRES=1 says it is fine."""
    if not (os.environ.get("CI") or os.environ.get("KETACARE_TEST_RESTART_POSTGRES")):
        pytest.skip("restarts the machine's PostgreSQL: set KETACARE_TEST_RESTART_POSTGRES=1")
    if not (shutil.which("pg_ctlcluster") and os.path.isdir("/etc/postgresql")):
        unavailable("pg_ctlcluster is needed to restart PostgreSQL")
    try:
        yield restart_postgresql
    finally:
        # Whatever happened, leave the service running, and this process on a live connection.
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode != 0:
            version = sorted(os.listdir("/etc/postgresql"))[0]
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                            "start"], timeout=60)
        connection.close()


def test_an_export_survives_a_postgresql_restart(worker, postgresql_restart, as_user,
                                                 clinic_admin):
    client = as_user(clinic_admin)
    export = zip_export_writing_pdfs(client, 20)
    postgresql_restart()
    connection.close()  # this process's connection was cut too

    # The worker's update fails on the dead connection; the build is retried on a new one.
    final = finished(client, export.pk, 120, "the export to finish after the restart")
    export.refresh_from_db()
    assert final["state"] == "done" and final["done"] == final["total"] == 40
    assert export.attempts == 2
    assert worker.alive()
