"""gunicorn reads this file from the working folder (the image's /app).

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its request figures there for /metrics to
add up (ketacare.metrics): the folder is emptied as gunicorn starts, so figures from an earlier
run are not counted again, and a worker that exits is marked dead.
"""

import os
from pathlib import Path


def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):  # prometheus_client's files, nothing else
            stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
