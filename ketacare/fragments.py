"""Rendered HTML kept in Django's cache, under keys made of the versions of what it shows.

The course page and the referral report render every session and score of a course; that is
most of their time. Their HTML is cached under a key that names the data, never a time:

- ``course.evaluated_at`` changes with every change to a course or its patient, because every
  one goes through an action that calls ``refresh_evaluation`` (sessions, scores, phases,
  decisions, the end of the course; medications, trials, weights and edits of the patient
  through ``refresh_patient``);
- ``patient.version`` changes with every edit of the patient's details;
- :func:`staff_version` changes with every change to an account, whose signature a fragment
  may show;
- the day, for what depends on it (age, medications today);
- :func:`data_version` changes with every change to anything (the clinic-wide dashboard).

So a fragment found in the cache is never stale, and nothing is ever invalidated: an old key
is simply no longer asked for, and expires. That is also why each process's own memory (the
default ``LocMemCache``) serves as well as a shared cache: processes never need to tell each
other anything. The HTML holds patient data; the cache is process memory unless an operator
sets ``CACHE_URL``, and then it must be as private as the database.
"""

import hashlib
from collections.abc import Callable, Iterable

from django.core.cache import cache
from django.db.models import Max
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from audit.models import Action, AuditEvent

VERSION = 1  # bump when the templates of cached fragments change shape


def staff_version() -> str:
    """When any account last changed (one aggregate over the accounts)."""
    changed = User.objects.aggregate(changed=Max("changed_at"))["changed"]
    return changed.isoformat() if changed else "-"


def data_version() -> int:
    """The id of the last audited change (a view is not a change): every change is audited in
    its own transaction, and audit writers take the chain head's lock until they commit, so
    ids grow in commit order and a larger id means a later state of the data. One lookup in
    a partial index."""
    last = AuditEvent.objects.exclude(action=Action.VIEW).aggregate(last=Max("id"))["last"]
    return last or 0


def fragment_key(name: str, parts: Iterable) -> str:
    """A short key of safe characters (any cache backend), naming ``parts`` by their digest."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f"fragment:{VERSION}:{name}:{digest}"


def cached_html(name: str, parts: Iterable, render: Callable[[], str]) -> SafeString:
    """The HTML ``render()`` gives, from the cache when ``parts`` name the same data."""
    key = fragment_key(name, parts)
    html = cache.get(key)
    if html is None:
        html = render()
        cache.set(key, str(html))
    return mark_safe(html)  # rendered by the template engine, which escaped it
