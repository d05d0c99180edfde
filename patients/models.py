import contextlib
import re
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower

from clinical import dosing
from clinical.vocab import Diagnosis, MedClass, Sex, choices
from ketacare.prepared import Prepared
from patients.record_numbers import MAX_LENGTH, validate_record_number


def search_words(query: str) -> list[str]:
    """The words of a patient search: split at spaces and commas, so that a name copied as
    the lists show it ("Reed, Tomas") is found. A NUL can only come from a hand-made URL, and
    PostgreSQL refuses it in any query: it separates words too."""
    return [word for word in re.split(r"[\s,\x00]+", query) if word]


class PatientQuerySet(models.QuerySet):
    def search(self, query: str) -> "PatientQuerySet":
        """Patients matching every word: in a name or the record number, or a date of birth
        written as the lists show it (1980-04-04)."""
        terms = Q()
        for word in search_words(query):
            match = (
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(record_number__icontains=word)
            )
            if DATE_WORD.fullmatch(word):
                with contextlib.suppress(ValueError):  # 2026-02-30: no such day
                    match |= Q(date_of_birth=date.fromisoformat(word))
            terms &= match
        return self.filter(terms)


DATE_WORD = re.compile(r"\d{4}-\d{2}-\d{2}")


class Patient(models.Model):
    record_number = models.CharField(
        "record number", max_length=MAX_LENGTH, unique=True,
        validators=[validate_record_number],
        help_text="The clinic's medical record number (MRN): letters, digits, - _ and . only.",
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(
        max_length=10, choices=choices(Sex),
        help_text="Sex assigned at birth; the Devine ideal-body-weight formula uses it (female "
        "or male).",
    )
    height_cm = models.DecimalField(
        "height (cm)", max_digits=4, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(dosing.HEIGHT_CM[0]), MaxValueValidator(dosing.HEIGHT_CM[1])],
    )
    diagnosis = models.CharField(max_length=20, choices=choices(Diagnosis))
    psychotic_features = models.BooleanField(default=False)
    comorbidities = models.TextField(blank=True)
    prior_ect = models.BooleanField("prior ECT", default=False)
    prior_tms = models.BooleanField("prior TMS", default=False)
    # Spravato REMS (SPEC §8): enrolled when both are given.
    rems_enrolled_on = models.DateField("REMS enrolment date", null=True, blank=True)
    rems_number = models.CharField(
        "REMS patient number", max_length=30, blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9-]{1,30}$", "Letters, digits or - only.")],
    )
    referring_provider = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="referred_patients", limit_choices_to={"role": "referring_provider"},
    )
    # Self-report between sessions (SPEC §9): invitations go only to a patient with both.
    email = models.EmailField(
        "email", blank=True,
        help_text="Optional. Self-report invitations are sent here, and nothing else.",
    )
    self_report_consent_on = models.DateField(
        "self-report consent date", null=True, blank=True,
        help_text="The day the patient agreed to receive self-report questionnaires by email.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic locking: an edit saves only over the version it was read at.
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
            # The REMS forms (the day sheet's counts, the queue) start from the enrolled
            # patients: few, or none in most clinics.
            models.Index(fields=["rems_enrolled_on"], name="patient_rems_enrolled_idx",
                         condition=Q(rems_enrolled_on__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.last_name}, {self.first_name} ({self.record_number})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def first_dated(self) -> tuple[date, str] | None:
        """The earliest day the record holds (a weight, a medication started, a course begun)
        with what it is, or None: a date of birth after it cannot be right."""
        dated = {"first weight": (self.weights, "measured_on"),
                 "first medication start": (self.medications, "started_on"),
                 "first course": (self.courses, "started_on")}
        days = Patient.objects.filter(pk=self.pk).values_list(*(  # one statement
            Subquery(related.model.objects.filter(patient=OuterRef("pk")).order_by(field)
                     .values(field)[:1])
            for related, field in dated.values())).get()
        found = [(day, what) for day, what in zip(days, dated, strict=True) if day is not None]
        return min(found) if found else None

    def weight_on(self, day: date) -> "WeightRecord | None":
        """The weight in force on ``day``: the latest measured on or before it."""
        found = _WEIGHT_ON.objects(patient=self.pk, day=day)
        return found[0] if found else None

    def ideal_body_weight_kg(self) -> Decimal | None:
        """Devine's formula needs a height, and a sex of female or male (it has no other)."""
        if self.height_cm is None or self.sex not in (Sex.FEMALE, Sex.MALE):
            return None
        return dosing.ideal_body_weight_kg(Sex(self.sex), self.height_cm)


class WeightRecord(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="weights")
    measured_on = models.DateField()
    weight_kg = models.DecimalField(
        "weight (kg)", max_digits=4, decimal_places=1,
        validators=[MinValueValidator(dosing.WEIGHT_KG[0]), MaxValueValidator(dosing.WEIGHT_KG[1])],
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-measured_on"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "measured_on"], name="one_weight_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.weight_kg} kg on {self.measured_on}"


class TrialOutcome(models.TextChoices):
    NO_RESPONSE = "no_response", "No response"
    PARTIAL_RESPONSE = "partial_response", "Partial response"
    RESPONSE = "response", "Response"
    NOT_TOLERATED = "not_tolerated", "Not tolerated"


FAILED_OUTCOMES = (TrialOutcome.NO_RESPONSE, TrialOutcome.PARTIAL_RESPONSE)


# Every session saved reads it (the dose in mg): compiled once per process (ketacare.prepared).
_WEIGHT_ON = Prepared(lambda patient, day: WeightRecord.objects.filter(
    patient_id=patient, measured_on__lte=day).order_by("-measured_on", "-id")[:1],
    patient=int, day=date)


class PriorTrial(models.Model):
    """A prior antidepressant trial, for verifying treatment resistance (001 checklist)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="prior_trials")
    drug = models.CharField(max_length=100)
    drug_class = models.CharField("class", max_length=30, choices=choices(MedClass))
    dose = models.CharField(max_length=50, blank=True)
    weeks = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(520)]
    )
    adequate = models.BooleanField(
        default=False, help_text="Adequate dose for an adequate duration (usually ≥ 6 weeks)."
    )
    outcome = models.CharField(max_length=20, choices=TrialOutcome.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.drug} ({self.get_outcome_display()})"

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED_OUTCOMES


class MedicationQuerySet(models.QuerySet):
    def active_on(self, day: date) -> "MedicationQuerySet":
        """Started on or before ``day`` and not stopped before it (SPEC §3)."""
        return self.filter(started_on__lte=day).filter(
            Q(stopped_on__isnull=True) | Q(stopped_on__gte=day)
        )


class Medication(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medications")
    name = models.CharField(max_length=100)
    drug_class = models.CharField("class", max_length=30, choices=choices(MedClass))
    dose = models.CharField(max_length=100, blank=True, help_text="e.g. 1 mg twice daily")
    started_on = models.DateField()
    stopped_on = models.DateField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = MedicationQuerySet.as_manager()

    class Meta:
        # Whatever the letter case it was typed in (a pasted "Lithium" beside "clonazepam").
        ordering = [Lower("name"), "started_on", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def unclassified(self) -> bool:
        return self.drug_class == MedClass.UNCLASSIFIED
