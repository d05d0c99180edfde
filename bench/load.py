"""The load run: a real gunicorn on loopback, and concurrent clients (threads speaking plain
HTTP with ``http.client``) reading pages and logging sessions for a fixed time.

Each client is a clinician with a session made in the database beforehand (second factor
given), as after a real login. The requests go to 127.0.0.1 only, carry
``X-Forwarded-Proto: https`` as behind the TLS proxy of a production deployment, and follow
the production rules: CSRF token and Origin on every POST, the form's one-time submission
token. A request counts as an error when it raises, or answers anything but 200 to a GET or
the redirect after saving to a session POST (a 200 there means the form refused it).
"""

import http.client
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import import_module
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from bench.generate import DESIGNATED_RECORD
from bench.measure import summary
from clinical.vocab import Route
from courses.models import Course, TreatmentSession
from patients.models import Patient

# What a client does next, and how often: a clinician's day of reading records, searching,
# looking at the day sheet, and logging sessions (form, save, the course page it leads to).
MIX = {"patient_list": 10, "patient_search": 5, "patient_page": 20, "course_page": 30,
       "day_sheet": 10, "log_session": 25}
# Each is a request of its own in the figures; a session logged is three, and a course page
# is followed by the chart it fetches (static/js/chart.js), as a browser does.
KINDS = [*(kind for kind in MIX if kind != "log_session"), "session_form", "session_post",
         "course_after_save", "course_chart"]
SEARCHES = ["ettl", "ow", "arr", "Ada", "lin", "BENCH-0001", "kel", "ing"]
METRICS_TOKEN = "bench-metrics-token"  # only for the bench's own gunicorn
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TOKEN_INPUT = re.compile(r'name="submission_token" value="([^"]*)"')
CHART_SRC = re.compile(r'data-chart-src="([^"]+)"')


def database_url(conn_max_age: int | None = None) -> str:
    """This database as a DATABASE_URL, optionally with persistent connections."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return url if conn_max_age is None else f"{url}?conn_max_age={int(conn_max_age)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_sessions(count: int) -> list[str]:
    """``count`` logged-in, second-factor-verified session keys for the bench clinicians."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    devices = list(TOTPDevice.objects.filter(user__role=Role.CLINICIAN, confirmed=True,
                                             user__username__startswith="bench-")
                   .select_related("user").order_by("user__username"))
    keys = []
    for i in range(count):
        device = devices[i % len(devices)]
        session = store()
        session[SESSION_KEY] = device.user._meta.pk.value_to_string(device.user)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = device.user.get_session_auth_hash()
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.create()
        keys.append(session.session_key)
    return keys


def drop_sessions(keys: list[str]) -> None:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        store(session_key=key).delete()


