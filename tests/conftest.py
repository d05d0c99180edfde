import re
import threading
from html import unescape

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.test import override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from ketacare.prepared import readable
from tests.factories import UserFactory

# A transactional test of pages uses the audit connection where there is one (PostgreSQL:
# audit.aside), so a page view's row is written as in production:
# @pytest.mark.django_db(transaction=True, databases=PAGE_DATABASES).
PAGE_DATABASES = ["default", *(["audit"] if "audit" in settings.DATABASES else [])]


@pytest.fixture(autouse=True)
def _audit_views_aside_only_where_allowed(request):
    """Django refuses a connection a test has not declared: a test that does not list the
    audit alias writes page views' rows on the page's own connection (inside a test's
    transaction they always are)."""
    marker = request.node.get_closest_marker("django_db")
    databases = (marker.kwargs.get("databases") if marker else None) or ()
    if "audit" not in settings.DATABASES or databases == "__all__" or "audit" in databases:
        yield
    else:
        with override_settings(AUDIT_VIEWS_ASIDE=False):
            yield


@pytest.fixture
def clinician(db):
    return UserFactory(role=Role.CLINICIAN, username="dr-test")


@pytest.fixture
def clinic_admin(db):
    return UserFactory(role=Role.CLINIC_ADMIN, username="admin-test")


@pytest.fixture
def referrer(db):
    return UserFactory(role=Role.REFERRING_PROVIDER, username="referrer-test")


def url_names(patterns, namespace: str = "") -> set[str]:
    """Every URL name of the app, namespaced ("patients:detail")."""
    names = set()
    for entry in patterns:
        if hasattr(entry, "url_patterns"):
            names |= url_names(entry.url_patterns, entry.namespace or namespace)
        else:
            names.add(f"{namespace}:{entry.name}" if namespace else entry.name)
    return names


def sent(queries) -> list[str]:
    """The statements a block sent, as the tests count them: without the test transaction's
    savepoints and without the PREPAREs a connection sends once (ketacare.prepared), each
    EXECUTE of a prepared statement written as its SQL."""
    return [text for query in queries
            if "SAVEPOINT" not in query["sql"] and (text := readable(query["sql"])) is not None]


def with_charts(client, page) -> str:
    """The page's HTML with each chart box filled as static/js/chart.js fills it in a
    browser: the chart fetched, by ``client``, from the URL the box names."""
    html = page.content.decode() if hasattr(page, "content") else page

    def fetched(match) -> str:
        chart = client.get(unescape(match.group(1)))
        assert chart.status_code == 200, match.group(1)
        return f'{match.group(0)}{chart.content.decode()}'

    return re.sub(r'<div class="course-chart" data-chart-src="([^"]+)"[^>]*>', fetched, html)


def audit_statements() -> int:
    """Statements one audit record costs: one on PostgreSQL, three elsewhere (audit.log)."""
    return 1 if connection.vendor == "postgresql" else 3


def verified_login(client, user) -> None:
    """Log ``client`` in as ``user`` with the second factor already given, as after the
    two-factor page (clinicians and admins need it; others are unaffected)."""
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(user=user, defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def as_user(client):
    """``as_user(user)`` logs the test client in as ``user`` (None: stays anonymous)."""

    def login(user):
        client.logout()
        if user is not None:
            verified_login(client, user)
        return client

    return login


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with no cached fragments (ids repeat across tests on SQLite)."""
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Production hashing is slow by design; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def moto_server():
    """An S3-compatible store on loopback for the whole run (tests/objectstore.py)."""
    from tests.objectstore import start_server

    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def s3(moto_server):
    """An empty bucket of its own on the loopback store."""
    from tests.objectstore import Store

    return Store(moto_server)


@pytest.fixture
def s3_exports(s3, settings):
    """The app's ``exports`` storage on that bucket."""
    settings.STORAGES = {**settings.STORAGES, "exports": s3.storage_setting()}
    return s3


# Concurrent work (PostgreSQL: each thread has its own connection, hence its own transactions)


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    """Run ``target`` on its own connection; the returned list gets its result or error."""
    outcome = []

    def run():
        try:
            outcome.append(target(*args))
        except BaseException as error:  # reported by the test, not lost in the thread
            outcome.append(error)
        finally:
            connections.close_all()  # the audit connection too (audit.aside)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def result(thread: threading.Thread, outcome: list, timeout: float = 30):
    """What the thread of :func:`in_thread` gave, raising what it raised."""
    thread.join(timeout)
    assert not thread.is_alive(), "the thread did not finish"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
