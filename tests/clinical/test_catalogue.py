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


# -- Revision 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("lithium-carbonate", "lithium carbonate"),
        ("LITHIUM - CARBONATE", "lithium carbonate"),
        ("olanzapine fluoxetine", "olanzapine-fluoxetine"),  # a hyphen in the row, none typed
        ("tofranil pm", "Tofranil-PM"),
        ("Zoloft XR", "Zoloft"),  # no such row: the formulation word is ignored
        ("zoloft   odt", "Zoloft"),
        ("Klonopin-ODT", "Klonopin"),
        ("lamictal sr", "Lamictal"),
        ("Ambien er", "Ambien"),
        ("Xanax XR", "Xanax XR"),  # its own row wins
        ("Wellbutrin   xl", "Wellbutrin XL"),
        ("Zohydro ER", "Zohydro ER"),
        ("Zohydro", "Zohydro"),
        ("Sublimaze", "Sublimaze"),
    ],
)
def test_lookup_ignores_hyphens_spacing_and_a_trailing_formulation_word(typed, expected):
    entry = lookup(typed)
    assert entry is not None, typed
    assert entry.name == expected


@pytest.mark.parametrize("typed", ["ER", "xr", " odt ", "Zoloft XR ER", "ZoloftXR", "XR Zoloft"])
def test_only_one_trailing_formulation_word_after_a_name_is_ignored(typed):
    assert lookup(typed) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sublimaze", MedClass.OPIOID),
        ("Zohydro", MedClass.OPIOID),
        ("lithium-carbonate", MedClass.LITHIUM),
        # non-benzodiazepine sedative hypnotics: Z-drugs and orexin antagonists
        ("zolpidem", MedClass.SEDATIVE_HYPNOTIC),
        ("Ambien", MedClass.SEDATIVE_HYPNOTIC),
        ("Ambien CR", MedClass.SEDATIVE_HYPNOTIC),
        ("Edluar", MedClass.SEDATIVE_HYPNOTIC),
        ("eszopiclone", MedClass.SEDATIVE_HYPNOTIC),
        ("Lunesta", MedClass.SEDATIVE_HYPNOTIC),
        ("zaleplon", MedClass.SEDATIVE_HYPNOTIC),
        ("Sonata", MedClass.SEDATIVE_HYPNOTIC),
        ("suvorexant", MedClass.SEDATIVE_HYPNOTIC),
        ("Belsomra", MedClass.SEDATIVE_HYPNOTIC),
        ("lemborexant", MedClass.SEDATIVE_HYPNOTIC),
        ("Dayvigo", MedClass.SEDATIVE_HYPNOTIC),
        ("daridorexant", MedClass.SEDATIVE_HYPNOTIC),
        ("Quviviq", MedClass.SEDATIVE_HYPNOTIC),
        # psychostimulants
        ("amphetamine salts", MedClass.PSYCHOSTIMULANT),
        ("Adderall", MedClass.PSYCHOSTIMULANT),
        ("Adderall XR", MedClass.PSYCHOSTIMULANT),
        ("dextroamphetamine", MedClass.PSYCHOSTIMULANT),
        ("Dexedrine", MedClass.PSYCHOSTIMULANT),
        ("lisdexamfetamine", MedClass.PSYCHOSTIMULANT),
        ("Vyvanse", MedClass.PSYCHOSTIMULANT),
        ("methylphenidate", MedClass.PSYCHOSTIMULANT),
        ("Ritalin", MedClass.PSYCHOSTIMULANT),
        ("Concerta", MedClass.PSYCHOSTIMULANT),
        ("dexmethylphenidate", MedClass.PSYCHOSTIMULANT),
        ("Focalin XR", MedClass.PSYCHOSTIMULANT),
        ("modafinil", MedClass.PSYCHOSTIMULANT),
        ("Provigil", MedClass.PSYCHOSTIMULANT),
        ("armodafinil", MedClass.PSYCHOSTIMULANT),
        ("Nuvigil", MedClass.PSYCHOSTIMULANT),
        # neighbours that stay where they were
        ("atomoxetine", MedClass.OTHER),
        ("ramelteon", MedClass.OTHER),
        ("clonazepam", MedClass.BENZODIAZEPINE),
    ],
)
def test_revision_2_names_and_classes(name, expected):
    assert classify(name) is expected


def test_the_catalogue_names_its_sources():
    sources = catalogue.DATA.parent / "SOURCES.md"
    text = sources.read_text(encoding="utf-8")
    for class_words in ("sedative hypnotic", "psychostimulant", "ATC", "DailyMed"):
        assert class_words in text
