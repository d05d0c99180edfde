"""A flag's source reads as a document title and section, never a file number."""

import re
from pathlib import Path

import pytest

from clinical import engine
from clinical.engine import RULES, FlagCode
from clinical.sources import BY_KEY, DOCUMENTS, readable
from tests.clinical.builders import run


@pytest.mark.parametrize(
    ("short", "words"),
    [
        ("000 step 3", "When Initial Treatment Fails: step 3"),
        ("000 step 3; 001 medications to avoid or adjust",
         "When Initial Treatment Fails: step 3; Treating Treatment-Resistant Depression: "
         "medications to avoid or adjust"),
        ("001 bipolar depression; 002",
         "Treating Treatment-Resistant Depression: bipolar depression; Ketamine for "
         "Treatment-Resistant MDD"),
        ("000 strategy 4 (extended induction); 003",
         "When Initial Treatment Fails: strategy 4 (extended induction); Ketamine: Repeated "
         "Infusion Protocol"),
        ("002 safety monitoring; product default thresholds",
         "Ketamine for Treatment-Resistant MDD: safety monitoring; KetaCare default thresholds "
         "(a clinic setting)"),
        ("001 monitoring during maintenance (relapse indicators) and PRN maintenance (PHQ-9 > 10)",
         "Treating Treatment-Resistant Depression: monitoring during maintenance (relapse "
         "indicators) and PRN maintenance (PHQ-9 > 10)"),
    ],
)
def test_readable_names_the_title_and_section(short, words):
    assert readable(short) == words


def test_every_document_is_listed_with_what_the_product_takes_from_it():
    assert [d.key for d in DOCUMENTS] == ["000", "001", "002", "003", "004"]
    for document in DOCUMENTS:
        assert document.title.startswith(document.short_title.rstrip("?"))
        assert document.takes and document.kind
    assert BY_KEY["000"].anchor == "when-initial-treatment-fails"


def test_every_source_the_engine_names_reads_without_a_number():
    """Each short-form source written in the engine, found in its text."""
    text = Path(engine.__file__).read_text("utf-8")
    shorts = re.findall(r'"(00\d[^"]*)"', text)
    assert len(shorts) >= 20
    for short in shorts:
        words = readable(short)
        assert not re.search(r"\b00\d\b", words), words


def test_no_flag_source_reads_as_a_number_once_readable():
    from tests.clinical.builders import (
        NON,
        adverse,
        iv,
        med,
        nasal,
        series,
    )

    courses = [
        run(series(4, dose="0.9") + [nasal(9, 56, discharged_at=None)], NON,
            medications=[med(name) for name in ("clonazepam", "naltrexone", "memantine",
                                                 "phenelzine", "lamotrigine", "oxycodone")],
            patient_fields={"psychotic_features": True, "failed_trials": ()}),
        run([iv(0, bp_pre=(150, 95)), iv(2, **adverse("severe"))], (36, 10)),
        run(series(12), NON),
        run([iv(0)]),
    ]
    seen = {flag.source for evaluation in courses for flag in evaluation.flags}
    assert len(seen) >= 8
    for source in seen:
        assert not re.search(r"\b\d{3}\b", readable(source)), source
    assert {str(code) for code in FlagCode} >= {str(rule.code) for rule in RULES}
