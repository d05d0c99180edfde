"""Recompute the stored evaluation of every course under the current rules revision.

Run it once after an upgrade that changes the rules (README, "Upgrading"). It works in
batches, each in its own transaction with its rows locked, so a clinician's change during the
run waits for the batch and then stores its own fresh evaluation. It picks only the courses
whose evaluation is missing or older than the current revision, so it is idempotent (a second
run finds nothing to do) and resumable (an interrupted run goes on from where it stopped).
``--all`` first marks every evaluation stale, then does the same: also resumable.
"""

import sys

from django.core.management.base import BaseCommand
from django.db import transaction

from clinical.engine import RULES_REVISION
from courses.evaluation import set_evaluation, stale_courses
from courses.models import Course

BAR_WIDTH = 30


def progress_bar(done: int, total: int) -> str:
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    percent = 100 * done // total if total else 100
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,} courses ({percent} %)"


class Command(BaseCommand):
    help = (
        f"Recompute stored course evaluations under rules revision {RULES_REVISION}: only "
        "courses evaluated under older rules (or never), in batches; safe to interrupt and run "
        "again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true",
                            help="recompute every course, current ones included")
        parser.add_argument("--batch-size", type=int, default=200,
                            help="courses per transaction (default 200)")

    def handle(self, *args, all: bool = False, batch_size: int = 200, **options):
        batch_size = max(1, batch_size)
        if all:
            # Marked stale first, so an interrupted --all resumes with a plain run.
            Course.objects.update(rules_revision=None)
        ids = list(stale_courses().order_by("pk").values_list("pk", flat=True))
        total = len(ids)
        out = self.stdout
        tty = out.isatty() if hasattr(out, "isatty") else sys.stdout.isatty()
        evaluated = 0
        for start in range(0, total, batch_size):
            batch = ids[start:start + batch_size]
            evaluated += self._batch(batch)
            # On a terminal the bar redraws in place; elsewhere (a log) one line per batch.
            bar = progress_bar(start + len(batch), total)
            out.write(("\r" if tty else "") + bar, ending="" if tty else "\n")
            out.flush()
        if tty and total:
            out.write("")
        out.write(f"{evaluated:,} course{'s' if evaluated != 1 else ''} evaluated under rules "
                  f"revision {RULES_REVISION}.")

    @staticmethod
    def _batch(ids: list[int]) -> int:
        with transaction.atomic():
            # Locked, and read again: a course re-evaluated since the id list was taken (by a
            # clinician's change, or by reading its page) is current and left alone.
            courses = list(
                stale_courses().select_for_update(of=("self",)).select_related("patient")
                .filter(pk__in=ids).order_by("pk")
            )
            if not courses:
                return 0
            names = [set_evaluation(course) for course in courses][0]
            Course.objects.bulk_update(courses, names)
        return len(courses)
