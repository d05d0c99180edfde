"""Error pages that say what happened, and nothing they cannot know.

A database that does not answer is not a fault in KetaCare: it gets 503 with ``Retry-After``
and a page that says to try again in a moment, instead of a 500. Neither page claims that a
change was rolled back: after a failed request, the user is told to check the record.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

# The database is down, restarting or unreachable (Django wraps psycopg's errors in these).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: called while the uncaught exception is being handled."""
    # Rendered without the request: its user and session would read the database.
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return HttpResponse(render_to_string("500.html"), status=500)
