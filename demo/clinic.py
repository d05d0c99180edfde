"""A synthetic demo clinic: staff, referring providers and patients whose courses tell the
stories of seed 000's case examples and the other situations a clinic meets every week.

Every name and number is invented. Loading goes through the same actions as the web forms, so
the demo has a real audit trail; a patient already present (by record number) is left alone,
so loading twice duplicates nothing.
"""

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, User
from accounts.twofactor import DEMO_DEVICE, TWO_FACTOR_ROLES
from assessments.actions import sign_assessment
from assessments.models import Assessment
from clinical import dosing
from clinical.instruments import INSTRUMENTS
from clinical.vocab import Diagnosis, Instrument, Intensity, MedClass, Phase, Route, Sex
from courses import actions as course_actions
from courses.models import Course, TreatmentSession, WeightBasis
from demo.rems import load_demo_rems
from demo.schedule import load_demo_schedule
from patients import actions as patient_actions
from patients.models import Medication, Patient, PriorTrial, TrialOutcome

DEMO_PASSWORD = "ketacare-demo-2026"
# The RFC 6238 test key ("12345678901234567890"), base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ:
# published on purpose, and refused by the login whenever DEBUG is off.
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"

STAFF = [
    ("clinician", "Dana", "Reyes", Role.CLINICIAN, "MD"),
    ("admin", "Sam", "Okafor", Role.CLINIC_ADMIN, ""),
    ("referrer1", "Lee", "Tanaka", Role.REFERRING_PROVIDER, "MD"),
    ("referrer2", "Ana", "Silva", Role.REFERRING_PROVIDER, "NP"),
]


@dataclass
class S:
    """A session ``day`` days after the course started."""

    day: int
    route: Route
    dose: str
    dissociation: Intensity = Intensity.MILD
    adverse: tuple[tuple[str, str], ...] = ()
    benzo: bool = False
    bp: tuple[int, int] = (126, 80)
    minutes: int = 40
    enhanced: bool = False
    stopped: str = ""


@dataclass
class Score:
    day: int
    instrument: Instrument
    total: int
    suicidal: int = 0  # MADRS item 10 / PHQ-9 item 9


@dataclass
class Med:
    name: str
    dose: str
    start_days_before: int  # negative: started during the course
    stop_day: int | None = None  # days after the course started


@dataclass
class Story:
    record_number: str
    first_name: str
    last_name: str
    born: date
    sex: Sex
    height_cm: int
    weight_kg: str
    diagnosis: Diagnosis
    referrer: str | None
    days_ago: int  # the course started this many days before today
    sessions: list[S]
    scores: list[Score]
    meds: list[Med] = field(default_factory=list)
    trials: int = 2
    phase: Phase = Phase.INDUCTION
    phase_changes: list[tuple[int, Phase, str]] = field(default_factory=list)
    end: tuple[int, str, str] | None = None
    psychotic: bool = False
    comorbidities: str = ""
    protocol: str = "IV 0.5 mg/kg × 6 over 3 weeks"
    # Flags the clinician accepts once the record reaches a day, when raised then:
    # (day, flag code, action taken, what was done).
    accepts: list[tuple[int, str, str, str]] = field(default_factory=list)
    email: str = ""  # with it, the patient agreed to self-report on the course's first day


def _iv(days, dose="0.5", **kw):
    return [S(d, Route.IV, dose, **kw) for d in days]


def _items(instrument: Instrument, total: int, suicidal: int) -> list[int]:
    """Item scores adding up to ``total`` with the suicide item set as given."""
    definition = INSTRUMENTS[instrument]
    items = [0] * definition.item_count
    items[-1] = suicidal
    remaining = total - suicidal
    position = 0
    while remaining > 0:
        if items[position] < definition.item_max:
            items[position] += 1
            remaining -= 1
        position = (position + 1) % (definition.item_count - 1)
    return items


M, P = Instrument.MADRS, Instrument.PHQ9

