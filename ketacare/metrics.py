"""Prometheus metrics for the operator: request latency by view, Celery tasks by outcome.

No patient data: a request is labelled with its view's *name* (``patients:detail``), never its
URL (which holds ids), with its method (one of a fixed few) and its status code; a task with its
name and outcome.

- **Requests** are counted in each process with ``prometheus_client``. Under gunicorn with
  several workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder private to the node
  (``gunicorn.conf.py`` empties it at start): every worker writes its figures there and
  /metrics adds them up. Without it, a scrape sees only the worker that answered it.
- **The fragment cache** (ketacare.fragments): lookups by outcome, hit or miss, counted like
  the requests.
- **Celery tasks** run on other machines, so their outcomes are counted in Redis (the broker)
  where every web node reads the same figures: they are the cluster's, not the node's. Without
  a broker, tasks run inline and are counted in the process that ran them.
"""

import logging
import os
from collections import Counter as Tally

from celery import signals
from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_process = CollectorRegistry()  # this process's own figures (not the default registry)
REQUEST_SECONDS = Histogram(
    "ketacare_request_duration_seconds", "Time to answer a request, by view",
    ["view", "method"], registry=_process,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESPONSES = Counter(
    "ketacare_responses", "Responses sent, by view and status code",
    ["view", "method", "status"], registry=_process,
)
FRAGMENTS = Counter(
    "ketacare_fragment_cache_lookups", "Rendered fragments looked up in the cache, by outcome",
    ["outcome"], registry=_process,
)


def view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match else "unresolved"  # e.g. a 404 for an unknown path


def observe(request, response, seconds: float) -> None:
    view = view_label(request)
    method = request.method if request.method in METHODS else "other"
    REQUEST_SECONDS.labels(view, method).observe(seconds)
    RESPONSES.labels(view, method, str(response.status_code)).inc()


class TaskCounts:
    """Celery task outcomes, where every node reads them: a Redis hash on the broker, or
    this process's memory when tasks run inline (no broker)."""

    KEY = "ketacare:metrics:celery-tasks"

    def __init__(self):
        self.local = Tally()

    @staticmethod
    def _redis():
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://")):
            return None
        import redis

        return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def add(self, task: str, outcome: str) -> None:
        client = self._redis()
        if client is None:
            self.local[(task, outcome)] += 1
            return
        with client:
            client.hincrby(self.KEY, f"{task}|{outcome}", 1)

    def read(self) -> dict[tuple[str, str], int]:
        client = self._redis()
        if client is None:
            return dict(self.local)
        with client:
            raw = client.hgetall(self.KEY)
        return {tuple(k.decode().split("|", 1)): int(v) for k, v in raw.items()}

    def collect(self):
        family = CounterMetricFamily(
            "ketacare_celery_tasks", "Celery tasks finished, by task and outcome (cluster-wide "
            "when a broker is configured)", labels=["task", "outcome"],
        )
        try:
            counts = self.read()
        except Exception as error:  # the broker is down: the request figures still count
            logger.warning("celery task counts unreadable: %s", type(error).__name__)
            counts = {}
        for (task, outcome), value in sorted(counts.items()):
            family.add_metric([task, outcome], value)
        yield family


TASKS = TaskCounts()
_tasks = CollectorRegistry()
_tasks.register(TASKS)

def _count(task, outcome: str) -> None:
    try:
        TASKS.add(getattr(task, "name", str(task)), outcome)
    except Exception as error:  # a metric never fails a task
        logger.warning("celery task not counted: %s", type(error).__name__)


@signals.task_success.connect
def _succeeded(sender=None, **kwargs) -> None:
    _count(sender, "succeeded")


@signals.task_failure.connect
def _failed(sender=None, **kwargs) -> None:
    _count(sender, "failed")


@signals.task_retry.connect
def _retried(sender=None, **kwargs) -> None:
    _count(sender, "retried")


def exposition() -> bytes:
    """Every figure, in Prometheus' text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        MultiProcessCollector(requests)
    else:
        requests = _process
    return generate_latest(requests) + generate_latest(_tasks)
