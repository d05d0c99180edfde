"""MADRS and PHQ-9: items, anchor wording, totals and severity bands (SPEC §1).

A total is always computed from item scores; :func:`validate_items` names the item that is
missing or out of range in words a clinician understands.
"""

from dataclasses import dataclass

from clinical.vocab import Instrument


@dataclass(frozen=True)
class Item:
    number: int
    label: str
    anchors: dict[int, str]  # score -> wording shown beside the choice


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True)
class InstrumentDef:
    code: Instrument
    name: str
    items: tuple[Item, ...]
    item_max: int
    bands: tuple[Band, ...]
    default_remission: int  # total at or below which the patient is in remission

    @property
    def item_count(self) -> int:
        return len(self.items)

    @property
    def total_max(self) -> int:
        return self.item_count * self.item_max

    def band(self, total: int) -> str:
        for band in self.bands:
            if band.low <= total <= band.high:
                return band.label
        raise ValueError(f"{self.name} total {total} is outside 0–{self.total_max}")

    def total(self, items: list[int] | tuple[int, ...]) -> int:
        validate_items(self, items)
        return sum(items)


class ItemError(ValueError):
    """An item score is missing or out of range; ``item`` is its 1-based number (0: the count)."""

    def __init__(self, item: int, message: str):
        super().__init__(message)
        self.item = item


def validate_items(definition: InstrumentDef, items) -> None:
    if items is None or len(items) != definition.item_count:
        got = "none" if items is None else len(items)
        raise ItemError(
            0, f"{definition.name} needs {definition.item_count} item scores, got {got}"
        )
    for item, score in zip(definition.items, items, strict=True):
        if score is None:
            raise ItemError(item.number, f"item {item.number} ({item.label}) is required")
        if isinstance(score, bool) or not isinstance(score, int):
            raise ItemError(
                item.number, f"item {item.number} ({item.label}) must be a whole number"
            )
        if not 0 <= score <= definition.item_max:
            raise ItemError(
                item.number,
                f"item {item.number} ({item.label}) must be 0–{definition.item_max}, got {score}",
            )


def _madrs_item(number: int, label: str, a0: str, a2: str, a4: str, a6: str) -> Item:
    """MADRS defines anchors at 0, 2, 4 and 6; odd scores lie between two anchors."""
    anchors = {0: a0, 2: a2, 4: a4, 6: a6}
    for odd in (1, 3, 5):
        anchors[odd] = f"between {odd - 1} and {odd + 1}"
    return Item(number, label, dict(sorted(anchors.items())))


MADRS = InstrumentDef(
    code=Instrument.MADRS,
    name="MADRS",
    item_max=6,
    default_remission=10,
    bands=(
        Band(0, 6, "normal"),
        Band(7, 19, "mild"),
        Band(20, 34, "moderate"),
        Band(35, 60, "severe"),
    ),
    items=(
        _madrs_item(1, "Apparent sadness", "No sadness",
                    "Looks dispirited but does brighten up without difficulty",
                    "Appears sad and unhappy most of the time",
                    "Looks miserable all the time; extremely despondent"),
        _madrs_item(2, "Reported sadness", "Occasional sadness in keeping with circumstances",
                    "Sad or low but brightens up without difficulty",
                    "Pervasive feelings of sadness or gloominess; mood still influenced by events",
                    "Continuous or unvarying sadness, misery or despondency"),
        _madrs_item(3, "Inner tension", "Placid; only fleeting inner tension",
                    "Occasional feelings of edginess and ill-defined discomfort",
                    "Continuous inner tension or intermittent panic, mastered with some difficulty",
                    "Unrelenting dread or anguish; overwhelming panic"),
        _madrs_item(4, "Reduced sleep", "Sleeps as usual",
                    "Slight difficulty dropping off or slightly reduced, light or fitful sleep",
                    "Sleep reduced or broken by at least two hours",
                    "Less than two or three hours' sleep"),
        _madrs_item(5, "Reduced appetite", "Normal or increased appetite",
                    "Slightly reduced appetite",
                    "No appetite; food is tasteless",
                    "Needs persuasion to eat at all"),
        _madrs_item(6, "Concentration difficulties", "No difficulties in concentrating",
                    "Occasional difficulties in collecting one's thoughts",
                    "Difficulties in concentrating and sustaining thought that reduce the ability "
                    "to read or hold a conversation",
                    "Unable to read or converse without great difficulty"),
        _madrs_item(7, "Lassitude", "Hardly any difficulty in getting started; no sluggishness",
                    "Difficulties in starting activities",
                    "Difficulties in starting simple routine activities, carried out with effort",
                    "Complete lassitude; unable to do anything without help"),
        _madrs_item(8, "Inability to feel", "Normal interest in surroundings and other people",
                    "Reduced ability to enjoy usual interests",
                    "Loss of interest in surroundings; loss of feelings for friends",
                    "Emotionally paralysed; unable to feel anger, grief or pleasure"),
        _madrs_item(9, "Pessimistic thoughts", "No pessimistic thoughts",
                    "Fluctuating ideas of failure, self-reproach or self-depreciation",
                    "Persistent self-accusations, or definite but still rational ideas of guilt "
                    "or sin; increasingly pessimistic about the future",
                    "Delusions of ruin, remorse or unredeemable sin; absurd, unshakable "
                    "self-accusations"),
        _madrs_item(10, "Suicidal thoughts", "Enjoys life or takes it as it comes",
                    "Weary of life; only fleeting suicidal thoughts",
                    "Probably better off dead; suicidal thoughts are common and suicide is "
                    "considered a possible solution, without specific plans",
                    "Explicit plans for suicide when there is an opportunity; active "
                    "preparations for suicide"),
    ),
)

_PHQ9_ANSWERS = {0: "Not at all", 1: "Several days", 2: "More than half the days",
                 3: "Nearly every day"}

PHQ9 = InstrumentDef(
    code=Instrument.PHQ9,
    name="PHQ-9",
    item_max=3,
    default_remission=4,
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
    items=tuple(
        Item(number, label, dict(_PHQ9_ANSWERS))
        for number, label in enumerate(
            (
                "Little interest or pleasure in doing things",
                "Feeling down, depressed, or hopeless",
                "Trouble falling or staying asleep, or sleeping too much",
                "Feeling tired or having little energy",
                "Poor appetite or overeating",
                "Feeling bad about yourself, or that you are a failure or have let yourself "
                "or your family down",
                "Trouble concentrating on things, such as reading or watching television",
                "Moving or speaking so slowly that other people could have noticed, or the "
                "opposite: being so fidgety or restless that you have been moving around a "
                "lot more than usual",
                "Thoughts that you would be better off dead or of hurting yourself in some way",
            ),
            start=1,
        )
    ),
)

# The unscored tenth PHQ-9 question.
PHQ9_DIFFICULTY = (
    ("not_difficult", "Not difficult at all"),
    ("somewhat", "Somewhat difficult"),
    ("very", "Very difficult"),
    ("extremely", "Extremely difficult"),
)

INSTRUMENTS: dict[Instrument, InstrumentDef] = {MADRS.code: MADRS, PHQ9.code: PHQ9}
