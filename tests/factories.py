"""factory-boy factories for synthetic test data (no real patient data anywhere)."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import Role, User
from assessments.models import Assessment
from clinic.models import Appointment
from clinical.vocab import Diagnosis, Instrument, Intensity, MedClass, Route, Sex
from courses.models import Course, TreatmentSession, WeightBasis
from patients.models import Medication, Patient, PriorTrial, TrialOutcome, WeightRecord

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    role = Role.CLINICIAN
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create, extracted, **kwargs):
        if create:
            self.save()


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    record_number = factory.Sequence(lambda n: f"MRN{n:05d}")
    first_name = factory.Sequence(lambda n: f"Pat{n}")
    last_name = factory.Sequence(lambda n: f"Synthetic{n}")
    date_of_birth = date(1980, 1, 1)
    sex = Sex.FEMALE
    height_cm = Decimal("165.0")
    diagnosis = Diagnosis.MDD


class WeightFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WeightRecord

    patient = factory.SubFactory(PatientFactory)
    measured_on = date(2026, 1, 1)
    weight_kg = Decimal("80.0")
    recorded_by = factory.SubFactory(UserFactory)


class PriorTrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriorTrial

    patient = factory.SubFactory(PatientFactory)
    drug = "sertraline"
    drug_class = MedClass.SSRI
    weeks = 8
    adequate = True
    outcome = TrialOutcome.NO_RESPONSE
    recorded_by = factory.SubFactory(UserFactory)


class MedicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Medication

    patient = factory.SubFactory(PatientFactory)
    name = "clonazepam"
    drug_class = MedClass.BENZODIAZEPINE
    dose = "1 mg"
    started_on = date(2025, 6, 1)
    recorded_by = factory.SubFactory(UserFactory)


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    patient = factory.SubFactory(PatientFactory)
    started_on = date(2026, 2, 1)
    created_by = factory.SubFactory(UserFactory)


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TreatmentSession

    course = factory.SubFactory(CourseFactory)
    started_at = factory.LazyAttribute(lambda o: at(o.course.started_on + timedelta(days=1)))
    route = Route.IV
    dose_mg_per_kg = Decimal("0.5")
    dose_mg = Decimal("40.0")
    weight_basis = WeightBasis.ACTUAL
    weight_kg_used = Decimal("80.0")
    infusion_minutes = 40
    clinician = factory.SubFactory(UserFactory)


class IntranasalSessionFactory(SessionFactory):
    """An intranasal esketamine session with every answer the REMS form asks (SPEC §8)."""

    route = Route.INTRANASAL
    dose_mg_per_kg = None
    dose_mg = Decimal("56.0")
    weight_basis = ""
    weight_kg_used = None
    infusion_minutes = None
    bp_pre_systolic, bp_pre_diastolic = 128, 80
    bp_40_systolic, bp_40_diastolic = 142, 88
    bp_discharge_systolic, bp_discharge_diastolic = 126, 78
    spo2_min = 96
    discharged_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=125))
    device_lot = "LOT-24A01"
    ready_minutes = 90
    vitals_ok_before = True
    vitals_ok_completion = True
    sedation = False
    dissociation = Intensity.MILD  # what the REMS answer below says
    dissociation_seen = True
    dissociation_seen_details = "mild, resolved by 60 minutes"
    respiratory_depression = False
    serious_adverse_event = False


class AssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assessment

    course = factory.SubFactory(CourseFactory)
    instrument = Instrument.MADRS
    administered_at = factory.LazyAttribute(lambda o: at(o.course.started_on, 8))
    items = [4, 4, 4, 4, 3, 4, 3, 4, 3, 3]
    total = factory.LazyAttribute(lambda o: sum(o.items) if o.items else 0)
    scored_by = factory.SubFactory(UserFactory)
    signed_at = factory.LazyFunction(timezone.now)


class AppointmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appointment

    course = factory.SubFactory(CourseFactory)
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    route = Route.IV
    dose_mg_per_kg = Decimal("0.5")
    booked_by = factory.SubFactory(UserFactory)
    booked_at = factory.LazyFunction(timezone.now)


# A valid post of the clinic settings page: the guidance's defaults (SPEC §7).
CLINIC_SETTINGS_POST = {
    "induction_sessions": "6", "induction_per_week_min": "2", "induction_per_week_max": "3",
    "esketamine_induction_weeks": "4", "esketamine_induction_per_week": "2",
    "esketamine_weekly_weeks": "4", "esketamine_later_min_weeks": "1",
    "esketamine_later_max_weeks": "2", "spacing_weekly_sessions": "4",
    "spacing_biweekly_min": "4", "spacing_biweekly_max": "8", "spacing_triweekly_sessions": "4",
    "spacing_monthly_min": "3", "spacing_monthly_max": "6", "spacing_month_days": "28",
    "default_time": "09:00",
}


def sent_self_report_link(course: Course, clinician: User):
    """A weekly self-report plan on ``course`` with its first invitation sent and not yet
    answered: the plan and the link's token (only its hash is stored)."""
    from selfreport import links
    from selfreport.models import Invitation, Plan, Schedule, Status

    plan = Plan.objects.create(course=course, schedule=Schedule.WEEKLY, created_by=clinician)
    token, now = links.new_token(), timezone.now()
    Invitation.objects.create(
        plan=plan, course=course, slot="week-1", due_at=now, next_attempt_at=now,
        status=Status.SENT, sent_at=now, token_hash=links.digest(token),
        expires_at=links.expiry(now),
    )
    return plan, token
