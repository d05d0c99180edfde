"""The clinic's own settings (one row) and each course's plan and appointments (SPEC §7)."""

from dataclasses import fields as dataclass_fields
from datetime import time
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from clinical.schedules import Defaults, Schedule, Step, describe
from clinical.vocab import Route, choices
from courses.models import Course, TreatmentSession
from ketacare.validators import PHONE


def _count(label: str, default: int, high: int = 20, low: int = 1):
    return models.PositiveSmallIntegerField(
        label, default=default, validators=[MinValueValidator(low), MaxValueValidator(high)]
    )


class ClinicSettings(models.Model):
    """The clinic's settings: one row (pk 1), read with :meth:`load`, changed by
    ``clinic.actions.update_settings`` (audited, before and after).

    Today it holds the schedule defaults of SPEC §7. The clinic's name, address and telephone
    (the REMS form's healthcare setting, SPEC §8) belong here too: add the fields, and they
    join the same settings page (``clinic.forms.ClinicSettingsForm`` lists the fields)."""

    # IV/IM induction (001 titration table, 000)
    induction_sessions = _count("IV/IM induction: sessions", 6)
    induction_per_week_min = _count("IV/IM induction: fewest a week", 2, 7)
    induction_per_week_max = _count("IV/IM induction: most a week", 3, 7)
    # Intranasal esketamine (001 esketamine table)
    esketamine_induction_weeks = _count("Esketamine induction: weeks", 4, 12)
    esketamine_induction_per_week = _count("Esketamine induction: sessions a week", 2, 7)
    esketamine_weekly_weeks = _count("Esketamine: weeks of weekly sessions after induction", 4,
                                     12, 0)
    esketamine_later_min_weeks = _count("Esketamine afterwards: every … weeks, at least", 1, 8)
    esketamine_later_max_weeks = _count("Esketamine afterwards: every … weeks, at most", 2, 8)
    # Maintenance by gradual spacing (001 "gradual spacing protocol")
    spacing_weekly_sessions = _count("Gradual spacing: weekly sessions", 4, 20, 0)
    spacing_biweekly_min = _count("Gradual spacing: every 2 weeks, fewest sessions", 4, 20, 0)
    spacing_biweekly_max = _count("Gradual spacing: every 2 weeks, most sessions", 8, 20, 0)
    spacing_triweekly_sessions = _count("Gradual spacing: every 3 weeks, sessions", 4, 20, 0)
    spacing_monthly_min = _count("Gradual spacing: monthly, fewest sessions", 3, 20, 0)
    spacing_monthly_max = _count("Gradual spacing: monthly, most sessions", 6, 20, 0)
    spacing_month_days = _count("Gradual spacing: days in a “month”", 28, 31, 28)
    # Booking
    book_weekends = models.BooleanField(
        "propose Saturdays and Sundays", default=False,
        help_text="When off, a date proposed by the plan that falls on a weekend moves to "
        "Monday.",
    )
    default_time = models.TimeField(
        "usual appointment time", default=time(9, 0),
        help_text="The time proposed for a course's first appointment.",
    )
    # The healthcare setting on the REMS monitoring form (SPEC §8)
    setting_name = models.CharField("setting name", max_length=120, blank=True)
    address = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=80, blank=True)
    state = models.CharField(max_length=2, blank=True, help_text="Two letters, e.g. NY.",
                             validators=[RegexValidator(r"^[A-Za-z]{2}$", "Two letters.")])
    zip_code = models.CharField("ZIP", max_length=10, blank=True,
                                validators=[RegexValidator(r"^\d{5}(-\d{4})?$",
                                                           "Five digits, or 5+4.")])
    telephone = models.CharField(max_length=30, blank=True, validators=[PHONE])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinic settings"
        verbose_name_plural = "clinic settings"

    def __str__(self) -> str:
        return "Clinic settings"

    @classmethod
    def load(cls) -> "ClinicSettings":
        """The clinic's settings; the defaults (unsaved) before anyone has changed them."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def defaults(self) -> Defaults:
        return Defaults(**{f.name: getattr(self, f.name) for f in dataclass_fields(Defaults)})

    def steps(self, schedule: Schedule) -> list[Step]:
        return self.defaults().steps(schedule)


class Plan(models.Model):
    """A course's plan: route, dose and schedule. The schedule's steps are copied from the
    clinic's defaults when chosen, so a later change of a default leaves this plan alone."""

    course = models.OneToOneField(Course, on_delete=models.PROTECT, related_name="plan")
    route = models.CharField(max_length=20, choices=choices(Route))
    dose_mg_per_kg = models.DecimalField(
        "dose (mg/kg)", max_digits=4, decimal_places=3, null=True, blank=True
    )
    dose_mg = models.DecimalField("dose (mg)", max_digits=6, decimal_places=1, null=True,
                                  blank=True)
    schedule = models.CharField(max_length=30, choices=choices(Schedule))
    steps = models.JSONField(default=list)
    starts_on = models.DateField(
        "counting from", help_text="Sessions from this day on count toward the schedule."
    )
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    set_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.get_route_display()} {self.dose_display}, {self.schedule_text}"

    @property
    def step_list(self) -> list[Step]:
        return [Step.from_json(step) for step in self.steps]

    @property
    def schedule_text(self) -> str:
        return describe(self.step_list)

    @property
    def dose_display(self) -> str:
        return dose_text(self.dose_mg_per_kg, self.dose_mg)


def plain(value: Decimal | None) -> Decimal | None:
    """A dose as typed (56, not 56.0), for a form's initial value."""
    return None if value is None else value.normalize()


def dose_text(per_kg: Decimal | None, mg: Decimal | None) -> str:
    if per_kg is not None:
        return f"{per_kg.normalize():f} mg/kg"
    if mg is not None:
        return f"{mg.normalize():f} mg"
    return ""


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class AppointmentQuerySet(models.QuerySet):
    def booked(self) -> "AppointmentQuerySet":
        return self.filter(status=AppointmentStatus.BOOKED)


class Appointment(models.Model):
    """A booked session of a course. Moved (audited, before and after), cancelled with a
    reason, or done: linked to the session that fulfilled it."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField("date and time")
    route = models.CharField("planned route", max_length=20, choices=choices(Route))
    dose_mg_per_kg = models.DecimalField(
        "planned dose (mg/kg)", max_digits=4, decimal_places=3, null=True, blank=True
    )
    dose_mg = models.DecimalField("planned dose (mg)", max_digits=6, decimal_places=1,
                                  null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=AppointmentStatus.choices,
                              default=AppointmentStatus.BOOKED)
    cancel_reason = models.CharField("reason for cancelling", max_length=200, blank=True)
    session = models.OneToOneField(
        TreatmentSession, null=True, blank=True, on_delete=models.PROTECT,
        related_name="appointment",
    )
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    booked_at = models.DateTimeField()
    # The form's one-time token: a double click books once.
    submission_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            # The day sheet: a day's appointments in time order.
            models.Index(fields=["starts_at"], name="appointment_day_idx"),
            # A course's next booked appointment; courses with none ahead.
            models.Index(fields=["course", "starts_at"], name="appointment_booked_idx",
                         condition=Q(status="booked")),
        ]

    def __str__(self) -> str:
        return f"Appointment {self.pk} at {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def dose_display(self) -> str:
        return dose_text(self.dose_mg_per_kg, self.dose_mg)

    @property
    def is_booked(self) -> bool:
        return self.status == AppointmentStatus.BOOKED
