import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketacare.settings")

app = Celery("ketacare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Counts every task's outcome for /metrics (Celery signals, in the worker or inline).
import ketacare.metrics  # noqa: E402, F401
