"""The typed facts the rules engine reads (SPEC §5 input), built by the web app from the
database or by :mod:`clinical.jsonio` from JSON. Times are timezone-aware."""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from clinical.vocab import (
    Diagnosis,
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
)


@dataclass(frozen=True)
class FailedTrial:
    drug: str
    drug_class: MedClass
    adequate: bool


@dataclass(frozen=True)
class PatientFacts:
    diagnosis: Diagnosis
    psychotic_features: bool = False
    weight_kg: Decimal | None = None
    failed_trials: tuple[FailedTrial, ...] = ()


@dataclass(frozen=True)
class MedicationFact:
    name: str
    drug_class: MedClass
    start: date
    stop: date | None = None

    def active_on(self, day: date) -> bool:
        """Started on or before ``day`` and not stopped before it (SPEC §3)."""
        return self.start <= day and (self.stop is None or self.stop >= day)


@dataclass(frozen=True)
class SessionFact:
    at: datetime
    route: Route
    dose_mg_per_kg: Decimal | None = None  # IV and IM
    dose_mg: Decimal | None = None  # the other routes (and the computed mg for IV/IM)
    minutes: int | None = None
    dissociation: Intensity = Intensity.NONE
    adverse_event_severity: Intensity = Intensity.NONE  # the worst adverse event of the session
    benzodiazepine_24h: bool = False
    bp_pre: tuple[int, int] | None = None
    discharged_at: datetime | None = None
    enhanced_monitoring: bool = False
    status: SessionStatus = SessionStatus.COMPLETED


@dataclass(frozen=True)
class AssessmentFact:
    at: datetime
    instrument: Instrument
    total: int
    items: tuple[int, ...] | None = None  # None for an imported total


@dataclass(frozen=True)
class CourseFacts:
    patient: PatientFacts
    phase: Phase = Phase.INDUCTION
    maintenance_started: date | None = None
    as_of: datetime | None = None
    medications: tuple[MedicationFact, ...] = ()
    sessions: tuple[SessionFact, ...] = ()
    assessments: tuple[AssessmentFact, ...] = ()
    accepted_flags: frozenset[str] = field(default_factory=frozenset)
