"""Automatic logoff (HIPAA 164.312(a)(2)(iii)): a logged-in session ends after
``SESSION_COOKIE_AGE`` seconds without a request.

Django can renew the expiry by saving the session on every request, but that is a database
write on every page. :class:`IdleTimeoutMiddleware` renews it at most once every
``RENEW_EVERY`` seconds instead, so a session ends between ``SESSION_COOKIE_AGE - RENEW_EVERY``
and ``SESSION_COOKIE_AGE`` after the last request: never later.

The session ends exactly ``SESSION_COOKIE_AGE`` after its last renewal, however often it is
saved in between (:class:`SessionStore`, the ``SESSION_ENGINE``), so a page can tell
``idle.js`` the seconds actually left (:func:`seconds_left`, rounded up): when the page says
the user was logged out, the server has ended the session too. Login starts the timer and the
keepalive view always renews it.
"""

import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db

RENEWED = "_idle_renewed"  # session key: when the expiry was last renewed (Unix seconds)
RENEW_EVERY = 60
# A patient's self-report pages (selfreport.views.PUBLIC_PREFIX) are no clinician's activity:
# opening one in a browser where a clinician is logged in does not keep that session alive.
NOT_ACTIVITY = ("/r/",)


class SessionStore(db.SessionStore):
    """Database sessions whose expiry is the last renewal plus the idle timeout, not the
    last save plus the timeout (a session saved for another reason is not renewed)."""

    def get_expiry_date(self, **kwargs) -> datetime:
        renewed = self.get(RENEWED)
        if not kwargs and renewed is not None and self.get("_session_expiry") is None:
            return datetime.fromtimestamp(renewed + settings.SESSION_COOKIE_AGE, UTC)
        return super().get_expiry_date(**kwargs)


def renew(session) -> None:
    """Renew the expiry: the session is saved, with a new expiry date, as the response goes."""
    session[RENEWED] = time.time()


def seconds_left(session) -> int:
    renewed = session.get(RENEWED)
    if renewed is None:
        return settings.SESSION_COOKIE_AGE
    return max(0, math.ceil(renewed + settings.SESSION_COOKIE_AGE - time.time()))


class IdleTimeoutMiddleware:
    """Renews a logged-in session's expiry when its last renewal is ``RENEW_EVERY`` seconds
    old or more (after SessionMiddleware, which saves it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if (
            SESSION_KEY in session
            and time.time() - session.get(RENEWED, 0) >= RENEW_EVERY
            and not request.path.startswith(NOT_ACTIVITY)
        ):
            renew(session)
        return self.get_response(request)
