from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from clinical import dosing
from clinical.vocab import Intensity, Phase, Route, SessionStatus, Status, choices
from ketacare.validators import LOT_NUMBER
from patients.models import Patient


class EndReason(models.TextChoices):
    COMPLETED = "completed", "Course completed"
    NON_RESPONSE = "non_response", "Discontinued: non-response"
    ADVERSE_EFFECTS = "adverse_effects", "Discontinued: adverse effects"
    PATIENT_CHOICE = "patient_choice", "Patient's choice"
    TRANSFERRED = "transferred", "Transferred to another service"
    OTHER = "other", "Other"


class CourseQuerySet(models.QuerySet):
    def active(self) -> "CourseQuerySet":
        return self.exclude(phase=Phase.ENDED)


class Course(models.Model):
    """One continuous episode of ketamine care; route and dose live on each session."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    started_on = models.DateField()
    phase = models.CharField(max_length=20, choices=choices(Phase), default=Phase.INDUCTION)
    planned_protocol = models.CharField(
        max_length=200, blank=True, help_text="e.g. IV 0.5 mg/kg × 6 over 3 weeks"
    )
    maintenance_started_on = models.DateField(null=True, blank=True, editable=False)
    ended_on = models.DateField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    end_note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The rules engine's latest word on this course (SPEC §5 JSON), refreshed by every action
    # that changes one of its facts, in the same transaction.
    evaluation = models.JSONField(null=True, blank=True, editable=False)
    evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The rules revision the evaluation was computed under (clinical.engine.RULES_REVISION): an
    # older one is stale, re-evaluated on read and by `manage.py reevaluate`.
    rules_revision = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False, db_index=True
    )
    # Copied out of the evaluation and the sessions by refresh_evaluation (and only there), so
    # the outcome dashboard can count courses in SQL (GROUP BY) instead of reading each one.
    status = models.CharField(
        max_length=20, choices=choices(Status), default=Status.INSUFFICIENT_DATA, editable=False
    )
    # The route of most completed sessions (a tie goes to the route used last); "" before the
    # first completed session. The highest dose of its completed sessions in the route's own
    # unit: mg/kg for IV and IM (their mg depends on the weight), mg for the other routes.
    main_route = models.CharField(max_length=20, choices=choices(Route), blank=True,
                                  editable=False)
    highest_dose_mg_per_kg = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, editable=False
    )
    highest_dose_mg = models.DecimalField(
        max_digits=6, decimal_places=1, null=True, blank=True, editable=False
    )
    first_session_on = models.DateField(null=True, blank=True, editable=False)
    # The day of the first current primary-instrument score after the first session that
    # classifies as response or remission; the days since the first session's day and the
    # completed sessions before it.
    responded_on = models.DateField(null=True, blank=True, editable=False)
    days_to_response = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    sessions_to_response = models.PositiveSmallIntegerField(null=True, blank=True,
                                                            editable=False)
    # SPEC §3 "an optimization is recorded", as the engine reads it (CourseState.optimizations:
    # a dose or route change between sessions, an accepted treatment-changing flag, lithium
    # started after the first session): the outcome dashboard's "none tried" is its negation.
    optimized = models.BooleanField(default=False, editable=False)

    # When the course's latest session not voided started, kept by refresh_evaluation (every
    # session change calls it): the day sheet's "nothing booked" reads it from an index.
    last_session_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Copied out of the evaluation and the course's flag decisions by refresh_evaluation (and
    # only there: courses.evaluation.open_flag_fields): how many flags raised now no decision
    # answers, and the rank of the most severe of them (0 critical, 1 warning, 2 info; null when
    # none). The day sheet reads the clinic's undecided flags from these, not every evaluation.
    open_flags = models.PositiveSmallIntegerField(default=0, editable=False)
    open_flag_rank = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    objects = CourseQuerySet.as_manager()

    class Meta:
        ordering = ["-started_on", "-id"]
        indexes = [
            # The outcome dashboard's GROUP BYs read only these covering indexes, in their
            # order: no sort and no table rows (with their large evaluation JSON). No index
            # leads with started_on, so the planner does not trade them for a range scan.
            models.Index(
                fields=["status", "main_route", "highest_dose_mg_per_kg", "highest_dose_mg",
                        "optimized", "started_on"],
                name="course_outcomes_idx",
            ),
            models.Index(
                fields=["main_route", "days_to_response", "sessions_to_response", "started_on"],
                condition=models.Q(days_to_response__isnull=False),
                name="course_response_idx",
            ),
            # The dashboard's optimizations tried join the accepted decisions to their courses'
            # period and status in course_tried_idx (PostgreSQL only, INCLUDE: migration 0011).
            # The day sheet's courses with nothing booked, the longest since a session first,
            # read course_last_session_idx (PostgreSQL only, NULLS FIRST: migration 0009).
            # The day sheet's undecided flags: the open courses with one, most severe first, then
            # the latest changed; with the count, so the sum of them all reads the index alone.
            models.Index(
                fields=["open_flag_rank", "-evaluated_at", "-id", "open_flags"],
                condition=models.Q(open_flag_rank__isnull=False) & ~models.Q(phase="ended"),
                name="course_open_flags_idx",
            ),
        ]
        constraints = [
            # SPEC §7: a patient has at most one course that is not ended. The new-course form
            # says so first; this is what holds when two clinicians start one at once.
            models.UniqueConstraint(
                fields=["patient"], condition=~models.Q(phase=Phase.ENDED.value),
                name="one_open_course_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"Course {self.pk} from {self.started_on}"

    @property
    def is_active(self) -> bool:
        return self.phase != Phase.ENDED


class PhaseChange(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="phase_changes")
    from_phase = models.CharField(max_length=20, choices=choices(Phase), blank=True)
    to_phase = models.CharField(max_length=20, choices=choices(Phase))
    effective_on = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["effective_on", "id"]

    def __str__(self) -> str:
        return f"{self.from_phase or 'start'} → {self.to_phase} on {self.effective_on}"


class WeightBasis(models.TextChoices):
    ACTUAL = "actual", "Actual body weight"
    IDEAL = "ideal", "Ideal body weight (Devine)"


def _bp_field(label: str, low: int, high: int):
    return models.PositiveSmallIntegerField(
        label, null=True, blank=True,
        validators=[MinValueValidator(low), MaxValueValidator(high)],
    )


def _yes_no(label: str):
    return models.BooleanField(label, null=True, blank=True)


def _details(label: str):
    return models.CharField(label, max_length=300, blank=True)
def dose_display(dose_mg_per_kg, dose_mg) -> str:
    """A session's dose as the record shows it: "0.5 mg/kg (40.0 mg)", or "56 mg"."""
    if dose_mg_per_kg is not None:
        return f"{dose_mg_per_kg.normalize():f} mg/kg ({dose_mg} mg)"
    return f"{dose_mg.normalize():f} mg"