STORIES = [
    # Seed 000 case 1: benzodiazepine interference, seen after the first six infusions.
    Story("DEMO-001", "Martin", "Hale", date(1978, 3, 14), Sex.MALE, 180, "88.0", Diagnosis.MDD,
          "referrer1", 20, _iv([0, 2, 5, 7, 9, 12], benzo=True),
          [Score(0, M, 36), Score(0, P, 19), Score(7, M, 33), Score(13, M, 29), Score(13, P, 16)],
          meds=[Med("clonazepam", "1 mg twice daily", 400), Med("sertraline", "150 mg", 300)],
          trials=3, comorbidities="Generalized anxiety"),
    # Seed 000 case 2: bipolar II, distressing dissociation on IV, response on esketamine.
    Story("DEMO-002", "Clara", "Voss", date(1991, 7, 2), Sex.FEMALE, 165, "61.0",
          Diagnosis.BIPOLAR_II, "referrer1", 52,
          _iv([0, 2, 4, 7, 9, 11], dissociation=Intensity.SEVERE)
          + [S(16, Route.INTRANASAL, "56", Intensity.MILD)]
          + [S(d, Route.INTRANASAL, "84", Intensity.MILD) for d in (19, 23, 26, 30, 33, 37, 40)],
          [Score(0, M, 32), Score(12, M, 22), Score(27, M, 17), Score(41, M, 12),
           Score(0, P, 17), Score(41, P, 7)],
          meds=[Med("lamotrigine", "200 mg daily", 700)], comorbidities="Childhood trauma"),
    # Seed 000 case 3: optimized thoroughly, plateau, appropriate discontinuation review.
    Story("DEMO-003", "Victor", "Brandt", date(1974, 11, 20), Sex.MALE, 176, "94.0", Diagnosis.MDD,
          "referrer2", 45,
          _iv([0, 2, 4, 7, 9, 11]) + _iv([14, 16], "0.75", enhanced=False)
          + _iv([18, 21], "0.75") + [S(d, Route.IM, "0.75") for d in (25, 28)],
          [Score(0, M, 25), Score(12, M, 18), Score(19, M, 17), Score(22, M, 18),
           Score(29, M, 17)],
          meds=[Med("lithium carbonate", "600 mg daily", -20), Med("duloxetine", "60 mg", 500)],
          trials=4, comorbidities="Chronic low back pain; personality features"),
    # Remission after a standard IV induction.
    Story("DEMO-004", "Nadia", "Okoro", date(1985, 5, 9), Sex.FEMALE, 170, "70.5", Diagnosis.MDD,
          "referrer2", 16, _iv([0, 2, 4, 7, 9, 11]),
          [Score(0, M, 30), Score(0, P, 18), Score(7, M, 16), Score(14, M, 8), Score(14, P, 3)],
          meds=[Med("escitalopram", "20 mg", 200)]),
    # Maintenance: responded, now spaced out.
    Story("DEMO-005", "Owen", "Pike", date(1969, 1, 30), Sex.MALE, 183, "90.0", Diagnosis.MDD,
          "referrer1", 90,
          _iv([0, 2, 4, 7, 9, 11]) + _iv([18, 25, 32, 39, 53, 67, 88]),
          [Score(0, M, 34), Score(0, P, 20), Score(12, M, 15), Score(12, P, 8), Score(39, P, 6),
           Score(67, P, 7), Score(88, M, 13), Score(88, P, 7)],
          phase=Phase.MAINTENANCE, phase_changes=[(39, Phase.MAINTENANCE, "responder")],
          email="owen.pike@patient.invalid"),
    # Bipolar I with no mood stabilizer on the list: a critical flag.
    Story("DEMO-006", "Iris", "Lund", date(1988, 9, 12), Sex.FEMALE, 160, "58.0",
          Diagnosis.BIPOLAR_I, None, 6, _iv([0, 3]),
          [Score(0, M, 31), Score(0, P, 16), Score(4, M, 27)],
          meds=[Med("quetiapine", "100 mg at night", 120)]),
    # Intranasal esketamine still at 56 mg, partial response.
    Story("DEMO-007", "Tomas", "Reed", date(1980, 4, 4), Sex.MALE, 178, "80.0", Diagnosis.MDD,
          None, 18, [S(d, Route.INTRANASAL, "56") for d in (0, 3, 7, 10, 14, 17)],
          [Score(0, M, 33), Score(10, M, 26), Score(17, M, 22)],
          meds=[Med("venlafaxine", "225 mg", 400)], protocol="Esketamine 56 → 84 mg × 8"),
    # Suicidal ideation on today's PHQ-9.
    Story("DEMO-008", "Ruth", "Meyer", date(1995, 12, 1), Sex.FEMALE, 168, "64.0", Diagnosis.MDD,
          "referrer2", 4, _iv([0, 2]),
          [Score(0, P, 21, suicidal=2), Score(0, M, 35, suicidal=4), Score(3, P, 18, suicidal=1)]),
    # Elevated blood pressure before the latest infusion.
    Story("DEMO-009", "George", "Adler", date(1962, 6, 18), Sex.MALE, 175, "102.0",
          Diagnosis.MDD, None, 9, _iv([0, 2]) + _iv([7], bp=(184, 104)),
          [Score(0, M, 29), Score(6, M, 24)], meds=[Med("naltrexone", "50 mg daily", 60)]),
    # Oral ketamine, early in the course, on an unclassified supplement.
    Story("DEMO-010", "Helen", "Shaw", date(1983, 2, 25), Sex.FEMALE, 162, "66.0", Diagnosis.MDD,
          "referrer1", 10, [S(d, Route.ORAL, "150") for d in (0, 3, 7)],
          [Score(0, P, 16), Score(7, P, 12)],
          meds=[Med("St John's wort", "300 mg", 30), Med("bupropion XL", "300 mg", 300)],
          protocol="Oral 150 mg twice weekly"),
    # Ended course: non-response despite escalation.
    Story("DEMO-011", "Paul", "Ibsen", date(1976, 8, 8), Sex.MALE, 181, "85.0", Diagnosis.OTHER,
          None, 120, _iv([0, 2, 4, 7, 9, 11]) + _iv([14, 16], "0.6"),
          [Score(0, M, 28), Score(12, M, 27), Score(17, M, 26)],
          end=(20, "non_response", "Referred for ECT evaluation.")),
    # Just starting: baseline scored, no session yet, treatment resistance not verified.
    Story("DEMO-012", "Maya", "Chen", date(1999, 10, 10), Sex.FEMALE, 158, "52.0", Diagnosis.MDD,
          "referrer2", 0, [], [Score(0, M, 27), Score(0, P, 15)], trials=1),
    # Psychotic features recorded: specialist oversight.
    Story("DEMO-013", "Ivan", "Novak", date(1971, 3, 3), Sex.MALE, 179, "77.0", Diagnosis.MDD,
          None, 3, _iv([0]), [Score(0, M, 38)], psychotic=True,
          meds=[Med("aripiprazole", "5 mg", 90), Med("memantine", "10 mg", 40)]),
    # Scores overdue: baseline scored, then four infusions and no score since.
    Story("DEMO-014", "Lena", "Fischer", date(1987, 6, 21), Sex.FEMALE, 172, "68.0",
          Diagnosis.MDD, "referrer1", 8, _iv([0, 2, 5, 7]), [Score(0, M, 31), Score(0, P, 17)],
          meds=[Med("sertraline", "100 mg", 250), Med("zolpidem", "5 mg at night", 60)]),
    # A poorly tolerated dose is not suggested again: 0.75 mg/kg brought severe dissociation
    # and a moderate adverse event, so back at 0.6 the escalation to 0.75 is withheld.
    Story("DEMO-015", "Samuel", "Ortiz", date(1982, 1, 17), Sex.MALE, 177, "84.0", Diagnosis.MDD,
          "referrer2", 23,
          _iv([0, 2, 4, 7]) + _iv([9, 11], "0.6")
          + _iv([14], "0.75", dissociation=Intensity.SEVERE)
          + _iv([16], "0.75", dissociation=Intensity.SEVERE,
                adverse=(("Vomiting during recovery", "moderate"),))
          + _iv([18, 21], "0.6"),
          [Score(0, M, 34), Score(8, M, 32), Score(17, M, 31), Score(22, M, 31)],
          meds=[Med("escitalopram", "20 mg", 300)]),
]


