"""Synthetic clinic-network data at a chosen scale, fast (bulk inserts) and reproducible (one
seeded ``random.Random``, dates counted back from ``today``).

At scale 1 (the default) the clinic network holds 5,000 patients, 8,000 courses, 60,000 dosing
sessions, 120,000 signed MADRS and PHQ-9 assessments (a pair on the morning of each session,
the first pair being the baseline), medication lists from the shipped catalogue, prior trials,
weights, phase histories, some flag decisions, staff with authenticator devices and referring
providers linked to 60 % of the patients. Every value is inside SPEC §1–2 (items 0–6 / 0–3, IV
and IM 0.05–1.0 mg/kg with enhanced monitoring above 0.75, intranasal 28/56/84 mg, oral and
sublingual 10–1,000 mg). Courses follow the protocols: twice-weekly induction, extended
induction, then maintenance spaced weekly to monthly; a patient's earlier courses have ended.

Patient ``BENCH-000001`` is the benchmarks' designated patient: an earlier ended course and an
active maintenance course of exactly 60 sessions, referred by ``bench-referrer-001``.

The rows bypass the actions (no audit rows: the trail starts empty); the evaluation stored on
each course is then computed by the real path, ``course_facts`` and the rules engine.
"""

import random
import time as clock
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, User
from assessments.models import Assessment
from clinical import dosing
from clinical.catalogue import entries
from clinical.engine import evaluate
from clinical.instruments import INSTRUMENTS
from clinical.vocab import (
    Diagnosis,
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
    Sex,
)
from courses.evaluation import as_stored, course_facts, engine_settings
from courses.models import (
    ActionTaken,
    AdverseEvent,
    Course,
    Decision,
    EndReason,
    FlagDecision,
    PhaseChange,
    TreatmentSession,
    WeightBasis,
)
from patients.models import Medication, Patient, PriorTrial, TrialOutcome, WeightRecord

BATCH = 2000
DEFAULT_SEED = 20260
# The designated patient's two courses, whose pages the page benchmarks read: an earlier one
# of 20 sessions and a running one of 200 (a course page must cost the same for both).
SMALL_COURSE_SESSIONS = 20
BIG_COURSE_SESSIONS = 200
DESIGNATED_RECORD = "BENCH-000001"
CLINICIAN = "bench-clinician-01"
ADMIN = "bench-admin-1"
REFERRER = "bench-referrer-001"
DEVICE_NAME = "bench authenticator"

# Named sizes: a fraction of the default clinic network.
NAMED_SCALES = {"tiny": 0.004, "small": 0.1, "half": 0.5, "default": 1.0, "large": 2.0}


@dataclass(frozen=True)
class Scale:
    factor: float
    patients: int
    courses: int
    sessions: int
    assessments: int
    clinicians: int
    referrers: int
    admins: int = 2

    @classmethod
    def of(cls, value: "str | float") -> "Scale":
        """``tiny``, ``small``, ``half``, ``default``, ``large`` or a factor such as 0.25."""
        factor = NAMED_SCALES.get(str(value)) or float(value)
        if factor <= 0:
            raise ValueError(f"the scale must be above 0, got {value}")
        patients = max(2, round(5000 * factor))
        courses = max(patients + 1, round(8000 * factor))
        # Every course has a session; the designated ones have 20 and 200.
        sessions = max(BIG_COURSE_SESSIONS + SMALL_COURSE_SESSIONS + courses - 2,
                       round(60000 * factor))
        return cls(
            factor=factor, patients=patients, courses=courses, sessions=sessions,
            assessments=2 * sessions, clinicians=max(2, round(25 * factor)),
            referrers=max(2, round(40 * factor)),
        )


class NotAScratchDatabase(Exception):
    """Refused: the generator replaces data only in a database made for benchmarks."""


def is_scratch_database() -> bool:
    """A database named for benchmarks (``*bench*``), a test database, or SQLite in memory."""
    name = str(connection.settings_dict["NAME"])
    return "bench" in name or name.startswith("test_") or "memory" in name


# ---------------------------------------------------------------------------------------------
# Synthetic vocabulary (invented names: no real person)

