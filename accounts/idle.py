"""Automatic logoff (HIPAA 164.312(a)(2)(iii)): a logged-in session ends after
``SESSION_COOKIE_AGE`` seconds without a request.

Django can renew the expiry by saving the session on every request, but that is a database
write on every page. :class:`IdleTimeoutMiddleware` renews it at most once every
``RENEW_EVERY`` seconds instead, so a session ends between ``SESSION_COOKIE_AGE - RENEW_EVERY``
and ``SESSION_COOKIE_AGE`` after the last request: never later. Pages tell ``idle.js`` the
seconds actually left (:func:`seconds_left`), and the keepalive view always renews.
"""

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY

RENEWED = "_idle_renewed"  # session key: when the expiry was last renewed (Unix seconds)
RENEW_EVERY = 60


def renew(session) -> None:
    """Renew the expiry: the session is saved, with a new expiry date, as the response goes."""
    session[RENEWED] = int(time.time())


def seconds_left(session) -> int:
    renewed = session.get(RENEWED)
    if renewed is None:
        return settings.SESSION_COOKIE_AGE
    return max(0, settings.SESSION_COOKIE_AGE - (int(time.time()) - renewed))


class IdleTimeoutMiddleware:
    """Renews a logged-in session's expiry when its last renewal is ``RENEW_EVERY`` seconds
    old or more (after SessionMiddleware, which saves it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session and int(time.time()) - session.get(RENEWED, 0) >= RENEW_EVERY:
            renew(session)
        return self.get_response(request)