# -- the wider clinic ------------------------------------------------------------------------
# Beyond the stories above, a year of ordinary courses, so the outcome dashboard has groups large
# enough to show rates. Drawn from a fixed seed: the same patients every time, on any machine.

FIRST_NAMES = ["Alma", "Bruno", "Celia", "Dario", "Edith", "Felix", "Greta", "Hugo", "Ines",
               "Jonas", "Kira", "Luca", "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sven",
               "Tara", "Uma", "Viktor", "Wanda", "Yusuf", "Zora"]
LAST_NAMES = ["Abbott", "Berg", "Castillo", "Dahl", "Eriksen", "Fischer", "Gallo", "Horvat",
              "Ishikawa", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Olsen",
              "Petrov", "Quist", "Rossi", "Sato", "Toivonen", "Ulrich", "Varga", "Weiss"]
WIDER_CLINIC = 45  # DEMO-016 … DEMO-060: with the stories, sixty patients
# (route, first dose, escalated dose or None, session spacing in days)
REGIMENS = [
    (Route.IV, "0.5", None, 3), (Route.IV, "0.5", "0.6", 3), (Route.IV, "0.5", "0.75", 2),
    (Route.IV, "0.6", None, 3), (Route.IM, "0.5", None, 3), (Route.IM, "0.5", "0.75", 3),
    (Route.INTRANASAL, "56", None, 3), (Route.INTRANASAL, "56", "84", 3),
    (Route.INTRANASAL, "84", None, 4), (Route.SUBLINGUAL, "100", None, 3),
    (Route.ORAL, "150", "250", 4),
]
# Share of the baseline left at the last score: remission, response, partial, non-response.
OUTCOMES = [(0.15, 0.3), (0.35, 0.5), (0.55, 0.72), (0.8, 1.05)]