FIRST = ["Ada", "Ben", "Cleo", "Dev", "Elin", "Femi", "Gus", "Hana", "Ilya", "Jun", "Kira", "Luca",
         "Mina", "Noor", "Otto", "Pia", "Quin", "Rosa", "Sami", "Tess", "Uma", "Vik", "Wren",
         "Xia", "Yara", "Zane", "Ari", "Bea", "Cai", "Dina", "Eero", "Fay", "Gil", "Hedy", "Ivo",
         "Jade", "Kai", "Lior", "Maren", "Nils"]
LAST = ["Abbot", "Brill", "Carden", "Dunmore", "Ellery", "Fenwick", "Garrow", "Hollis", "Ingram",
        "Jessop", "Kellan", "Lowther", "Marlow", "Nettle", "Orrin", "Pellow", "Quarry", "Rowe",
        "Sallow", "Thorne", "Upton", "Varley", "Wendle", "Yarrow", "Zeller", "Ashby", "Birk",
        "Colley", "Dorsey", "Eckel", "Fairly", "Gaunt", "Hask", "Ives", "Jarrow", "Kemble",
        "Lusk", "Mott", "Noakes", "Oddie", "Pruett", "Rendle", "Stiles", "Tulley", "Venn",
        "Wicks", "Yeo", "Aldous", "Brisk", "Cowley"]
ADVERSE = [("nausea", "mild"), ("nausea", "moderate"), ("headache", "mild"),
           ("vomiting", "moderate"), ("anxiety on emergence", "mild"),
           ("transient hypertension", "moderate"), ("dizziness", "mild"),
           ("prolonged dissociation", "severe")]
RESPONSES = ["remitter", "responder", "partial", "non_responder"]
RESPONSE_WEIGHTS = [25, 20, 25, 30]
ROUTES = [Route.IV, Route.INTRANASAL, Route.IM, Route.ORAL, Route.SUBLINGUAL]
ROUTE_WEIGHTS = [55, 25, 8, 7, 5]


def _generics() -> dict[MedClass, list[str]]:
    by_class: dict[MedClass, set[str]] = {}
    for entry in entries().values():
        by_class.setdefault(entry.drug_class, set()).add(entry.generic.lower())
    return {cls: sorted(names) for cls, names in by_class.items()}


# ---------------------------------------------------------------------------------------------
# Plans: what each course will hold, decided before any row is built


@dataclass
class CoursePlan:
    patient: int  # index into the patient list
    sessions: int
    response: str = "partial"
    route: Route = Route.IV
    active: bool = False
    start: date | None = None
    offsets: list[int] = field(default_factory=list)  # session days after the start
    big: bool = False


def _offsets(n: int, rng: random.Random, big: bool = False) -> list[int]:
    """Twice weekly for induction (8 sessions, or up to 12 when extended), then maintenance
    spaced out weekly × 4, every 2 weeks, every 3 weeks, monthly."""
    days, day = [], 0
    for i in range(n):
        days.append(day)
        if i < 7 or (n <= 12 and i < 11):
            day += 3 if i % 2 == 0 else 4
        elif big:
            day += rng.choice([7, 7, 14])
        else:
            step = i - 7
            day += 7 if step < 4 else 14 if step < 7 else 21 if step < 9 else 28
    return days


def _distribute(total: int, parts: int, mean: float, rng: random.Random) -> list[int]:
    """``parts`` counts of at least 1 adding up to ``total``, skewed like real courses."""
    counts = [max(1, min(40, round(rng.gammavariate(2.0, mean / 2.0)))) for _ in range(parts)]
    while (gap := total - sum(counts)) != 0:
        i = rng.randrange(parts)
        if gap > 0 and counts[i] < 40:
            counts[i] += 1
        elif gap < 0 and counts[i] > 1:
            counts[i] -= 1
    return counts


