"""The medication catalogue shipped with the product: generic and brand names → class.

The data lives in ``data/medications.csv`` (columns ``name,generic,class``), one row per name a
clinician may type; brand rows name their generic. Where the names and classes come from is in
``data/SOURCES.md``. Lookups ignore letter case, hyphens and repeated or surrounding spaces
("lithium-carbonate" is "lithium carbonate"), and a trailing formulation word (ER, XR, XL, CR,
SR, ODT) when the name with it is not a row itself: "Zoloft XR" finds Zoloft, while "Xanax XR"
keeps its own row. An unknown name is not an error: it is ``MedClass.UNCLASSIFIED`` for the
clinician to classify (SPEC §2).
"""

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from clinical.vocab import MedClass

DATA = Path(__file__).parent / "data" / "medications.csv"


@dataclass(frozen=True)
class Entry:
    name: str
    generic: str
    drug_class: MedClass


# Words naming a release or a tablet form, not the drug (r2).
FORMULATION_WORDS = frozenset({"er", "xr", "xl", "cr", "sr", "odt"})


def normalize(name: str) -> str:
    """The key a name is found by: letter case, hyphens and spacing ignored."""
    return " ".join(name.replace("-", " ").split()).casefold()


@cache
def entries() -> dict[str, Entry]:
    with DATA.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        normalize(row["name"]): Entry(row["name"], row["generic"], MedClass(row["class"]))
        for row in rows
    }


def lookup(name: str) -> Entry | None:
    known = entries()
    key = normalize(name)
    entry = known.get(key)
    if entry is None:
        base, _, last = key.rpartition(" ")
        if base and last in FORMULATION_WORDS:
            entry = known.get(base)
    return entry


def classify(name: str) -> MedClass:
    entry = lookup(name)
    return entry.drug_class if entry else MedClass.UNCLASSIFIED
