"""The rules engine's rules in plain words, for the Rules page: what a clinician needs to trust
a flag. The engine (clinical/engine.py) is what runs; this is what it does, written for people,
and tests/test_guidance.py checks that every flag code the engine knows is described here.

Sources are in the engine's short form; the page shows them by title and section
(clinical.sources.readable).
"""

from dataclasses import dataclass

from clinical.engine import FlagCode


@dataclass(frozen=True)
class FlagRule:
    code: FlagCode
    severity: str
    trigger: str
    suggestion: str
    source: str
    phases: str = "every phase"


@dataclass(frozen=True)
class FlagGroup:
    title: str
    note: str
    rules: tuple[FlagRule, ...]


OPTIMIZATION_PHASES = "induction and extended induction"
MEDICATION_SOURCE = "000 step 3; 001 medications to avoid or adjust"

FLAG_GROUPS = (
    FlagGroup(
        "Safety",
        "Shown first, in red. They block nothing: the clinician decides.",
        (
            FlagRule(
                FlagCode.SUICIDAL_IDEATION, "critical",
                "The latest PHQ-9 scored item by item has item 9 (thoughts of being better off "
                "dead or of self-harm) at 1 or more, or the latest itemised MADRS has item 10 "
                "(suicidal thoughts) at 4 or more.",
                "A suicide risk assessment (C-SSRS) before the next session.",
                "001 monitoring during maintenance",
            ),
            FlagRule(
                FlagCode.BIPOLAR_NO_MOOD_STABILIZER, "critical",
                "Diagnosis bipolar I or II, and no lithium, valproate, lamotrigine or "
                "carbamazepine active on the day of the evaluation.",
                "Ketamine only together with a mood stabilizer; lower starting doses and close "
                "watch for mood switches.",
                "001 bipolar depression; 002",
            ),
            FlagRule(
                FlagCode.PSYCHOTIC_FEATURES, "critical",
                "Psychotic features are recorded for the patient.",
                "Generally contraindicated; only under specialist oversight once psychosis has "
                "resolved, with antipsychotic cover.",
                "001 depression with psychotic features",
            ),
            FlagRule(
                FlagCode.DOSE_ABOVE_STANDARD, "critical",
                "Any IV or IM session of the course, completed or stopped early, above 0.75 "
                "mg/kg without enhanced monitoring confirmed on its record. A stopped session "
                "still gave drug, so it counts (revision 2).",
                "Enhanced cardiovascular monitoring and a 90–120 minute recovery for every dose "
                "above 0.75 mg/kg.",
                "000 considerations for higher dosing; 001 dose titration protocol",
            ),
        ),
    ),
    FlagGroup(
        "Concurrent medications",
        "Read from the medication list: a medication is active when it started on or before "
        "the day of the evaluation and has not stopped before it.",
        (
            FlagRule(
                FlagCode.BENZODIAZEPINE, "warning while the course is not responding or the "
                "trial is not yet adequate; info otherwise",
                "A benzodiazepine is active.",
                "Hold it on treatment days; taper if possible.",
                MEDICATION_SOURCE,
            ),
            FlagRule(
                FlagCode.BENZODIAZEPINE_TAKEN, "warning",
                "A completed session records a benzodiazepine taken in the 24 hours before.",
                "That session may have been blunted.",
                MEDICATION_SOURCE,
            ),
            FlagRule(FlagCode.NALTREXONE_HOLD, "warning", "Naltrexone is active.",
                     "Hold it 72 hours before each treatment.", MEDICATION_SOURCE),
            FlagRule(FlagCode.MEMANTINE, "warning", "Memantine is active.",
                     "Avoid using both.", MEDICATION_SOURCE),
            FlagRule(FlagCode.MAOI_WASHOUT, "warning", "An MAOI is active.",
                     "A 2-week washout.", MEDICATION_SOURCE),
            FlagRule(FlagCode.LAMOTRIGINE, "info", "Lamotrigine is active.",
                     "Little evidence of an interaction; monitor.", MEDICATION_SOURCE),
            FlagRule(FlagCode.OPIOID, "info", "An opioid is active.",
                     "Cross-tolerance is possible; consider adjusting the dose.",
                     MEDICATION_SOURCE),
        ),
    ),
    FlagGroup(
        "Optimization",
        "Suggestions for a course that is not responding as hoped, raised in induction and "
        "extended induction (dose reduction and the treatment-resistance check in any phase). "
        "The IV and IM dose ladder is 0.5 → 0.6 → 0.75 → 1.0 mg/kg, 1.0 the maximum. Every rule "
        "that judges the outcome needs a status: none fires on insufficient data (revision 2).",
        (
            FlagRule(
                FlagCode.DOSE_ESCALATION, "info",
                "The current route is IV or IM; non-response or partial response; at least 2 "
                "completed sessions at the current dose, with no severe dissociation and no "
                "moderate or severe adverse event among them; the dose is below 1.0 mg/kg; and "
                "the next ladder step is below every poorly tolerated IV or IM dose of the "
                "course (revision 2: a dose is poorly tolerated when any session at it, "
                "completed or stopped, had severe dissociation or a moderate or severe adverse "
                "event). When only that last condition fails, the course page says which dose "
                "held the suggestion back.",
                "The next ladder step (its dose is given); above 0.75 mg/kg with enhanced "
                "monitoring.",
                "000 strategy 1 (dose escalation protocol); 001 dose titration protocol",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.ESKETAMINE_ESCALATION, "info",
                "Current route intranasal esketamine at 56 mg; non-response or partial "
                "response; and 84 mg was not poorly tolerated in this course (revision 2).",
                "84 mg from the next session.",
                "000 adequate trial (56 mg → 84 mg) and strategy 3",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.DOSE_REDUCTION, "info",
                "Response or remission, with severe dissociation or a moderate or severe adverse "
                "event among the sessions at the current dose.",
                "IV or IM: consider 0.4 mg/kg. Intranasal at 84 mg: consider 56 mg. Otherwise a "
                "lower dose.",
                "001 dose titration protocol (excellent response with side effects)",
            ),
            FlagRule(
                FlagCode.LOWER_DOSE_TRIAL, "info",
                "Current route IV; non-response; severe dissociation among the sessions at the "
                "current dose.",
                "A trial of 0.3–0.4 mg/kg with a slower infusion.",
                "000 strategy 1 (lower dosing)",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.INFUSION_RATE, "info",
                "Current route IV; non-response or partial response; at least 4 completed "
                "sessions.",
                "A faster infusion (20–30 min) when dissociation at the current dose was none or "
                "mild; a slower one (50–60 min) when it was moderate or severe.",
                "000 strategy 2 (infusion rate modification)",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.INCREASE_FREQUENCY, "info",
                "Non-response or partial response (revision 2: not on insufficient data), and "
                "the last three completed sessions are on average more than 4 days apart.",
                "2–3 treatments a week.",
                "001 troubleshooting non-response (inadequate frequency)",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.NO_SIGNAL_AFTER_4, "warning",
                "At least 4 completed sessions and non-response.",
                "Re-evaluate the diagnosis, confounders and medications before going on.",
                "001 clinical takeaway 6; 000 step 2",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.EXTEND_INDUCTION, "info",
                "6 to 9 completed sessions, with partial response, or non-response on an "
                "improving trajectory.",
                "4–6 further sessions; judge the trend, not the endpoint.",
                "000 strategy 4 (extended induction); 003",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.ROUTE_SWITCH, "info",
                "An adequate trial on the current route; non-response or partial response; and "
                "0.75 mg/kg or more already given IV or IM, or severe dissociation in any "
                "completed session.",
                "From IV or IM to intranasal esketamine 56 → 84 mg for 8 sessions (or IM); from "
                "intranasal to IV ketamine.",
                "000 strategy 3 (alternative routes of administration)",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.LITHIUM_AUGMENTATION, "info",
                "An adequate trial; non-response or partial response; an optimization already "
                "recorded; no active lithium.",
                "Lithium 300–600 mg a day to a level of 0.6–0.8 mEq/L, continuing ketamine; "
                "judge it over 4–6 weeks.",
                "000 strategy 5 (lithium augmentation)",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.DISCONTINUATION_REVIEW, "warning",
                "At least 10 completed sessions; non-response or partial response (revision 2: "
                "not on insufficient data); a trajectory that is not improving; and an "
                "optimization already recorded.",
                "Discuss stopping and the alternatives: ECT, TMS, VNS, an MAOI, intensive "
                "psychotherapy.",
                "000 knowing when to discontinue",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.MAINTENANCE_PLAN, "info",
                "Response or remission after at least 4 completed sessions.",
                "Plan maintenance: weekly for 4 weeks, then every 2 weeks, every 3 weeks, "
                "monthly; most responders relapse within 2 weeks without a plan.",
                "001 gradual spacing protocol; 002",
                OPTIMIZATION_PHASES,
            ),
            FlagRule(
                FlagCode.TRD_NOT_VERIFIED, "warning",
                "Fewer than 2 different drugs (ignoring letter case) among the failed prior "
                "trials marked adequate.",
                "Verify treatment resistance before starting: dose, duration and adherence of "
                "each trial.",
                "001 verifying treatment resistance (documentation checklist)",
            ),
        ),
    ),
    FlagGroup(
        "Maintenance and monitoring",
        "",
        (
            FlagRule(
                FlagCode.RELAPSE_RISK, "warning",
                "In maintenance: the latest PHQ-9, dated after maintenance started, is 2 or more "
                "points above the latest PHQ-9 on or before that day, or above 10.",
                "Return to more frequent dosing.",
                "001 monitoring during maintenance (relapse indicators) and PRN maintenance "
                "(PHQ-9 > 10)",
            ),
            FlagRule(
                FlagCode.ESKETAMINE_MONITORING, "warning",
                "An intranasal esketamine session, completed or stopped early (revision 2), "
                "discharged less than 2 hours after the dose.",
                "Observe for at least 2 hours after every esketamine dose (REMS).",
                "002 safety monitoring (esketamine REMS 2-hour observation)",
            ),
            FlagRule(
                FlagCode.BP_ELEVATED, "warning above 140/90; critical above 180/110",
                "The pre-dose blood pressure of the latest session that has one, completed or "
                "stopped early (revision 2), is above the limit, systolic or diastolic.",
                "Recheck before dosing and monitor during and for 2 hours after; above 180/110 "
                "consider holding the session.",
                "002 safety monitoring; product default thresholds",
            ),
            FlagRule(
                FlagCode.SCORES_OVERDUE, "warning",
                "A completed session and no baseline MADRS or PHQ-9; or 3 or more completed "
                "sessions since the latest MADRS or PHQ-9 (revision 2).",
                "Score MADRS or PHQ-9 now: the status and every outcome-based flag depend on "
                "it.",
                "000 documentation requirements (baseline severity and all outcome measures)",
                "every phase but ended",
            ),
        ),
    ),
)

