"""The guidance documents the rules come from, and a flag's source in words a clinician reads.

The engine names a source in a short form, a document key and its section ("000 step 3;
001 medications to avoid or adjust"), which the JSON output keeps. Screens and paper show
:func:`readable`: the document's title and the section ("When Initial Treatment Fails: step
3; Treating Treatment-Resistant Depression: medications to avoid or adjust"), never the key.
The Sources page lists :data:`DOCUMENTS` with what the product takes from each.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    key: str  # the short form's number; never shown
    title: str  # the document's full title
    short_title: str  # as a source names it
    kind: str  # who wrote it, for whom, when
    takes: tuple[str, ...]  # what the product takes from it

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.short_title.lower()).strip("-")


DOCUMENTS = (
    Document(
        "000",
        "When Initial Treatment Fails: Optimization Strategies for Non-Responders",
        "When Initial Treatment Fails",
        "A clinical guide for practitioners by the Ketamine Association Editorial Team, "
        "published 8 January 2026.",
        (
            "Response (a reduction of 50 % or more), partial response (25–49 %), non-response "
            "(under 25 %) and remission (MADRS 10 or less).",
            "What an adequate trial is: 4–6 IV infusions at 0.5 mg/kg, 8 intranasal esketamine "
            "sessions escalating 56 → 84 mg, 6–8 oral sessions.",
            "Step 1, verify treatment delivery: the dose on actual or ideal body weight.",
            "Step 2, reassess the diagnosis; step 3, evaluate concurrent medications "
            "(benzodiazepines, lamotrigine, memantine, naltrexone, opioids).",
            "Strategy 1, dose adjustment: the ladder 0.5 → 0.6 → 0.75 → 1.0 mg/kg, each step "
            "only if the last was tolerated, enhanced monitoring and 90–120 min recovery above "
            "0.75 mg/kg; lower dosing at 0.3–0.4 mg/kg.",
            "Strategy 2, infusion rate; strategy 3, alternative routes; strategy 4, extended "
            "induction; strategy 5, lithium augmentation.",
            "Knowing when to discontinue, and the documentation requirements: baseline severity "
            "and every outcome measure, the optimization attempts, the report to the referring "
            "provider.",
            "Its three case examples, which the rules are tested against.",
        ),
    ),
    Document(
        "001",
        "Treating Treatment-Resistant Depression: Advanced Protocol Considerations",
        "Treating Treatment-Resistant Depression",
        "A clinical practice article for practitioners by the Ketamine Association Editorial "
        "Team, published 8 January 2026.",
        (
            "Verifying treatment resistance: at least two failed adequate antidepressant trials.",
            "The dose titration protocol (including a reduction to 0.4 mg/kg for an excellent "
            "response with side effects) and the maximum doses.",
            "Troubleshooting non-response: too infrequent treatment, benzodiazepines; clinical "
            "takeaway 6: no signal after 4 treatments calls for re-evaluation.",
            "Medications to avoid or adjust: benzodiazepines, MAOIs (2-week washout), "
            "naltrexone (hold 72 h).",
            "Maintenance: the gradual spacing protocol, PRN maintenance when PHQ-9 rises above "
            "10, and the relapse indicators (PHQ-9 up 2 points or more).",
            "Bipolar depression (with a mood stabilizer only) and psychotic features (generally "
            "contraindicated).",
            "PHQ-9 remission (under 5) and suicide risk assessment (C-SSRS) at each visit.",
        ),
    ),
    Document(
        "002",
        "Ketamine for Treatment-Resistant MDD: Evidence-Based Protocol",
        "Ketamine for Treatment-Resistant MDD",
        "A clinical question-and-answer summary reviewed by a medical advisory board, last "
        "updated 6 February 2026.",
        (
            "Safety monitoring: blood pressure during and for 2 hours after treatment; the "
            "esketamine REMS 2-hour observation.",
            "Most responders relapse within 2 weeks without a maintenance plan.",
            "Ketamine as add-on therapy, with a mood stabilizer when there are bipolar features.",
        ),
    ),
    Document(
        "003",
        "Ketamine: Repeated Infusion Protocol, Tolerance, and Non-Responders",
        "Ketamine: Repeated Infusion Protocol",
        "A short clinic note on repeated infusions.",
        (
            "Repeated infusions work cumulatively and some patients respond only after three or "
            "more: why the trajectory is judged, not only the endpoint, before extending "
            "induction.",
        ),
    ),
    Document(
        "004",
        "What Happens If Ketamine Treatment Doesn't Work?",
        "What Happens If Ketamine Treatment Doesn't Work?",
        "An article for patients.",
        (
            "Background only, no rule rests on it alone: the reasons treatment fails that "
            "patients read about (other medications, too few treatments, the dose) and the "
            "alternatives (TMS, ECT, psychotherapy).",
        ),
    ),
)
BY_KEY = {document.key: document for document in DOCUMENTS}

_PART = re.compile(r"^(\d{3})(?:\s+(.*))?$")


def _readable_part(part: str) -> str:
    part = part.strip()
    match = _PART.match(part)
    if match is None:  # not a document: "product default thresholds"
        if "product default" in part:
            return part.replace("product default", "KetaCare default") + " (a clinic setting)"
        return part
    document = BY_KEY.get(match.group(1))
    if document is None:
        return part
    section = match.group(2)
    return f"{document.short_title}: {section}" if section else document.short_title


def readable(source: str) -> str:
    """"000 step 3; 001 medications to avoid or adjust" → "When Initial Treatment Fails: step
    3; Treating Treatment-Resistant Depression: medications to avoid or adjust"."""
    return "; ".join(_readable_part(part) for part in source.split(";") if part.strip())
