"""KetaCare on several nodes that share no filesystem: two web nodes (gunicorn, two workers
each) and a Celery worker, each in a temporary folder of its own, sharing only PostgreSQL,
Redis and an S3-compatible store (moto's server on loopback, tests/objectstore.py).

An admin starts an export on node A and downloads it from node B; a worker killed mid-export
leaves nothing offered on either node. Needs PostgreSQL and Redis, like tests/test_worker.py:
skipped when either is missing, failed instead in CI.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from exports import tasks
from exports.models import Export, ExportState
from tests.conftest import verified_login
from tests.test_worker import REDIS_URL, courses, unavailable, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PORTS = (8150, 8151)  # this project's test ports for web nodes
TOKEN = "nodes-test-metrics-token-0123456789"
REPO = Path(django_settings.BASE_DIR)


class Node:
    """One process of the cluster, in its own folder and process group, logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict, folder: Path):
        self.name, self.command, self.env, self.folder = name, command, env, folder
        self.process = None
        self.log_path = folder / "process.log"

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.folder, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def database_url() -> str:
    db = connection.settings_dict
    return (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class Cluster:
    def __init__(self, root: Path, store):
        self.root, self.store = root, store
        base = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("EXPORT_", "DATABASE_", "CELERY_", "PROMETHEUS_"))
        }
        self.env = {
            **base, **store.env(), "DEBUG": "1", "PYTHONPATH": str(REPO),
            "DATABASE_URL": database_url(), "CELERY_BROKER_URL": REDIS_URL,
            "METRICS_TOKEN": TOKEN, "DJANGO_SETTINGS_MODULE": "ketacare.settings",
        }
        self.web = [self._web(name, port) for name, port in zip("ab", PORTS, strict=True)]
        self.worker = self._worker()

    def _folder_env(self, name: str) -> tuple[Path, dict]:
        folder = self.root / name
        # Each node's own EXPORT_ROOT, which must stay empty: the exports live in the store.
        return folder, {**self.env, "EXPORT_ROOT": str(folder / "exports"),
                        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}

    def _web(self, name: str, port: int) -> Node:
        folder, env = self._folder_env(f"web-{name}")
        return Node(f"web-{name}", [
            sys.executable, "-m", "gunicorn", "ketacare.wsgi:application",
            "-c", str(REPO / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--timeout", "120",
        ], env, folder)

    def _worker(self) -> Node:
        folder, env = self._folder_env("worker")
        return Node("worker", [
            sys.executable, "-m", "celery", "-A", "ketacare", "worker", "--pool=solo",
            "--without-mingle", "--without-gossip", "--loglevel=INFO",
            "-n", f"nodes-{uuid.uuid4().hex[:8]}@%h",
        ], env, folder)

    def nodes(self) -> list[Node]:
        return [*self.web, self.worker]

    def url(self, node: int, path: str) -> str:
        return f"http://127.0.0.1:{PORTS[node]}{path}"

    def local_files(self) -> list[str]:
        return [str(p.relative_to(self.root)) for n in self.nodes()
                for p in (n.folder / "exports").rglob("*")]


@pytest.fixture
def cluster(s3_exports, tmp_path):
    if connection.vendor != "postgresql":
        unavailable("the nodes need the test database on PostgreSQL")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL} ({error})")
    busy = [port for port in PORTS if not port_free(port)]
    if busy:
        pytest.fail(f"ports {busy} are taken: the web nodes need them")

    nodes = Cluster(tmp_path, s3_exports)
    try:
        for node in nodes.nodes():
            node.start()
        for index in range(len(PORTS)):
            wait_for(lambda i=index: ready(nodes, i), 120, f"web node {'ab'[index]} to be ready")
        yield nodes
    finally:
        for node in nodes.nodes():
            node.stop()
        for node in nodes.nodes():
            print(f"===== {node.name}\n{node.log()}")  # shown by pytest when the test fails


