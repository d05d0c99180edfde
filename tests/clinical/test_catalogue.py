"""The medication catalogue shipped as data (SPEC §2): its integrity and its lookups."""

import csv

import pytest

from clinical import catalogue
from clinical.catalogue import classify, lookup, normalize
from clinical.vocab import MedClass


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with catalogue.DATA.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_header_is_name_generic_class():
    with catalogue.DATA.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["name", "generic", "class"]


def test_at_least_150_distinct_names(rows):
    assert len({normalize(row["name"]) for row in rows}) >= 150


def test_every_class_is_a_valid_medclass_and_never_unclassified(rows):
    valid = {member.value for member in MedClass} - {MedClass.UNCLASSIFIED.value}
    bad = [(row["name"], row["class"]) for row in rows if row["class"] not in valid]
    assert bad == []


def test_every_class_the_rules_use_is_covered(rows):
    used = {row["class"] for row in rows}
    assert used == {member.value for member in MedClass} - {MedClass.UNCLASSIFIED.value}


def test_no_blank_fields_or_stray_spaces(rows):
    for row in rows:
        for field in ("name", "generic", "class"):
            value = row[field]
            assert value and value == " ".join(value.split()), (row, field)


def test_names_are_unique_ignoring_case_and_spacing(rows):
    seen: dict[str, str] = {}
    duplicates = []
    for row in rows:
        key = normalize(row["name"])
        if key in seen:
            duplicates.append((seen[key], row["name"]))
        seen[key] = row["name"]
    assert duplicates == []
    assert len(catalogue.entries()) == len(rows)


def test_every_generic_is_a_row_of_the_same_class(rows):
    by_name = {normalize(row["name"]): row for row in rows}
    problems = []
    for row in rows:
        generic = by_name.get(normalize(row["generic"]))
        if generic is None:
            problems.append((row["name"], row["generic"], "missing"))
        elif generic["class"] != row["class"]:
            problems.append((row["name"], row["generic"], generic["class"]))
        elif normalize(generic["generic"]) != normalize(generic["name"]):
            problems.append((row["name"], row["generic"], "generic row names another generic"))
    assert problems == []


@pytest.mark.parametrize(
    "typed",
    ["Klonopin", "  klonopin ", "KLONOPIN", "kLoNoPiN", "\tKlonopin\n"],
)
def test_lookup_ignores_case_and_surrounding_space(typed):
    entry = lookup(typed)
    assert entry is not None
    assert entry.name == "Klonopin"
    assert entry.generic == "clonazepam"
    assert entry.drug_class is MedClass.BENZODIAZEPINE


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("lithium   carbonate", MedClass.LITHIUM),
        ("  Lithium Carbonate  ", MedClass.LITHIUM),
        ("wellbutrin    xl", MedClass.BUPROPION),
        ("SEROQUEL\tXR", MedClass.ATYPICAL_ANTIPSYCHOTIC),
    ],
)
def test_lookup_ignores_extra_inner_space(typed, expected):
    assert classify(typed) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clonazepam", MedClass.BENZODIAZEPINE),
        ("Xanax XR", MedClass.BENZODIAZEPINE),
        ("lorazepam", MedClass.BENZODIAZEPINE),
        ("Vivitrol", MedClass.NALTREXONE),
        ("naltrexone", MedClass.NALTREXONE),
        ("Contrave", MedClass.NALTREXONE),
        ("Namenda", MedClass.MEMANTINE),
        ("Namzaric", MedClass.MEMANTINE),
        ("Nardil", MedClass.MAOI),
        ("Emsam", MedClass.MAOI),
        ("tranylcypromine", MedClass.MAOI),
        ("Lamictal", MedClass.LAMOTRIGINE),
        ("Lamictal XR", MedClass.LAMOTRIGINE),
        ("OxyContin", MedClass.OPIOID),
        ("Suboxone", MedClass.OPIOID),
        ("tramadol", MedClass.OPIOID),
        ("Lithobid", MedClass.LITHIUM),
        ("Priadel", MedClass.LITHIUM),
        ("lithium", MedClass.LITHIUM),
        ("Depakote", MedClass.VALPROATE),
        ("Epilim", MedClass.VALPROATE),
        ("valproic acid", MedClass.VALPROATE),
        ("Tegretol", MedClass.CARBAMAZEPINE),
        ("Equetro", MedClass.CARBAMAZEPINE),
        ("Zoloft", MedClass.SSRI),
        ("Lexapro", MedClass.SSRI),
        ("Seroxat", MedClass.SSRI),
        ("Cymbalta", MedClass.SNRI),
        ("Effexor XR", MedClass.SNRI),
        ("Pristiq", MedClass.SNRI),
        ("nortriptyline", MedClass.TCA),
        ("amitriptyline", MedClass.TCA),
        ("maprotiline", MedClass.TCA),
        ("Wellbutrin XL", MedClass.BUPROPION),
        ("Zyban", MedClass.BUPROPION),
        ("Auvelity", MedClass.BUPROPION),
        ("Abilify", MedClass.ATYPICAL_ANTIPSYCHOTIC),
        ("Symbyax", MedClass.ATYPICAL_ANTIPSYCHOTIC),
        ("Lybalvi", MedClass.ATYPICAL_ANTIPSYCHOTIC),
        ("mirtazapine", MedClass.OTHER),
        ("Trileptal", MedClass.OTHER),
        ("vortioxetine", MedClass.OTHER),
        ("Spravato", MedClass.OTHER),
    ],
)
def test_spot_checks(name, expected):
    assert classify(name) is expected


def test_brand_names_its_generic():
    entry = lookup("Depakote")
    assert entry is not None
    assert entry.generic == "divalproex"
    assert lookup(entry.generic).drug_class is MedClass.VALPROATE


@pytest.mark.parametrize("typed", ["notarealdrug", "", "   ", "Klonopinn"])
def test_unknown_name_is_unclassified(typed):
    assert lookup(typed) is None
    assert classify(typed) is MedClass.UNCLASSIFIED
