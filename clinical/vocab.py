"""The spellings of SPEC §5, shared by the engine, the JSON format and the Django models.

Each enum's value is the wire spelling; ``label`` is what a clinician reads. Models build their
``choices`` from these with :func:`choices`, so one list of spellings serves everywhere.
"""

from enum import StrEnum


class Vocab(StrEnum):
    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())


def choices(enum: type[Vocab]) -> list[tuple[str, str]]:
    return [(member.value, member.label) for member in enum]


class Diagnosis(Vocab):
    MDD = "mdd"
    BIPOLAR_I = "bipolar_i"
    BIPOLAR_II = "bipolar_ii"
    OTHER = "other"


class Sex(Vocab):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"  # the REMS monitoring form asks male, female or other (SPEC §8)
    UNKNOWN = "unknown"


class Route(Vocab):
    IV = "iv"
    IM = "im"
    INTRANASAL = "intranasal"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"

    @property
    def weight_based(self) -> bool:
        """IV and IM doses are prescribed in mg/kg; the other routes in mg (SPEC §2)."""
        return self in _WEIGHT_BASED_ROUTES  # a tuple: compared by identity, no lookups


class Intensity(Vocab):
    """Dissociation, and the severity of an adverse event."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"

    @property
    def rank(self) -> int:
        return _INTENSITY_RANK[self]


class SessionStatus(Vocab):
    COMPLETED = "completed"
    STOPPED = "stopped"


class Phase(Vocab):
    INDUCTION = "induction"
    EXTENDED_INDUCTION = "extended_induction"
    TRANSITION = "transition"
    MAINTENANCE = "maintenance"
    ENDED = "ended"


class Instrument(Vocab):
    MADRS = "madrs"
    PHQ9 = "phq9"


class MedClass(Vocab):
    BENZODIAZEPINE = "benzodiazepine"
    NALTREXONE = "naltrexone"
    MEMANTINE = "memantine"
    MAOI = "maoi"
    LAMOTRIGINE = "lamotrigine"
    OPIOID = "opioid"
    LITHIUM = "lithium"
    VALPROATE = "valproate"
    CARBAMAZEPINE = "carbamazepine"
    SSRI = "ssri"
    SNRI = "snri"
    TCA = "tca"
    BUPROPION = "bupropion"
    ATYPICAL_ANTIPSYCHOTIC = "atypical_antipsychotic"
    SEDATIVE_HYPNOTIC = "sedative_hypnotic"  # non-benzodiazepine (r2, the REMS form)
    PSYCHOSTIMULANT = "psychostimulant"  # r2, the REMS form
    OTHER = "other"
    UNCLASSIFIED = "unclassified"


MOOD_STABILIZERS = frozenset(
    {MedClass.LITHIUM, MedClass.VALPROATE, MedClass.LAMOTRIGINE, MedClass.CARBAMAZEPINE}
)


class Status(Vocab):
    INSUFFICIENT_DATA = "insufficient_data"
    REMISSION = "remission"
    RESPONSE = "response"
    PARTIAL_RESPONSE = "partial_response"
    NON_RESPONSE = "non_response"


class Trajectory(Vocab):
    IMPROVING = "improving"
    WORSENING = "worsening"
    PLATEAU = "plateau"
    INSUFFICIENT = "insufficient"


class FlagSeverity(Vocab):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 is the most severe: sort flags by this."""
        return _SEVERITY_RANK[self]


_WEIGHT_BASED_ROUTES = (Route.IV, Route.IM)
_INTENSITY_RANK = {member: rank for rank, member in enumerate(Intensity)}
_SEVERITY_RANK = {member: rank for rank, member in enumerate(FlagSeverity)}

_LABELS: dict[Vocab, str] = {
    Diagnosis.MDD: "Major depressive disorder",
    Diagnosis.BIPOLAR_I: "Bipolar I disorder",
    Diagnosis.BIPOLAR_II: "Bipolar II disorder",
    Route.IV: "IV ketamine",
    Route.IM: "IM ketamine",
    Route.INTRANASAL: "Intranasal esketamine",
    Route.SUBLINGUAL: "Sublingual ketamine",
    Route.ORAL: "Oral ketamine",
    Instrument.MADRS: "MADRS",
    Instrument.PHQ9: "PHQ-9",
    MedClass.MAOI: "MAOI",
    MedClass.SSRI: "SSRI",
    MedClass.SNRI: "SNRI",
    MedClass.TCA: "TCA",
    MedClass.SEDATIVE_HYPNOTIC: "Non-benzodiazepine sedative hypnotic",
    Status.INSUFFICIENT_DATA: "Insufficient data",
    Status.NON_RESPONSE: "Non-response",
    Status.PARTIAL_RESPONSE: "Partial response",
    SessionStatus.STOPPED: "Stopped early",
}