CLASSIFICATION = (
    ("As of",
     "A course is evaluated as it stood at its latest session or score: anything dated later "
     "is left out. Days are the clinic's calendar days."),
    ("Completed sessions",
     "Only completed sessions count towards numbers, the current dose and optimizations. A "
     "session stopped early is kept and shown; it counts only where a rule says so (the safety "
     "and monitoring flags above, and poorly tolerated doses)."),
    ("Baseline and current score",
     "The baseline of an instrument is its latest score at or before the start of the first "
     "completed session; the current score is its latest score after that. Before any "
     "completed session the latest score is the baseline and there is no current score. Two "
     "scores at the same moment: the lower is the baseline, the higher the current, which "
     "never overstates improvement. Totals are computed from the item scores."),
    ("Reduction",
     "(baseline − current) ÷ baseline × 100, shown to one decimal (32 → 22 is 31.3 %)."),
    ("Status of an instrument",
     "Insufficient data without a baseline or a current score, or when the baseline already "
     "meets remission; remission when the current score meets the remission cut-off (MADRS 10 "
     "or less, PHQ-9 4 or less); response at a reduction of 50 % or more; partial response at "
     "25 % up to 50 %; non-response under 25 %, worsening included."),
    ("Status of the course",
     "That of MADRS when MADRS has a baseline and a current score, otherwise that of PHQ-9. "
     "Both are shown."),
    ("Adequate trial",
     "At least 4 completed IV or IM sessions at 0.5 mg/kg or more, or 8 intranasal sessions at "
     "56 mg or more, or 6 sublingual or oral sessions. Until then the status is marked "
     "provisional."),
    ("Trajectory",
     "From the baseline and later scores of the course's instrument: improving when each of "
     "the last three is lower than the one before, worsening when each is higher, a plateau "
     "otherwise; insufficient with fewer than three scores or without a baseline."),
    ("An optimization is recorded",
     "A dose change between consecutive completed sessions on one route, a change of route, "
     "lithium started after the first session's day, or an accepted flag that changes "
     "treatment (dose escalation, esketamine escalation, dose reduction, lower-dose trial, "
     "infusion rate, frequency, extended induction, route switch, lithium). Accepting a review, "
     "a plan or a check (no signal after 4, discontinuation review, maintenance plan, "
     "treatment resistance, scores overdue), or a medication or safety flag, is not one."),
    ("Poorly tolerated dose",
     "A route and dose at which any session of the course, completed or stopped early, had "
     "severe dissociation or a moderate or severe adverse event. Escalation never suggests such "
     "a dose or one above it."),
)
