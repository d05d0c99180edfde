"""Building exports on a Celery worker, and clearing away what has expired or stalled.

An export is built in a local scratch file and saved to the exports storage under its final
name only once complete (:mod:`exports.files`); only then is its state set to DONE. Whatever
stops a build half way (an error, a killed worker, a lost database) leaves nothing under that
name that is ever offered, and what is there is removed, either at once or by
:func:`sweep_exports` when the export has shown no sign of life for a while.
"""

import io
import logging
import traceback
import zipfile
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from exports import files
from exports.models import Export, ExportState
from exports.summaries import select_courses, write_csv
from patients.models import Patient

logger = logging.getLogger(__name__)

# Worth another go: the database or the store (disk, S3) may be back in a minute. Anything
# else is a bug, and trying again would fail the same way.
RETRYABLE = (DatabaseError, *files.STORE_ERRORS)
MAX_RETRIES = 3
BACKOFF_SECONDS = 10


def _update(export_id, **fields) -> None:
    Export.objects.filter(pk=export_id).update(heartbeat_at=timezone.now(), **fields)


def _update_if_possible(export_id, **fields) -> bool:
    """``_update`` on a fresh connection; if the database is still away, say so in the log and
    carry on (the next attempt, or the sweep, records the state)."""
    _fresh_connection()
    try:
        _update(export_id, **fields)
    except DatabaseError as exc:
        log_failure(export_id, exc)
        _fresh_connection()
        return False
    return True


def _fresh_connection() -> None:
    """Drop this process's database connection, which the error may have left dead (a
    restarted server): the next query opens a new one. Not inside a transaction (the eager
    tests'), which Django would have to roll back."""
    if not connection.in_atomic_block:
        connection.close()


def fail(export_id, error: str) -> None:
    _update_if_possible(export_id, state=ExportState.FAILED, finished_at=timezone.now(),
                        error=error)


def _remove_files(export: Export) -> None:
    files.remove(export)


def _write_zip(export: Export, courses, part, progress) -> None:
    """The summaries CSV and each patient's PDF report, one file per patient."""
    from reports.pdf import patient_report_pdf, pdf_filename

    patients = Patient.objects.filter(pk__in=courses.values("patient_id")).order_by("pk")
    with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with (archive.open("course-summaries.csv", "w") as raw,
              io.TextIOWrapper(raw, encoding="utf-8", newline="") as text):
            rows = write_csv(courses, text, progress)
        names = set()
        for done, patient in enumerate(patients.iterator(chunk_size=100), start=1):
            # A safe name (ketacare.filenames), never straight from the record number; two
            # that come out the same are told apart by the patient's id.
            name = pdf_filename(patient)
            if name in names:
                name = name.replace(".pdf", f"-{patient.pk}.pdf")
            names.add(name)
            archive.writestr(f"reports/{name}", patient_report_pdf(patient))
            progress(rows + done)


def build(export: Export, attempt: int) -> None:
    """Build ``export``'s file from scratch and mark it DONE; on any failure remove what was
    written and let the exception go."""
    courses = select_courses(**export.filters())
    total = course_count = courses.count()
    if export.include_pdfs:
        total += Patient.objects.filter(pk__in=courses.values("patient_id")).count()
    _update(export.pk, state=ExportState.RUNNING, total=total, courses=course_count, done=0,
            attempts=attempt, error="")
    def progress(done: int) -> None:
        _update(export.pk, done=done)

    try:
        with files.scratch() as part:
            if export.include_pdfs:
                _write_zip(export, courses, part, progress)
            else:
                with files.text(part) as out:
                    write_csv(courses, out, progress)
            size = files.publish(export, part)  # whole under its final name, or absent
        now = timezone.now()
        _update(
            export.pk, state=ExportState.DONE, done=total, finished_at=now,
            expires_at=now + timedelta(hours=settings.EXPORT_TTL_HOURS),
            file_name=files.name_of(export), size_bytes=size,
        )
    except BaseException:
        _remove_files(export)
        raise


def log_failure(export_id, exc: BaseException) -> None:
    # The exception's message may quote data; log its type and where it came from, not what.
    logger.error("export %s failed: %s\n%s", export_id, type(exc).__name__,
                 "".join(traceback.format_tb(exc.__traceback__)))


@shared_task
def build_export(export_id: str, attempt: int = 1) -> None:
    from exports.actions import enqueue

    try:
        export = Export.objects.filter(pk=export_id).first()
        if export is None or export.state not in (ExportState.QUEUED, ExportState.RUNNING):
            # Deleted, or a redelivered message for work that finished, or that the sweep
            # gave up on (the admin has been told to run it again; a late rebuild would only
            # confuse).
            return
        build(export, attempt)
    except RETRYABLE as exc:
        log_failure(export_id, exc)
        if attempt <= MAX_RETRIES:
            # A database restart leaves this process's connection dead: the state is written,
            # and the next attempt runs, on a fresh one (README: retried three times).
            _update_if_possible(export_id, state=ExportState.QUEUED, error=(
                f"Attempt {attempt} failed ({type(exc).__name__}); trying again shortly."
            ))
            # A new message for the next attempt (run at once when Celery is eager).
            enqueue(build_export, export_id, attempt + 1, countdown=BACKOFF_SECONDS * attempt)
            return
        fail(export_id, f"Failed after {attempt} attempts ({type(exc).__name__}). Nothing was "
                        "kept. Run it again; if it fails again, tell your system administrator.")
    except Exception as exc:
        log_failure(export_id, exc)
        fail(export_id, f"Failed ({type(exc).__name__}). Nothing was kept. This is a fault in "
                        "KetaCare: tell your system administrator.")


@shared_task
def sweep_exports() -> dict[str, int]:
    """Delete expired files; fail exports whose worker died (no progress for a while)."""
    now = timezone.now()
    expired = stalled = 0
    for export in Export.objects.expired(now):
        _remove_files(export)
        Export.objects.filter(pk=export.pk, state=ExportState.DONE).update(
            state=ExportState.EXPIRED, file_name="", size_bytes=None,
        )
        expired += 1
    for export in Export.objects.stalled(now):
        _remove_files(export)
        Export.objects.filter(pk=export.pk, state__in=[
            ExportState.QUEUED, ExportState.RUNNING,
        ]).update(state=ExportState.FAILED, finished_at=now, error=(
            "The export stopped before it finished (the worker was stopped or lost). "
            "Nothing was kept. Run it again."
        ))
        stalled += 1
    return {"expired": expired, "stalled": stalled}
