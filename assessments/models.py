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


class Source(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    SELF_REPORT = "self_report", "Self-report"


SELF_REPORT_SIGNER = "patient link"  # who signs a self-report, in the record and the audit


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
    # A self-report (SPEC §9) is signed by the patient's single-use link, not by a clinician:
    # it has no scorer. Every other entry has one (the constraint below).
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.CLINICIAN)
    scored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
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
        constraints = [
            models.CheckConstraint(
                name="assessment_signed_by_clinician_or_link",
                condition=(
                    models.Q(source=Source.CLINICIAN, scored_by__isnull=False)
                    | models.Q(source=Source.SELF_REPORT, scored_by__isnull=True)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_instrument_display()} {self.total} on {self.administered_at:%Y-%m-%d}"

    @property
    def is_self_report(self) -> bool:
        return self.source == Source.SELF_REPORT

    @property
    def signer(self) -> str:
        """Who signed it, as the record shows it: a clinician's signature or the patient link."""
        if self.is_self_report:
            return f"{SELF_REPORT_SIGNER} (self-report)"
        return self.scored_by.signature

    @property
    def definition(self):
        return INSTRUMENTS[Instrument(self.instrument)]

    @property
    def band(self) -> str:
        return self.definition.band(self.total)