def plan_courses(scale: Scale, rng: random.Random, today: date) -> list[CoursePlan]:
    # Patient 0 (designated) has its 2 courses; every other patient one, and the rest spread.
    per_patient = [1] * scale.patients
    per_patient[0] = 2
    for _ in range(scale.courses - scale.patients - 1):
        per_patient[rng.randrange(1, scale.patients)] += 1
    designated = BIG_COURSE_SESSIONS + SMALL_COURSE_SESSIONS
    regular = _distribute(scale.sessions - designated, scale.courses - 2,
                          (scale.sessions - designated) / (scale.courses - 2), rng)
    plans: list[CoursePlan] = []
    counts = iter(regular)
    for patient, k in enumerate(per_patient):
        if patient == 0:
            courses = [CoursePlan(0, SMALL_COURSE_SESSIONS),
                       CoursePlan(0, BIG_COURSE_SESSIONS, big=True)]
        else:
            courses = [CoursePlan(patient, next(counts)) for _ in range(k)]
        for plan in courses:
            # The designated courses are IV responders, so their pages show the same things.
            plan.response = ("responder" if patient == 0
                             else rng.choices(RESPONSES, RESPONSE_WEIGHTS)[0])
            plan.route = Route.IV if patient == 0 else rng.choices(ROUTES, ROUTE_WEIGHTS)[0]
            plan.offsets = _offsets(plan.sessions, rng, plan.big)
        # Lay the courses out backwards from today: the last may still be running.
        courses[-1].active = courses[-1].big or rng.random() < 0.45
        end = today - timedelta(days=rng.randrange(0, 6) if courses[-1].active
                                else rng.randrange(20, 500))
        for plan in reversed(courses):
            plan.start = end - timedelta(days=plan.offsets[-1])
            end = plan.start - timedelta(days=rng.randrange(30, 400))
        plans.extend(courses)
    return plans


def _kind(plan: CoursePlan) -> Phase:
    if plan.sessions <= 8:
        return Phase.INDUCTION
    if plan.sessions <= 12:
        return Phase.EXTENDED_INDUCTION
    return Phase.MAINTENANCE


# ---------------------------------------------------------------------------------------------
# Scores


def _items(instrument: Instrument, total: int, suicidal: int, rng: random.Random) -> list[int]:
    definition = INSTRUMENTS[instrument]
    count, top = definition.item_count, definition.item_max
    items = [0] * count
    items[-1] = min(suicidal, top, total)
    remaining = min(total - items[-1], (count - 1) * top)
    open_items = list(range(count - 1))
    while remaining > 0:
        i = rng.choice(open_items)
        items[i] += 1
        remaining -= 1
        if items[i] == top:
            open_items.remove(i)
    return items


def _score_series(plan: CoursePlan, baseline: int, top: int, rng: random.Random) -> list[int]:
    """One score per assessment point: the baseline, then a course towards the outcome."""
    final = {
        "remitter": rng.uniform(0.1, 0.3),
        "responder": rng.uniform(0.35, 0.5),
        "partial": rng.uniform(0.55, 0.74),
        "non_responder": rng.uniform(0.8, 1.05),
    }[plan.response]
    series = []
    for k in range(plan.sessions):
        progress = min(1.0, k / 6)
        value = baseline * (1 - (1 - final) * progress) + (rng.uniform(-2, 2) if k else 0)
        series.append(max(0, min(top, round(value))))
    return series


# ---------------------------------------------------------------------------------------------
# The rows


