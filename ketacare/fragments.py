"""Rendered HTML kept in Django's cache, under keys made of the versions of what it shows.

The patient list, the patient and course pages, the referral report and the outcome dashboard
spend most of their time rendering rows. Their HTML is cached under a key that names the data,
never a time. The versions come from the audit trail, because every change is audited in the
transaction that makes it (the project's rule), with the patient it touches:

- :func:`with_record_versions`: the id of the last audited change to a patient's record
  (details, weights, trials, medications, referrer, courses, sessions, scores, decisions), and
  when any account last changed (``User.changed_at``), for the signatures a page shows, read
  in the statement that reads the page's patient or course;
- :func:`data_version`: the id of the last audited change to anything;
- and, in each key, whatever else the HTML depends on (the reader's role, the day).

Audit writers hold the chain head's lock until they commit, so audit ids grow in commit order:
a reader that sees a larger id sees a later state of the data. A fragment found in the cache
is therefore never stale, and nothing is ever invalidated: an old key is simply no longer
asked for, and expires. That is also why each process's own memory (the default
``LocMemCache``) serves as well as a shared cache: processes never need to tell each other
anything. The HTML holds patient data; the cache is process memory unless an operator sets
``CACHE_URL``, and then it must be as private as the database.

A write that is not audited (data loaded by ``bench_generate``, a test's factories) is not
seen by these versions: nothing in the app writes that way.
"""

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC

from django.core.cache import cache
from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from audit.models import Action, AuditEvent
from clinical.engine import RULES_REVISION
from ketacare.metrics import FRAGMENTS
from ketacare.prepared import execute

VERSION = 5  # bump when the templates of cached fragments change shape
# Rendered where a fragment has {% csrf_token %}; each reader's own token replaces it.
CSRF_SLOT = "csrf-slot-7d1f0c9a4b2e"


def data_version() -> int:
    """The id of the last audited change to anything (a view is not a change): one lookup in
    a partial index. Plain SQL: every list page asks, rendered or not, and compiling the
    aggregate cost as much as running it."""
    with connection.cursor() as cursor:
        execute(
            cursor, f"SELECT MAX(id) FROM {AuditEvent._meta.db_table} "  # noqa: S608
            f"WHERE NOT (action = '{Action.VIEW.value}')"
        )
        last = cursor.fetchone()[0]
    return last or 0


def _stamp(changed) -> str:
    """When an account last changed, as the same text whichever way it was read (SQLite's
    driver gives plain SQL naive text, in UTC; the ORM an aware datetime)."""
    if isinstance(changed, str):
        changed = parse_datetime(changed)
    if changed is not None and changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    return str(changed)


def with_record_versions(queryset: QuerySet, patient: str = "patient_id") -> QuerySet:
    """``queryset`` with the versions of each row's patient's record read in the same
    statement: the id of the last audited change to it (not a view; in the partial index) and
    when any account last changed; ``patient``: the row's field that holds the patient's id.
    A page that reads its patient or course anyway saves the round trip of asking for them
    apart (:func:`versions_read_with` gives them back)."""
    last_change = (AuditEvent.objects.filter(patient_id=OuterRef(patient))
                   .exclude(action=Action.VIEW).order_by("-id").values("id")[:1])
    staff_changed = User.objects.order_by(F("changed_at").desc()).values("changed_at")[:1]
    return queryset.annotate(record_last_change=Subquery(last_change),
                             record_staff_changed=Subquery(staff_changed))


def versions_read_with(row) -> tuple:
    """The record versions read with ``row`` (a row of :func:`with_record_versions`): the
    last change's id (0 for none) and the last account change as text."""
    return (row.record_last_change or 0, _stamp(row.record_staff_changed))


def fragment_key(name: str, parts: Iterable) -> str:
    """A short key of safe characters (any cache backend), naming ``parts`` by their digest."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    # The rules revision too: pages show stored evaluations, and one computed under older rules
    # is computed again on read, never served from a page cached before the upgrade.
    return f"fragment:{VERSION}:r{RULES_REVISION}:{name}:{digest}"


def cached_html(name: str, parts: Iterable, render: Callable[[], str]) -> str:
    """The HTML ``render()`` gives, from the cache when ``parts`` name the same data."""
    key = fragment_key(name, parts)
    html = cache.get(key)
    FRAGMENTS.labels("hit" if html is not None else "miss").inc()
    if html is None:
        html = str(render())
        cache.set(key, html)
    return html


def cached_record(request: HttpRequest, template: str, patient_id: int, today,
                  context: Callable[[], dict], *parts, versions: tuple) -> SafeString:
    """A fragment of one patient's record: keyed on the record's ``versions`` (read with the
    page's patient or course: :func:`versions_read_with`), the day the page is read on (ages,
    medications today) and ``parts``."""
    return cached_template(request, template, (patient_id, *versions, today, *parts), context)


def cached_template(request: HttpRequest, template: str, parts: Iterable,
                    context: Callable[[], dict]) -> SafeString:
    """``template`` rendered with ``context()``, from the cache when ``parts`` and the
    reader's role name the same data. The fragment sees ``user`` (only its role may matter)
    and no context processors; a ``{% csrf_token %}`` in it becomes the reader's own token."""
    html = cached_html(template, [*parts, request.user.role], lambda: render_to_string(
        template, {"user": request.user, "csrf_token": CSRF_SLOT, **context()}
    ))
    if CSRF_SLOT in html:
        html = html.replace(CSRF_SLOT, get_token(request))
    return mark_safe(html)  # rendered by the template engine, which escaped it
