"""A clinic admin's export of course summaries, built in the background by a Celery task.

The file is saved to the exports storage (:mod:`exports.files`) only when complete, and only an
export in state DONE is ever offered: a worker that dies mid-export leaves nothing half-written
to download.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from clinical.vocab import Route, Status, choices


class ExportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class ExportQuerySet(models.QuerySet):
    def expired(self, now=None) -> "ExportQuerySet":
        return self.filter(state=ExportState.DONE, expires_at__lte=now or timezone.now())

    def stalled(self, now=None) -> "ExportQuerySet":
        """Running or queued with no sign of life for EXPORT_STALE_MINUTES: the worker died."""
        limit = (now or timezone.now()) - timezone.timedelta(
            minutes=settings.EXPORT_STALE_MINUTES
        )
        return self.filter(state__in=[ExportState.QUEUED, ExportState.RUNNING],
                           heartbeat_at__lt=limit)


class Export(models.Model):
    # A random id: export URLs cannot be guessed by counting.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    # What was asked for: courses started in [started_from, started_to], with these statuses
    # and routes (empty list: any).
    started_from = models.DateField(null=True, blank=True)
    started_to = models.DateField(null=True, blank=True)
    statuses = models.JSONField(default=list, blank=True)
    routes = models.JSONField(default=list, blank=True)
    include_pdfs = models.BooleanField("ZIP with each patient's PDF report", default=False)

    state = models.CharField(max_length=10, choices=ExportState.choices,
                             default=ExportState.QUEUED)
    # What the build counts: each course's CSV row, then (a ZIP) each patient's PDF report.
    # ``courses`` is how many of ``total`` are courses; the rest are reports.
    total = models.PositiveIntegerField(null=True, blank=True)
    courses = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    submission_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    objects = ExportQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.state})"

    @property
    def kind(self) -> str:
        return "zip" if self.include_pdfs else "csv"

    @property
    def download_name(self) -> str:
        stamp = timezone.localtime(self.requested_at).strftime("%Y%m%d-%H%M")
        return f"ketacare-course-summaries-{stamp}.{self.kind}"

    @property
    def percent(self) -> int:
        if self.state == ExportState.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def is_ready(self) -> bool:
        """Offered for download: complete and unexpired. Pages trust the state (no request to
        the store per row); the download itself answers 404 if the file has gone."""
        return (
            self.state == ExportState.DONE
            and self.expires_at is not None and self.expires_at > timezone.now()
        )

    @property
    def is_finished(self) -> bool:
        return self.state in (ExportState.DONE, ExportState.FAILED, ExportState.EXPIRED)

    def progress_display(self) -> str:
        """What has been built, in words: "8 of 14 courses"; a ZIP also counts its reports
        (one PDF per patient), "14 courses, 3 of 12 reports"; once built, "14 courses, 12
        reports". Empty until the build has counted."""
        if self.total is None:
            return ""
        done = self.total if self.state in (ExportState.DONE, ExportState.EXPIRED) else self.done
        courses = self.courses
        if courses is None:
            if self.include_pdfs:  # counted before courses were told apart from reports
                return _count_of(done, self.total, "course row or report",
                                 "course rows and reports")
            courses = self.total
        parts = [_count_of(min(done, courses), courses, "course")]
        if self.include_pdfs:
            parts.append(_count_of(max(done - courses, 0), self.total - courses, "report"))
        return ", ".join(parts)

    def filters(self) -> dict:
        """The export's filters, as ``exports.summaries.select_courses`` takes them."""
        return {"started_from": self.started_from, "started_to": self.started_to,
                "statuses": self.statuses, "routes": self.routes}

    def filters_display(self) -> str:
        """The filters in the words of the export form ("status: Remission, Response")."""
        parts = []
        if self.started_from and self.started_to:
            parts.append(f"started {self.started_from} to {self.started_to}")
        elif self.started_from:
            parts.append(f"started on or after {self.started_from}")
        elif self.started_to:
            parts.append(f"started on or before {self.started_to}")
        if self.statuses:
            parts.append("status: " + _labels(Status, self.statuses))
        if self.routes:
            parts.append("route: " + _labels(Route, self.routes))
        return "; ".join(parts) or "all courses"


def _labels(vocab, codes: list[str]) -> str:
    # A code no longer in the vocabulary (an old export) is shown as stored.
    labels = dict(choices(vocab))
    return ", ".join(labels.get(code, code) for code in codes)


def _count_of(done: int, total: int, noun: str, plural: str = "") -> str:
    """ "3 of 12 reports", or "12 reports" once all are done."""
    words = noun if total == 1 else plural or f"{noun}s"
    return f"{total} {words}" if done >= total else f"{done} of {total} {words}"