def _aware(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def _users(scale: Scale, rng: random.Random) -> dict[str, list[User]]:
    unusable = make_password(None)  # nobody logs in with a password: sessions are made directly
    specs = (
        [(f"bench-clinician-{i + 1:02d}", Role.CLINICIAN, "MD") for i in range(scale.clinicians)]
        + [(f"bench-admin-{i + 1}", Role.CLINIC_ADMIN, "") for i in range(scale.admins)]
        + [(f"bench-referrer-{i + 1:03d}", Role.REFERRING_PROVIDER, "MD")
           for i in range(scale.referrers)]
    )
    users = User.objects.bulk_create([
        User(username=name, first_name=rng.choice(FIRST), last_name=rng.choice(LAST), role=role,
             credentials=credentials, email=f"{name}@bench.invalid", password=unusable)
        for name, role, credentials in specs
    ])
    TOTPDevice.objects.bulk_create([
        TOTPDevice(user=user, name=DEVICE_NAME, confirmed=True, key=rng.randbytes(20).hex())
        for user in users if user.role != Role.REFERRING_PROVIDER
    ])
    grouped: dict[str, list[User]] = {role: [] for role in Role}
    for user in users:
        grouped[user.role].append(user)
    return grouped


def _patients(scale, plans, users, rng) -> tuple[list[Patient], list[Decimal]]:
    first_start = {}
    for plan in plans:
        first_start.setdefault(plan.patient, plan.start)
    patients, weights = [], []
    for i in range(scale.patients):
        sex = rng.choice([Sex.FEMALE, Sex.FEMALE, Sex.MALE])
        height = rng.randrange(150, 180) if sex == Sex.FEMALE else rng.randrange(162, 196)
        diagnosis = rng.choices(list(Diagnosis), [85, 4, 7, 4])[0]
        referred = i == 0 or rng.random() < 0.6
        patients.append(Patient(
            record_number=f"BENCH-{i + 1:06d}", first_name=rng.choice(FIRST),
            last_name=rng.choice(LAST), date_of_birth=date(rng.randrange(1945, 2005),
                                                           rng.randrange(1, 13),
                                                           rng.randrange(1, 29)),
            sex=sex, height_cm=Decimal(height), diagnosis=diagnosis,
            psychotic_features=rng.random() < 0.01,
            comorbidities=rng.choice(["", "", "Generalized anxiety", "PTSD", "Chronic pain"]),
            prior_ect=rng.random() < 0.15, prior_tms=rng.random() < 0.2,
            referring_provider=(users[Role.REFERRING_PROVIDER][0] if i == 0 else
                                rng.choice(users[Role.REFERRING_PROVIDER])) if referred else None,
        ))
        weights.append(Decimal(rng.randrange(500, 1300)) / 10)
    Patient.objects.bulk_create(patients, batch_size=BATCH)
    clinicians = users[Role.CLINICIAN]
    WeightRecord.objects.bulk_create([
        WeightRecord(patient=patient, measured_on=first_start[i] - timedelta(days=3),
                     weight_kg=weights[i], recorded_by=rng.choice(clinicians))
        for i, patient in enumerate(patients)
    ], batch_size=BATCH)
    return patients, weights


def _medical_history(patients, plans, users, rng, today) -> tuple[int, int, set[int]]:
    generics = _generics()
    antidepressants = [MedClass.SSRI, MedClass.SNRI, MedClass.BUPROPION, MedClass.TCA]
    first_start = {}
    for plan in plans:
        first_start.setdefault(plan.patient, plan.start)
    clinicians = users[Role.CLINICIAN]
    trials, meds, on_benzo = [], [], set()
    for i, patient in enumerate(patients):
        who = rng.choice(clinicians)
        for _ in range(rng.choices([1, 2, 3, 4], [15, 40, 30, 15])[0]):
            cls = rng.choice(antidepressants)
            trials.append(PriorTrial(
                patient=patient, drug=rng.choice(generics[cls]), drug_class=cls,
                dose="standard dose", weeks=rng.randrange(4, 20), adequate=rng.random() < 0.85,
                outcome=rng.choices(list(TrialOutcome), [55, 30, 5, 10])[0], recorded_by=who,
            ))
        classes = []
        if rng.random() < 0.8:
            classes.append(rng.choice(antidepressants))
        for cls, chance in ((MedClass.ATYPICAL_ANTIPSYCHOTIC, 0.12), (MedClass.OTHER, 0.3),
                            (MedClass.BENZODIAZEPINE, 0.22), (MedClass.OPIOID, 0.04),
                            (MedClass.NALTREXONE, 0.03), (MedClass.MEMANTINE, 0.02),
                            (MedClass.MAOI, 0.02), (MedClass.LITHIUM, 0.04)):
            if rng.random() < chance:
                classes.append(cls)
        if patient.diagnosis in (Diagnosis.BIPOLAR_I, Diagnosis.BIPOLAR_II) and rng.random() < 0.8:
            classes.append(rng.choice([MedClass.LITHIUM, MedClass.LAMOTRIGINE, MedClass.VALPROATE]))
        for cls in classes:
            started = first_start[i] - timedelta(days=rng.randrange(-20, 2000))
            stopped = None
            if rng.random() < 0.2 and started < today - timedelta(days=10):
                stopped = started + timedelta(days=rng.randrange(5, max(6, (today - started).days)))
            if cls == MedClass.BENZODIAZEPINE and stopped is None:
                on_benzo.add(i)
            meds.append(Medication(
                patient=patient, name=rng.choice(generics[cls]), drug_class=cls,
                dose=rng.choice(["10 mg daily", "20 mg daily", "1 mg twice daily", "50 mg"]),
                started_on=started, stopped_on=stopped,
                stop_reason="tapered" if stopped else "", recorded_by=who,
            ))
    PriorTrial.objects.bulk_create(trials, batch_size=BATCH)
    Medication.objects.bulk_create(meds, batch_size=BATCH)
    return len(trials), len(meds), on_benzo


def _dose_plan(plan: CoursePlan, rng: random.Random) -> list[tuple[Route, Decimal]]:
    """(route, dose) per session: mg/kg for IV and IM, mg otherwise, with the escalations and
    switches a clinic makes for a partial or non-response."""
    escalate = plan.response in ("partial", "non_responder") and rng.random() < 0.6
    switch = (plan.route == Route.IV and plan.sessions >= 10 and not plan.big
              and rng.random() < 0.06)
    route = plan.route
    if route.weight_based:
        dose = Decimal(rng.choice(["0.5"] * 8 + ["0.4", "0.6"]))
    elif route == Route.INTRANASAL:
        dose = Decimal(56)
    else:
        dose = Decimal(rng.choice([100, 150, 200, 250, 300]))
    doses = []
    for k in range(plan.sessions):
        if switch and k == 6:
            route, dose = Route.INTRANASAL, Decimal(56)
        elif route.weight_based and escalate and k in (4, 8):
            dose = dosing.next_ladder_step(dose) or dose
        elif route == Route.INTRANASAL and k == 2 and rng.random() < 0.7:
            dose = Decimal(84)
        doses.append((route, dose))
    return doses


def _course_rows(plans, patients, weights, users, on_benzo, rng, tz):
    clinicians = users[Role.CLINICIAN]
    courses = []
    for plan in plans:
        kind = _kind(plan)
        phase = kind if plan.active else Phase.ENDED
        maintenance_on = (plan.start + timedelta(days=plan.offsets[8])
                          if kind == Phase.MAINTENANCE else None)
        ended_on = end_reason = None
        if not plan.active:
            ended_on = plan.start + timedelta(days=plan.offsets[-1] + rng.randrange(7, 30))
            end_reason = (EndReason.NON_RESPONSE if plan.response == "non_responder"
                          else EndReason.COMPLETED if kind == Phase.MAINTENANCE
                          else rng.choice([EndReason.PATIENT_CHOICE, EndReason.COMPLETED,
                                           EndReason.TRANSFERRED, EndReason.ADVERSE_EFFECTS]))
        courses.append(Course(
            patient=patients[plan.patient], started_on=plan.start, phase=phase,
            planned_protocol={Route.IV: "IV 0.5 mg/kg × 6 over 3 weeks",
                              Route.IM: "IM 0.5 mg/kg twice weekly",
                              Route.INTRANASAL: "Esketamine 56 → 84 mg × 8",
                              }.get(plan.route, "Oral 150 mg twice weekly"),
            maintenance_started_on=maintenance_on, ended_on=ended_on,
            end_reason=end_reason or "", created_by=rng.choice(clinicians),
        ))
    Course.objects.bulk_create(courses, batch_size=BATCH)

    changes, sessions, events, assessments, decisions = [], [], [], [], []
    for plan, course in zip(plans, courses, strict=True):
        who = rng.choice(clinicians)
        kind = _kind(plan)
        steps = [("", Phase.INDUCTION, plan.start, "course started")]
        if kind in (Phase.EXTENDED_INDUCTION, Phase.MAINTENANCE):
            steps.append((Phase.INDUCTION, Phase.EXTENDED_INDUCTION,
                          plan.start + timedelta(days=plan.offsets[6]), "slow response"))
        if kind == Phase.MAINTENANCE:
            steps.append((steps[-1][1], Phase.MAINTENANCE, course.maintenance_started_on,
                          "responder"))
        if course.ended_on:
            steps.append((steps[-1][1], Phase.ENDED, course.ended_on, ""))
        changes += [PhaseChange(course=course, from_phase=a, to_phase=b, effective_on=on,
                                note=note, changed_by=who) for a, b, on, note in steps]

        weight = weights[plan.patient]
        patient = patients[plan.patient]
        ideal = rng.random() < 0.1
        used = patient.ideal_body_weight_kg() if ideal else weight
        doses = _dose_plan(plan, rng)
        madrs = _score_series(plan, rng.randrange(22, 46), 60, rng)
        phq9 = _score_series(plan, rng.randrange(12, 26), 27, rng)
        escalated_at = None
        for k, day in enumerate(plan.offsets):
            on = plan.start + timedelta(days=day)
            at = _aware(on, 9, 0, tz) + timedelta(minutes=15 * rng.randrange(0, 28))
            route, dose = doses[k]
            per_kg = dose if route.weight_based else None
            if per_kg is not None and k and doses[k - 1][1] != dose and escalated_at is None:
                escalated_at = at - timedelta(days=1)
            bp = (rng.randrange(105, 150), rng.randrange(62, 94))
            if rng.random() < 0.02:
                bp = (rng.randrange(181, 192), rng.randrange(95, 112))
            stopped = rng.random() < 0.015
            minutes = {Route.IV: rng.choice([40, 40, 45, 60]), Route.INTRANASAL:
                       rng.choice([120, 125, 130, 150] * 8 + [105])}.get(route, 100)
            sessions.append(TreatmentSession(
                course=course, started_at=at, route=route, dose_mg_per_kg=per_kg,
                dose_mg=dosing.dose_mg(per_kg, used) if per_kg is not None else dose,
                weight_basis=(WeightBasis.IDEAL if ideal else WeightBasis.ACTUAL)
                if per_kg is not None else "",
                weight_kg_used=used if per_kg is not None else None,
                infusion_minutes=minutes if route == Route.IV else None,
                enhanced_monitoring=per_kg is not None
                and per_kg > dosing.ENHANCED_MONITORING_ABOVE,
                bp_pre_systolic=bp[0], bp_pre_diastolic=bp[1], hr_pre=rng.randrange(60, 95),
                bp_peak_systolic=bp[0] + rng.randrange(5, 25),
                bp_peak_diastolic=bp[1] + rng.randrange(2, 12), hr_peak=rng.randrange(75, 110),
                bp_discharge_systolic=bp[0] + rng.randrange(-5, 8),
                bp_discharge_diastolic=bp[1] + rng.randrange(-4, 5),
                hr_discharge=rng.randrange(60, 95), spo2_min=rng.randrange(93, 100),
                dissociation=rng.choices(list(Intensity), [15, 50, 25, 10])[0],
                benzodiazepine_24h=plan.patient in on_benzo and rng.random() < 0.3,
                recovery_minutes=rng.randrange(45, 120),
                discharged_at=at + timedelta(minutes=minutes + (60 if route == Route.IV else 0)),
                status=SessionStatus.STOPPED if stopped else SessionStatus.COMPLETED,
                stop_reason=rng.choice(["blood pressure above limit", "patient request"])
                if stopped else "",
                clinician=rng.choice(clinicians),
            ))
            if rng.random() < 0.06:
                events.append((len(sessions) - 1, *rng.choice(ADVERSE)))
            morning = _aware(on, 8, 30, tz)
            for instrument, series in ((Instrument.MADRS, madrs), (Instrument.PHQ9, phq9)):
                if instrument == Instrument.MADRS:
                    suicidal = rng.choices([0, 1, 2, 3, 4], [50, 25, 15, 8, 2])[0]
                else:
                    suicidal = rng.choices([0, 1, 2], [90, 8, 2])[0]
                items = _items(instrument, series[k], suicidal, rng)
                assessments.append(Assessment(
                    course=course, instrument=instrument, administered_at=morning,
                    items=items, total=sum(items),
                    difficulty=rng.choice(["somewhat", "very"])
                    if instrument == Instrument.PHQ9 else "",
                    scored_by=who, signed_at=morning + timedelta(minutes=10),
                ))
        if escalated_at is not None and rng.random() < 0.5:
            decisions.append(FlagDecision(
                course=course, code="DOSE_ESCALATION", decision=Decision.ACCEPTED,
                action=ActionTaken.DOSE_CHANGE, detail="next ladder step from the next session",
                flag_message="synthetic", decided_by=who, decided_at=escalated_at,
            ))
    PhaseChange.objects.bulk_create(changes, batch_size=BATCH)
    TreatmentSession.objects.bulk_create(sessions, batch_size=BATCH)
    AdverseEvent.objects.bulk_create([
        AdverseEvent(session=sessions[i], description=text, severity=severity)
        for i, text, severity in events
    ], batch_size=BATCH)
    Assessment.objects.bulk_create(assessments, batch_size=BATCH)
    FlagDecision.objects.bulk_create(decisions, batch_size=BATCH)
    return {"courses": len(courses), "sessions": len(sessions), "assessments": len(assessments),
            "adverse_events": len(events), "phase_changes": len(changes),
            "flag_decisions": len(decisions)}


def _evaluation_fields(course: Course) -> dict:
    """What refresh_evaluation stores on a course, without saving it."""
    try:
        from courses.evaluation import evaluation_fields
    except ImportError:  # before the outcome columns: the evaluation alone
        return {"evaluation": as_stored(evaluate(course_facts(course), engine_settings())),
                "evaluated_at": timezone.now()}
    return evaluation_fields(course)


def fill_evaluations(batch: int = 500) -> int:
    """Evaluate every course with the real path (course_facts + the engine) and store it."""
    done, last = 0, 0
    while True:
        courses = list(Course.objects.select_related("patient").filter(pk__gt=last)
                       .order_by("pk")[:batch])
        if not courses:
            return done
        names: list[str] = []
        for course in courses:
            fields = _evaluation_fields(course)
            names = list(fields)
            for name, value in fields.items():
                setattr(course, name, value)
        with transaction.atomic():
            Course.objects.bulk_update(courses, names, batch_size=batch)
        done += len(courses)
        last = courses[-1].pk


def reset() -> None:
    if not is_scratch_database():
        raise NotAScratchDatabase(
            f"refusing to empty database {connection.settings_dict['NAME']!r}: the benchmark "
            "data goes only into a database whose name contains 'bench'"
        )
    call_command("flush", interactive=False, verbosity=0)


def generate(scale: Scale, seed: int = DEFAULT_SEED, today: date | None = None,
             *, replace: bool = False, log=lambda message: None) -> dict:
    """Fill the database at ``scale``; returns the row counts and the time of each step."""
    if Patient.objects.exists() or User.objects.filter(username=CLINICIAN).exists():
        if not replace:
            raise NotAScratchDatabase(
                "the database already holds patients: pass replace (--replace) to empty it first"
            )
        reset()
    elif not is_scratch_database():
        raise NotAScratchDatabase(
            f"database {connection.settings_dict['NAME']!r} is not a benchmark database: its "
            "name must contain 'bench'"
        )
    rng = random.Random(seed)
    today = today or timezone.localdate()
    tz = ZoneInfo(settings.TIME_ZONE)
    timings: dict[str, float] = {}
    started = clock.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        timings[name] = round(clock.perf_counter() - started, 2)
        log(f"  {name}: {timings[name]} s")
        started = clock.perf_counter()

    plans = plan_courses(scale, rng, today)
    with transaction.atomic():
        users = _users(scale, rng)
        patients, weights = _patients(scale, plans, users, rng)
        trials, meds, on_benzo = _medical_history(patients, plans, users, rng, today)
        step("patients, staff, medication lists")
        counts = _course_rows(plans, patients, weights, users, on_benzo, rng, tz)
        step("courses, sessions, assessments")
    fill_evaluations()
    step("evaluations (course_facts + engine, per course)")
    if connection.vendor == "postgresql":
        # What autovacuum does on a live server: statistics, and the visibility map without
        # which PostgreSQL reads table rows where an index alone would do (a bulk-loaded table
        # is all-invisible until vacuumed). VACUUM cannot run in a transaction (a test's).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)")
        step("VACUUM and ANALYZE")
    return {
        "scale": asdict(scale), "seed": seed, "today": today.isoformat(),
        "rows": {"patients": len(patients), "users": sum(len(u) for u in users.values()),
                 "prior_trials": trials, "medications": meds, **counts},
        "seconds": timings,
    }
