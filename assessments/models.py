from django.conf import settings
from django.db import models

from clinical.instruments import INSTRUMENTS, PHQ9_DIFFICULTY
from clinical.vocab import Instrument, choices
from courses.models import Course


class AssessmentQuerySet(models.QuerySet):
    def current(self) -> "AssessmentQuerySet":
        """Entries not replaced by a correction: the ones that count."""
        return self.filter(corrected_by__isnull=True)

    def for_course(self, course: Course) -> "AssessmentQuerySet":
        return self.filter(course=course)


class Assessment(models.Model):
    """A signed MADRS or PHQ-9: never edited in place; a correction is a new linked entry."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="assessments")
    instrument = models.CharField(max_length=10, choices=choices(Instrument))
    administered_at = models.DateTimeField("date and time")
    items = models.JSONField(null=True, blank=True, help_text="Item scores in order")
    total = models.PositiveSmallIntegerField()
    difficulty = models.CharField(
        "how difficult have these problems made things", max_length=20,
        choices=PHQ9_DIFFICULTY, blank=True,
    )
    scored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField()
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrected_by"
    )
    correction_reason = models.CharField(max_length=200, blank=True)
    # The form's one-time token: a double click or a retried POST cannot sign it twice.
    submission_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    objects = AssessmentQuerySet.as_manager()

    class Meta:
        ordering = ["administered_at", "id"]
        indexes = [models.Index(fields=["course", "administered_at"])]

    def __str__(self) -> str:
        return f"{self.get_instrument_display()} {self.total} on {self.administered_at:%Y-%m-%d}"

    @property
    def definition(self):
        return INSTRUMENTS[Instrument(self.instrument)]

    @property
    def band(self) -> str:
        return self.definition.band(self.total)
