"""The medication catalogue shipped with the product: generic and brand names → class.

The data lives in ``data/medications.csv`` (columns ``name,generic,class``), one row per name a
clinician may type; brand rows name their generic. Lookups ignore letter case and surrounding
space. An unknown name is not an error: it is ``MedClass.UNCLASSIFIED`` for the clinician to
classify (SPEC §2).
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


def normalize(name: str) -> str:
    return " ".join(name.split()).casefold()


@cache
def entries() -> dict[str, Entry]:
    with DATA.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        normalize(row["name"]): Entry(row["name"], row["generic"], MedClass(row["class"]))
        for row in rows
    }


def lookup(name: str) -> Entry | None:
    return entries().get(normalize(name))


def classify(name: str) -> MedClass:
    entry = lookup(name)
    return entry.drug_class if entry else MedClass.UNCLASSIFIED