class Server:
    """gunicorn on 127.0.0.1 with the production WSGI app, against this database."""

    def __init__(self, workers: int, threads: int = 1, conn_max_age: int | None = None,
                 env: dict | None = None):
        self.port = free_port()
        # Open for the server's lifetime, closed and removed in stop().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", prefix="bench-gunicorn-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ketacare.settings",
            # DEBUG and SECRET_KEY come from this process's environment, as its settings
            # did (a test run has DEBUG off in settings but not in the environment).
            "DATABASE_URL": database_url(conn_max_age),
            "ALLOWED_HOSTS": "127.0.0.1",
            **(env or {}),
        }
        command = [sys.executable, "-m", "gunicorn", "ketacare.wsgi:application",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                   "--threads", str(threads), "--log-level", "warning", "--timeout", "60"]
        self.process = subprocess.Popen(
            command, cwd=Path(settings.BASE_DIR), env=env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.command = " ".join(command[1:]) + (
            f" (DATABASE_URL ?conn_max_age={conn_max_age})" if conn_max_age is not None else ""
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.tail()}")
            try:
                status, *_ = request(self.port, "GET", "/accounts/login/", {})
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s: {self.tail()}")

    def tail(self, lines: int = 60) -> str:
        self.log.flush()
        return "".join(Path(self.log.name).read_text().splitlines(True)[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def request(port: int, method: str, path: str, cookies: dict, body: dict | None = None):
    """One request on a new connection: (status, Location, set cookies, text)."""
    host = f"127.0.0.1:{port}"
    headers = {"Host": host, "X-Forwarded-Proto": "https", "Connection": "close"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    data = None
    if body is not None:
        data = urlencode(body)
        headers.update({"Content-Type": "application/x-www-form-urlencoded",
                        "Origin": f"https://{host}", "Referer": f"https://{host}{path}"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        set_cookies = {}
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                set_cookies[key.strip()] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location", ""), set_cookies, text
    finally:
        conn.close()


class Client(threading.Thread):
    def __init__(self, number: int, port: int, session_key: str, pools: dict, start: float,
                 deadline: float, think: tuple[float, float], seed: int):
        super().__init__(daemon=True)
        self.port, self.pools, self.deadline, self.think = port, pools, deadline, think
        self.measure_from = start  # earlier requests (monotonic) warm the server: not counted
        self.rng = random.Random(seed * 1000 + number)
        self.cookies = {settings.SESSION_COOKIE_NAME: session_key}
        self.records: list[tuple[str, float, str | None]] = []  # (kind, seconds, error)
        self.sessions_logged = 0

    def timed(self, kind: str, method: str, path: str, expect: int, body=None,
              measured: bool | None = None):
        """One request, recorded unless it ended in the warm-up (``measured`` decides
        instead when given: a session logged is recorded whole or not at all)."""
        started = time.perf_counter()
        error, text, location = None, "", ""
        try:
            status, location, cookies, text = request(self.port, method, path, self.cookies,
                                                      body)
            self.cookies.update(cookies)
            if status != expect:
                error = f"{kind}: {method} {path} answered {status}"
                if location:
                    error += f" → {location}"
        except (OSError, http.client.HTTPException) as problem:
            error = f"{kind}: {method} {path} raised {problem.__class__.__name__}: {problem}"
        if measured is None:
            measured = time.monotonic() >= self.measure_from
        if measured:
            self.records.append((kind, time.perf_counter() - started, error))
            if kind == "session_post" and error is None:
                self.sessions_logged += 1
        if location and error is None:  # a redirect: where to (its path on this server)
            return True, urlsplit(location).path
        return error is None, text

    def run(self) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        while time.monotonic() < self.deadline:
            kind = self.rng.choices(kinds, weights)[0]
            pools = self.pools
            if kind == "patient_list":
                page = self.rng.randrange(1, pools["list_pages"] + 1)
                self.timed(kind, "GET", f"/patients/?page={page}", 200)
            elif kind == "patient_search":
                self.timed(kind, "GET", f"/patients/?q={self.rng.choice(SEARCHES)}", 200)
            elif kind == "day_sheet":
                self.timed(kind, "GET", "/day/", 200)
            elif kind == "patient_page":
                self.timed(kind, "GET", f"/patients/{self.rng.choice(pools['patients'])}/", 200)
            elif kind == "course_page":
                self.course_page(kind, f"/courses/{self.rng.choice(pools['courses'])}/")
            else:
                self.log_session(self.rng.choice(pools["write_courses"]))
            if self.think[1]:
                time.sleep(self.rng.uniform(*self.think))

    def log_session(self, course_id: int) -> None:
        path = f"/courses/{course_id}/sessions/new/"
        measured = time.monotonic() >= self.measure_from
        ok, text = self.timed("session_form", "GET", path, 200, measured=measured)
        csrf, token = CSRF_INPUT.search(text), TOKEN_INPUT.search(text)
        if not ok or not csrf:
            return
        body = session_post_body(token.group(1) if token else "", csrf.group(1))
        ok, location = self.timed("session_post", "POST", path, 302, body, measured=measured)
        if ok:  # the browser follows the redirect to the course page
            self.course_page("course_after_save", location, measured=measured)

    def course_page(self, kind: str, path: str, measured: bool | None = None) -> None:
        """A course page, then the chart it fetches once it has arrived."""
        ok, text = self.timed(kind, "GET", path, 200, measured=measured)
        chart = CHART_SRC.search(text) if ok else None
        if chart:
            self.timed("course_chart", "GET", chart.group(1), 200, measured=measured)


def session_post_body(submission_token: str, csrf_token: str = "") -> dict:
    """What a clinician sends to log an IV session now, on a course of IV sessions."""
    now = timezone.localtime()
    body = {
        "submission_token": submission_token,
        "started_at": now.strftime("%Y-%m-%dT%H:%M"), "route": "iv",
        "dose_mg_per_kg": "0.5", "weight_basis": "actual", "infusion_minutes": "40",
        "bp_pre_systolic": "128", "bp_pre_diastolic": "82", "hr_pre": "74",
        "dissociation": "mild", "status": "completed", "recovery_minutes": "60",
        "ae-TOTAL_FORMS": "3", "ae-INITIAL_FORMS": "0",
        # Sessions are logged again and again on the same courses, whose weights may be old:
        # the confirmations the form asks for then are given, as a clinician would.
        "confirmed_recent_session": "on", "confirmed_old_weight": "on",
    }
    if csrf_token:
        body["csrfmiddlewaretoken"] = csrf_token
    return body


def pools(seed: int) -> dict:
    """The patients and courses the clients visit, and the running IV courses they log
    sessions on (never the designated patient's: the page benchmarks read them)."""
    rng = random.Random(seed)
    patients = list(Patient.objects.values_list("pk", flat=True))
    courses = list(Course.objects.values_list("pk", flat=True))
    iv = TreatmentSession.objects.filter(course=OuterRef("pk"), route=Route.IV)
    writable = list(Course.objects.active().filter(Exists(iv))
                    .exclude(patient__record_number=DESIGNATED_RECORD)
                    .values_list("pk", flat=True))
    return {
        "patients": rng.sample(patients, min(1000, len(patients))),
        "courses": rng.sample(courses, min(1000, len(courses))),
        "write_courses": rng.sample(writable, min(500, len(writable))),
        "list_pages": max(1, -(-len(patients) // 25)),
    }


def fragment_lookups(port: int) -> dict[str, float]:
    """The fragment cache's lookups by outcome, added up over every gunicorn worker (their
    figures meet in PROMETHEUS_MULTIPROC_DIR; ketacare.metrics)."""
    host = f"127.0.0.1:{port}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Host": host, "X-Forwarded-Proto": "https",
                                                 "Authorization": f"Bearer {METRICS_TOKEN}"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found = re.findall(r'^ketacare_fragment_cache_lookups_total\{outcome="(\w+)"\} (\S+)$',
                       text, re.MULTILINE)
    return {outcome: float(value) for outcome, value in found}


def run_load(seconds: float = 60, clients: int = 200, think_ms: tuple[float, float] = (3000, 6000),
             workers: int = 5, seed: int = 1, warmup: float = 5,
             conn_max_age: int | None = None, log=print) -> dict:
    """``clients`` clinicians for ``seconds`` (after ``warmup``), each pausing between
    ``think_ms`` (min, max) after every request; (0, 0) makes the run a saturation test."""
    if connection.vendor != "postgresql":
        log("  load run: skipped, needs PostgreSQL (gunicorn reads the same database)")
        return {"skipped": "needs PostgreSQL: the load run serves this database with gunicorn"}
    chosen = pools(seed)
    if not chosen["write_courses"]:
        return {"skipped": "no running IV course to log sessions on"}
    keys = make_sessions(clients)
    think = (think_ms[0] / 1000, think_ms[1] / 1000)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        server = Server(workers, conn_max_age=conn_max_age,
                        env={"PROMETHEUS_MULTIPROC_DIR": metrics_dir,
                             "METRICS_TOKEN": METRICS_TOKEN})
        try:
            server.wait_ready()
            # Each worker imports lazily and compiles its templates on first use: the same mix
            # runs for ``warmup`` seconds before the measured ``seconds``.
            start = time.monotonic() + warmup
            deadline = start + seconds
            threads = [Client(i, server.port, keys[i], chosen, start, deadline, think, seed)
                       for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - start
            lookups = fragment_lookups(server.port)
            server_log = server.tail()
        finally:
            server.stop()
            drop_sessions(keys)
    records = [record for thread in threads for record in thread.records]
    errors = [error for _, _, error in records if error]
    by_kind = {}
    for kind in KINDS:
        times = [seconds for k, seconds, _ in records if k == kind]
        if times:
            by_kind[kind] = {**summary(times),
                             "errors": sum(1 for k, _, e in records if k == kind and e)}
    overall = summary([seconds for _, seconds, _ in records]) if records else {}
    looked_up = sum(lookups.values())
    result = {
        "clients": clients, "seconds": round(elapsed, 1), "warmup_seconds": warmup,
        "think_ms": list(think_ms), "workers": workers, "conn_max_age": conn_max_age,
        "server": server.command, "requests": len(records), "errors": len(errors),
        "requests_per_second": round(len(records) / elapsed, 1),
        "sessions_logged": sum(thread.sessions_logged for thread in threads),
        # Over the warm-up too: the workers' counters cannot tell it apart.
        "fragment_lookups": looked_up,
        "cache_hit_rate": round(lookups.get("hit", 0) / looked_up, 3) if looked_up else None,
        **{f"overall_{k}": v for k, v in overall.items() if k != "n"},
        "by_kind": by_kind,
        "error_samples": sorted(set(errors))[:10],
    }
    if errors:
        result["server_log_tail"] = server_log
    hit_rate = (f"{result['cache_hit_rate']:.0%}" if result["cache_hit_rate"] is not None
                else "—")
    log(f"  load: {result['requests']:,} requests in {result['seconds']} s "
        f"({result['requests_per_second']}/s), {result['errors']} errors, "
        f"p50 {overall.get('median_ms')} ms, p95 {overall.get('p95_ms')} ms, "
        f"fragment cache hits {hit_rate}")
    return result
