"""What the load balancer and the operator ask of each node: /healthz, /readyz and /metrics.

:class:`OpsMiddleware` comes first in ``MIDDLEWARE`` and answers these three paths itself,
before sessions, idle logoff, two-factor, the host check and the HTTPS redirect: a load
balancer probes a node by its address over plain HTTP, with no session. They say nothing that
helps an attacker: ``ok``/``ready``/``not ready``, and the failing part goes to the log only.

- ``/healthz``: liveness; the process answers. No database, so a database outage does not
  get every node restarted.
- ``/readyz``: readiness; the database answers, the broker (Redis) when one is configured,
  and the export storage. 200 or 503.
- ``/metrics``: Prometheus text (:mod:`ketacare.metrics`), only with ``Authorization: Bearer
  <METRICS_TOKEN>``; with no token configured, or a wrong one, it does not exist (404).

Every other request is timed for the latency histogram.
"""

import hmac
import logging
import time

from django.conf import settings
from django.db import connections
from django.http import HttpResponse

from exports import files
from ketacare import metrics

logger = logging.getLogger(__name__)


def _plain(body: str, status: int = 200, content_type: str = "text/plain") -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=content_type)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def healthz(request) -> HttpResponse:
    return _plain("ok\n")


def database_ready() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def broker_ready() -> bool:
    url = settings.CELERY_BROKER_URL
    if not url:  # tasks run inline: nothing to reach
        return True
    import redis

    with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
        return bool(client.ping())


CHECKS = {"database": database_ready, "broker": broker_ready, "storage": files.reachable}


def readyz(request) -> HttpResponse:
    ready = True
    for name, check in CHECKS.items():
        try:
            ok = check()
        except Exception as error:  # down is "not ready", never a 500
            logger.warning("not ready: %s (%s)", name, type(error).__name__)
            ok = False
        else:
            if not ok:
                logger.warning("not ready: %s", name)
        ready = ready and ok
    return _plain("ready\n" if ready else "not ready\n", 200 if ready else 503)


def metrics_view(request) -> HttpResponse:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        return _plain("Not Found\n", 404)
    return _plain(metrics.exposition().decode(), content_type="text/plain; version=0.0.4")


VIEWS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}


class OpsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = VIEWS.get(request.path_info)
        if view is not None:
            if request.method not in ("GET", "HEAD"):
                return _plain("Method Not Allowed\n", 405)
            return view(request)
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.observe(request, response, time.perf_counter() - started)
        return response