class TreatmentSessionQuerySet(models.QuerySet):
    def current(self) -> "TreatmentSessionQuerySet":
        """Sessions not voided: the ones that count (the rules, reports, exports)."""
        return self.filter(void__isnull=True)


class TreatmentSession(models.Model):
    """A dosing session. Corrected by amendments (SessionAmendment: each keeps the value it
    replaced) and voided by a SessionVoid row; never deleted."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="sessions")
    started_at = models.DateTimeField("date and time")
    route = models.CharField(max_length=20, choices=choices(Route))
    dose_mg_per_kg = models.DecimalField(
        "dose (mg/kg)", max_digits=4, decimal_places=3, null=True, blank=True
    )
    dose_mg = models.DecimalField("dose (mg)", max_digits=6, decimal_places=1)
    weight_basis = models.CharField(max_length=10, choices=WeightBasis.choices, blank=True)
    weight_kg_used = models.DecimalField(
        "weight used (kg)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    infusion_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True,
        validators=[
            MinValueValidator(dosing.INFUSION_MINUTES[0]),
            MaxValueValidator(dosing.INFUSION_MINUTES[1]),
        ],
    )
    enhanced_monitoring = models.BooleanField(
        "enhanced monitoring confirmed", default=False,
        help_text="Required above 0.75 mg/kg: enhanced cardiovascular monitoring, 90–120 min "
        "recovery.",
    )
    bp_pre_systolic = _bp_field("BP before, systolic", 50, 300)
    bp_pre_diastolic = _bp_field("BP before, diastolic", 20, 200)
    bp_peak_systolic = _bp_field("BP peak, systolic", 50, 300)
    bp_peak_diastolic = _bp_field("BP peak, diastolic", 20, 200)
    bp_discharge_systolic = _bp_field("BP at discharge, systolic", 50, 300)
    bp_discharge_diastolic = _bp_field("BP at discharge, diastolic", 20, 200)
    hr_pre = _bp_field("heart rate before", 20, 250)
    hr_peak = _bp_field("heart rate peak", 20, 250)
    hr_discharge = _bp_field("heart rate at discharge", 20, 250)
    spo2_min = _bp_field("lowest SpO2 (%)", 50, 100)
    dissociation = models.CharField(
        max_length=10, choices=choices(Intensity), default=Intensity.NONE
    )
    benzodiazepine_24h = models.BooleanField("benzodiazepine in the 24 h before", default=False)
    recovery_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(1440)]
    )
    discharged_at = models.DateTimeField("discharge time", null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=choices(SessionStatus), default=SessionStatus.COMPLETED
    )
    stop_reason = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Intranasal esketamine: what the Spravato REMS monitoring form asks (SPEC §8). Blank or
    # null until given; the form lists what is missing (rems.filling).
    device_lot = models.CharField("device lot number", max_length=20, blank=True,
                                  validators=[LOT_NUMBER])
    bp_40_systolic = _bp_field("BP at 40 min, systolic", 50, 300)
    bp_40_diastolic = _bp_field("BP at 40 min, diastolic", 20, 200)
    sedation = _yes_no("sedation")
    sedation_details = _details("sedation: details")
    dissociation_seen = _yes_no("dissociation")
    dissociation_seen_details = _details("dissociation: details")
    respiratory_depression = _yes_no("respiratory depression")
    respiratory_depression_details = _details("respiratory depression: details")
    serious_adverse_event = _yes_no("serious adverse event (hospitalised or emergency care)")
    serious_adverse_event_details = _details("serious adverse event: details")
    ready_minutes = models.PositiveSmallIntegerField(
        "ready to leave after (minutes)", null=True, blank=True,
        validators=[MaxValueValidator(1440)],
        help_text="When the patient would have been ready to leave without the 2-hour rule.",
    )
    vitals_ok_before = models.BooleanField("vital signs acceptable before administration",
                                           null=True, blank=True)
    vitals_ok_completion = models.BooleanField("vital signs acceptable before completion",
                                               null=True, blank=True)
    # The form's one-time token: a double click or a retried POST cannot log the session twice.
    submission_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    # SPEC §7 "before a session is saved": what the clinician confirmed on being warned.
    confirmed_critical_bp = models.BooleanField(
        "blood pressure above the critical limit confirmed", default=False
    )
    confirmed_recent_session = models.BooleanField(
        "another session less than 24 h away confirmed", default=False
    )
    confirmed_old_weight = models.BooleanField(
        "weight on record older than 90 days confirmed", default=False
    )
    # Bumped by every amendment and by a void: the second of two concurrent corrections,
    # read at the same version, is refused instead of silently undoing the first.
    version = models.PositiveIntegerField(default=0, editable=False)

    objects = TreatmentSessionQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["course", "started_at"])]

    def __str__(self) -> str:
        return f"{self.get_route_display()} on {self.started_at:%Y-%m-%d}"

    @property
    def voided(self) -> "SessionVoid | None":
        """Its void, or None (select_related("void") where a list asks this of each)."""
        try:
            return self.void
        except ObjectDoesNotExist:
            return None

    @property
    def dose_display(self) -> str:
        return dose_display(self.dose_mg_per_kg, self.dose_mg)

    @property
    def worst_adverse_event(self) -> Intensity:
        ranks = [Intensity(e.severity) for e in self.adverse_events.all()]
        return max(ranks, key=lambda i: i.rank, default=Intensity.NONE)


# The confirmation fields of TreatmentSession (SPEC §7 "before a session is saved").
CONFIRMATIONS = ("confirmed_critical_bp", "confirmed_recent_session", "confirmed_old_weight")


class AmendmentKind(models.TextChoices):
    AMENDMENT = "amendment", "Amendment"
    DISCHARGE = "discharge", "Discharge completed"


class SessionAmendment(models.Model):
    """One field of a session changed after it was saved: signed, dated, with the value it
    replaced (STYLE 17). The session holds the current value; these rows hold the history."""

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="amendments"
    )
    kind = models.CharField(max_length=10, choices=AmendmentKind.choices)
    field = models.CharField(max_length=40)
    label = models.CharField(max_length=80, help_text="The field's label when amended.")
    before = models.TextField(blank=True, help_text="As shown: the value it replaced.")
    after = models.TextField(blank=True, help_text="As shown: the new value.")
    reason = models.CharField(max_length=200, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.label}: {self.before} → {self.after}"


class SessionVoid(models.Model):
    """A session entered in error: kept and shown struck through, counted for nothing."""

    session = models.OneToOneField(
        TreatmentSession, on_delete=models.PROTECT, related_name="void"
    )
    reason = models.CharField(max_length=200)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    voided_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"voided {self.voided_at:%Y-%m-%d}: {self.reason}"


class AdverseEvent(models.Model):
    session = models.ForeignKey(
        TreatmentSession, on_delete=models.CASCADE, related_name="adverse_events"
    )
    description = models.CharField(max_length=200)
    severity = models.CharField(
        max_length=10,
        choices=[c for c in choices(Intensity) if c[0] != Intensity.NONE],
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.description} ({self.severity})"


class Decision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class ActionTaken(models.TextChoices):
    DOSE_CHANGE = "dose_change", "Dose changed"
    INFUSION_RATE = "infusion_rate", "Infusion rate changed"
    ROUTE_CHANGE = "route_change", "Route changed"
    MEDICATION_CHANGE = "medication_change", "Medication changed (hold, taper, start, stop)"
    SCHEDULE_CHANGE = "schedule_change", "Schedule or phase changed"
    REFERRAL = "referral", "Referred or reviewed"
    MONITORING = "monitoring", "Monitoring added"
    OTHER = "other", "Other"


class FlagDecision(models.Model):
    """A clinician's signed answer to a flag: accepted (with what was done) or declined (with
    why). Never edited or deleted: they are the course's record of optimization attempts."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="decisions")
    code = models.CharField(max_length=40)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    action = models.CharField(max_length=20, choices=ActionTaken.choices, blank=True)
    detail = models.CharField("what was done", max_length=300, blank=True)
    reason = models.CharField("reason for declining", max_length=300, blank=True)
    flag_message = models.TextField(help_text="The flag's message when decided: its facts.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["decided_at", "id"]
        indexes = [
            models.Index(fields=["course", "code"]),
            # The outcome dashboard's optimizations tried: the accepted decisions first.
            models.Index(fields=["decision", "action", "code", "course"],
                         name="decision_tried_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.decision} on {self.decided_at:%Y-%m-%d}"