def wider_clinic_stories() -> list[Story]:
    import random

    rng = random.Random(2026)
    stories = []
    for n in range(WIDER_CLINIC):
        route, dose, escalated, spacing = REGIMENS[n % len(REGIMENS)]
        count = rng.randint(4, 12)
        days = [i * spacing + rng.randint(0, 1) for i in range(count)]
        step_at = count // 2 if escalated else count
        sessions = [
            S(day, route, escalated if escalated and i >= step_at else dose,
              dissociation=rng.choice([Intensity.NONE, Intensity.MILD, Intensity.MILD,
                                       Intensity.MODERATE]),
              bp=(rng.randint(112, 142), rng.randint(70, 88)))
            for i, day in enumerate(days)
        ]
        baseline = rng.randint(24, 40)
        low, high = OUTCOMES[rng.randrange(len(OUTCOMES))]
        final = max(0, min(60, round(baseline * rng.uniform(low, high))))
        scores = [Score(0, M, baseline), Score(0, P, min(27, round(baseline * 0.55)))]
        marks = sorted({days[min(count - 1, k)] + 1 for k in (count // 3, 2 * count // 3)}
                       | {days[-1] + 1})
        for k, day in enumerate(marks, start=1):
            total = round(baseline + (final - baseline) * k / len(marks))
            scores.append(Score(day, M, total))
        scores.append(Score(days[-1] + 1, P, min(27, round(final * 0.55))))
        # A third still in their course (a session in the last days), the rest over the year.
        started = days[-1] + (rng.randint(2, 12) if n % 3 == 0 else rng.randint(50, 320))
        end = None
        if started - days[-1] > 45:  # long enough ago: the course has ended
            reason = "completed" if final <= baseline * 0.5 else "non_response"
            end = (days[-1] + 7, reason, "Course finished; follow-up with the referring "
                   "provider." if reason == "completed" else "No meaningful response.")
        accepts = []
        if escalated:  # escalated when the flag said so, if the record raised it by then
            code = ("ESKETAMINE_ESCALATION" if route == Route.INTRANASAL else "DOSE_ESCALATION")
            accepts.append((days[step_at - 1], code, "dose_change",
                            f"{escalated} {'mg' if route == Route.INTRANASAL else 'mg/kg'} "
                            "from the next session"))
        male = rng.random() < 0.45
        meds = [Med(*rng.choice([("escitalopram", "10 mg", 200), ("sertraline", "100 mg", 300),
                                 ("bupropion", "150 mg", 150), ("mirtazapine", "15 mg", 90)]))]
        if rng.random() < 0.25:
            meds.append(Med("clonazepam", "0.5 mg at night", 365))
            accepts.append((0, "BENZODIAZEPINE", "medication_change",
                            "Clonazepam held on treatment days"))
        stories.append(Story(
            f"DEMO-{16 + n:03d}", rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES),
            date(rng.randint(1955, 2002), rng.randint(1, 12), rng.randint(1, 28)),
            Sex.OTHER if n % 23 == 7 else Sex.MALE if male else Sex.FEMALE,
            rng.randint(175, 192) if male else rng.randint(155, 175),
            f"{rng.randint(55, 105)}.0",
            Diagnosis.BIPOLAR_II if n % 9 == 4 else Diagnosis.MDD,
            rng.choice(["referrer1", "referrer2", None]), started, sessions, scores,
            meds=meds, trials=rng.randint(2, 4), end=end, accepts=accepts,
            protocol=f"{route.label} {dose} {'mg/kg' if route.weight_based else 'mg'}, "
                     f"about every {spacing} days",
        ))
    return stories


def _at(start: date, day: int, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(start + timedelta(days=day), time(hour, minute)))


def ensure_staff() -> dict[str, User]:
    users = {}
    for username, first, last, role, credentials in STAFF:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "role": role,
                      "credentials": credentials, "email": f"{username}@demo.invalid"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        if role in TWO_FACTOR_ROLES:
            TOTPDevice.objects.get_or_create(
                user=user, name=DEMO_DEVICE, defaults={"key": DEMO_TOTP_KEY, "confirmed": True}
            )
        users[username] = user
    return users


@transaction.atomic
def load_story(story: Story, users: dict[str, User], today: date) -> Patient | None:
    if Patient.objects.filter(record_number=story.record_number).exists():
        return None
    clinician = users["clinician"]
    start = today - timedelta(days=story.days_ago)
    patient = patient_actions.create_patient(
        clinician,
        Patient(
            record_number=story.record_number, first_name=story.first_name,
            last_name=story.last_name, date_of_birth=story.born, sex=story.sex,
            height_cm=Decimal(story.height_cm), diagnosis=story.diagnosis,
            psychotic_features=story.psychotic, comorbidities=story.comorbidities,
            referring_provider=users.get(story.referrer) if story.referrer else None,
            email=story.email, self_report_consent_on=start if story.email else None,
        ),
        Decimal(story.weight_kg), start - timedelta(days=3),
    )
    for drug, drug_class in [("sertraline", MedClass.SSRI), ("venlafaxine", MedClass.SNRI),
                             ("bupropion", MedClass.BUPROPION), ("nortriptyline", MedClass.TCA)
                             ][: story.trials]:
        patient_actions.add_prior_trial(clinician, PriorTrial(
            patient=patient, drug=drug, drug_class=drug_class, weeks=8, adequate=True,
            outcome=TrialOutcome.NO_RESPONSE,
        ))
    for med in story.meds:
        medication = patient_actions.add_medication(clinician, Medication(
            patient=patient, name=med.name, dose=med.dose,
            started_on=start - timedelta(days=med.start_days_before),
        ))
        if med.stop_day is not None:
            patient_actions.stop_medication(
                clinician, medication, start + timedelta(days=med.stop_day), "tapered"
            )
    course = course_actions.start_course(
        clinician, Course(patient=patient, started_on=start, planned_protocol=story.protocol)
    )
    weight = Decimal(story.weight_kg)
    # The record in time order (a score at 08:30, a session at 09:00), so a flag the story
    # accepts is decided on the record as it stood that day.
    events = sorted(
        [(spec.day, 1, spec) for spec in story.sessions]
        + [(score.day, 0, score) for score in story.scores]
        + [(day, 2, accept) for day, *accept in story.accepts],
        key=lambda event: (event[0], event[1]),
    )
    for _day, kind, spec in events:
        if kind == 0:
            _sign(clinician, course, start, spec)
            continue
        if kind == 2:
            code, action, detail = spec
            # Not raised on the record that day: nothing to accept.
            with suppress(course_actions.FlagNotRaised):
                course_actions.decide_flag(clinician, course, code, "accepted", action=action,
                                           detail=detail)
            continue
        route = Route(spec.route)
        per_kg = Decimal(spec.dose) if route.weight_based else None
        at = _at(start, spec.day, 9)
        course_actions.record_session(clinician, TreatmentSession(
            course=course, started_at=at, route=route, dose_mg_per_kg=per_kg,
            dose_mg=dosing.dose_mg(per_kg, weight) if per_kg else Decimal(spec.dose),
            weight_basis=WeightBasis.ACTUAL if per_kg else "",
            weight_kg_used=weight if per_kg else None,
            infusion_minutes=spec.minutes if route == Route.IV else None,
            enhanced_monitoring=spec.enhanced or bool(per_kg and per_kg > Decimal("0.75")),
            bp_pre_systolic=spec.bp[0], bp_pre_diastolic=spec.bp[1], hr_pre=76,
            bp_peak_systolic=spec.bp[0] + 14, bp_peak_diastolic=spec.bp[1] + 8, hr_peak=88,
            bp_discharge_systolic=spec.bp[0] + 2, bp_discharge_diastolic=spec.bp[1],
            hr_discharge=74,
            spo2_min=97, dissociation=spec.dissociation, benzodiazepine_24h=spec.benzo,
            recovery_minutes=60, discharged_at=at + timedelta(minutes=125),
            status="stopped" if spec.stopped else "completed", stop_reason=spec.stopped,
        ), list(spec.adverse))
    for day, phase, note in story.phase_changes:
        course_actions.change_phase(clinician, course, phase, start + timedelta(days=day), note)
    if story.end:
        day, reason, note = story.end
        course_actions.end_course(clinician, course, start + timedelta(days=day), reason, note)
    return patient


def _sign(clinician, course, start: date, score: Score) -> None:
    sign_assessment(clinician, Assessment(
        course=course, instrument=score.instrument,
        administered_at=_at(start, score.day, 8, 30),
        items=_items(score.instrument, score.total, score.suicidal),
    ))


def load_demo_clinic(today: date | None = None, *, wider: bool = True
                     ) -> tuple[dict[str, User], list[Patient]]:
    """The stories, and (``wider``) the wider clinic's year of ordinary courses."""
    today = today or timezone.localdate()
    users = ensure_staff()
    stories = STORIES + (wider_clinic_stories() if wider else [])
    created = [p for story in stories if (p := load_story(story, users, today))]
    load_demo_schedule(users, today)  # plans and appointments: demo/schedule.py
    load_demo_rems(users, today)  # REMS enrolment and forms: demo/rems.py
    return users, created