def ready(nodes: Cluster, index: int) -> bool:
    try:
        return requests.get(nodes.url(index, "/readyz"), timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or still loading the app
        return False


def browser(nodes: Cluster, user) -> requests.Session:
    """An HTTP client holding a logged-in, two-factor-verified session of ``user``: a row of
    the shared database, so it is good on every node."""
    client = Client()
    verified_login(client, user)
    session = requests.Session()
    session.cookies.set(django_settings.SESSION_COOKIE_NAME,
                        client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    return session


def start_export(nodes: Cluster, session: requests.Session, node: int, data: dict) -> Export:
    form = session.get(nodes.url(node, "/exports/"), timeout=30)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    response = session.post(nodes.url(node, "/exports/"), timeout=30, allow_redirects=False,
                            data={"csrfmiddlewaretoken": token, **data})
    assert response.status_code == 302, response.text[:500]
    export = Export.objects.get(pk=response.headers["Location"].split("/")[2])
    return export


def status(nodes, session, node: int, export_pk) -> dict:
    response = session.get(nodes.url(node, f"/exports/{export_pk}/status/"), timeout=30)
    assert response.status_code == 200
    return response.json()


def finished(nodes, session, node: int, export_pk, seconds: float) -> dict:
    return wait_for(lambda: (s := status(nodes, session, node, export_pk))["finished"] and s,
                    seconds, "the worker to finish the export")


def test_an_export_started_on_node_a_is_downloaded_from_node_b(cluster, clinic_admin):
    courses(12)
    admin = browser(cluster, clinic_admin)
    export = start_export(cluster, admin, 0, {"statuses": ["response"]})

    final = finished(cluster, admin, 1, export.pk, 90)
    assert final["state"] == "done" and final["done"] == final["total"] == 12
    download = admin.get(cluster.url(1, final["download_url"]), timeout=60)
    assert download.status_code == 200
    assert download.headers["Cache-Control"].startswith("no-store")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    lines = download.content.decode().splitlines()
    assert lines[0].startswith("record_number,course_id,") and len(lines) == 13
    assert all(",response," in line for line in lines[1:])
    # The file is in the store, and in no node's folder.
    assert cluster.store.keys() == [f"exports/{export.pk}.csv"]
    assert cluster.local_files() == []
    # Anyone else reaches it through neither node.
    anonymous = requests.get(cluster.url(0, final["download_url"]), timeout=30,
                             allow_redirects=False)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.headers["Location"]

    # The worker's task outcome is counted where both nodes read it; each node counts its own
    # requests over its two gunicorn workers.
    metrics = requests.get(cluster.url(0, "/metrics"), timeout=30,
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics.status_code == 200
    assert ('ketacare_celery_tasks_total{outcome="succeeded",task="exports.tasks.build_export"}'
            " 1.0") in metrics.text
    assert 'view="exports:list"' in metrics.text and 'view="exports:status"' not in metrics.text
    on_b = requests.get(cluster.url(1, "/metrics"), timeout=30,
                        headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'view="exports:status"' in on_b and 'view="exports:download"' in on_b


def test_a_worker_killed_mid_export_leaves_nothing_offered_on_any_node(cluster, clinic_admin,
                                                                       settings):
    courses(30)
    admin = browser(cluster, clinic_admin)
    export = start_export(cluster, admin, 0, {"include_pdfs": "on"})
    # Kill it outright once it is writing PDFs: past the 30 CSV rows, before the 60th item.
    wait_for(lambda: Export.objects.filter(pk=export.pk, done__gt=30).exists(), 120,
             "the worker to start on the PDFs")
    cluster.worker.stop(signal.SIGKILL)
    export.refresh_from_db()
    assert export.state == ExportState.RUNNING and export.done < export.total

    for node in (0, 1):
        assert status(cluster, admin, node, export.pk)["download_url"] is None
        assert admin.get(cluster.url(node, f"/exports/{export.pk}/download/"),
                         timeout=30).status_code == 404
    assert cluster.store.keys() == [] and cluster.local_files() == []

    # No sign of life since: the sweep gives up on it.
    settings.EXPORT_STALE_MINUTES = 0
    assert tasks.sweep_exports() == {"expired": 0, "stalled": 1}
    page = admin.get(cluster.url(1, f"/exports/{export.pk}/"), timeout=30).text
    assert "Run it again" in page

    # Run it again from node B, on a new worker; node A offers the file.
    cluster.worker.start()
    form = admin.get(cluster.url(1, f"/exports/{export.pk}/"), timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    again = admin.post(cluster.url(1, f"/exports/{export.pk}/again/"), timeout=30,
                       data={"csrfmiddlewaretoken": token}, allow_redirects=False)
    assert again.status_code == 302
    rerun = Export.objects.exclude(pk=export.pk).get()
    final = finished(cluster, admin, 0, rerun.pk, 180)
    assert final["state"] == "done" and final["total"] == 60
    download = admin.get(cluster.url(0, final["download_url"]), timeout=60)
    assert download.status_code == 200 and download.content.startswith(b"PK")
    assert cluster.store.keys() == [f"exports/{rerun.pk}.zip"]
