"""Dose arithmetic and the hard limits of SPEC §2.

Each ``check_*`` function returns ``None`` when the value is allowed, else the rule it breaks in
words a clinician understands ("must be between 25 and 350 kg"), without the value: a form shows
the value in its field, and the JSON reader adds it (", got 400"). A dose's reason names what was
entered, with its unit ("(you entered 70 mg)"), since the unit depends on the route. Forms and
the JSON reader both use them, so the limits live here once.
"""

from decimal import ROUND_HALF_UP, Decimal

from clinical.vocab import Route, Sex

MG_PER_KG_MIN = Decimal("0.05")
MG_PER_KG_MAX = Decimal("1.0")
ENHANCED_MONITORING_ABOVE = Decimal("0.75")  # mg/kg (000 "considerations for higher dosing")
ESKETAMINE_DOSES_MG = (Decimal(28), Decimal(56), Decimal(84))  # 28 mg devices
ORAL_MG_MIN = Decimal(10)  # product default, sublingual and oral
ORAL_MG_MAX = Decimal(1000)
WEIGHT_KG = (Decimal(25), Decimal(350))
HEIGHT_CM = (Decimal(100), Decimal(250))
INFUSION_MINUTES = (5, 240)
# The doses allowed in milligrams, in the words every hint and refusal uses.
ESKETAMINE_DOSES_TEXT = (", ".join(str(dose) for dose in ESKETAMINE_DOSES_MG[:-1])
                         + f" or {ESKETAMINE_DOSES_MG[-1]}")  # "28, 56 or 84"
ORAL_MG_TEXT = f"{ORAL_MG_MIN}–{ORAL_MG_MAX:,}"  # "10–1,000"
DOSE_MG_HELP = f"Intranasal: {ESKETAMINE_DOSES_TEXT} mg. Sublingual and oral: {ORAL_MG_TEXT} mg."
DOSE_LADDER = (Decimal("0.5"), Decimal("0.6"), Decimal("0.75"), Decimal("1.0"))  # IV and IM


def _range_reason(value, low, high, unit: str) -> str | None:
    if value < low or value > high:
        return f"must be between {low} and {high} {unit}"
    return None


def check_weight(kg: Decimal) -> str | None:
    return _range_reason(kg, *WEIGHT_KG, "kg")


def check_infusion_minutes(minutes: int) -> str | None:
    return _range_reason(minutes, *INFUSION_MINUTES, "minutes")


def _entered(dose: Decimal, unit: str) -> str:
    """What the clinician typed, as typed (70, not 70.0): "(you entered 70 mg)"."""
    return f"(you entered {format(Decimal(dose).normalize(), 'f')} {unit})"


def check_dose_mg_per_kg(dose: Decimal) -> str | None:
    """The reason, to follow "Dose": "must be at most 1.0 mg/kg (you entered 5 mg/kg)"."""
    if dose > MG_PER_KG_MAX:
        return f"must be at most {MG_PER_KG_MAX} mg/kg {_entered(dose, 'mg/kg')}"
    if dose < MG_PER_KG_MIN:
        return f"must be at least {MG_PER_KG_MIN} mg/kg {_entered(dose, 'mg/kg')}"
    return None


def check_dose_mg(route: Route, dose: Decimal) -> str | None:
    """The reason, to follow "Dose": "must be 28, 56 or 84 mg for intranasal esketamine (you
    entered 70 mg)"."""
    if route == Route.INTRANASAL:
        if dose not in ESKETAMINE_DOSES_MG:
            return (f"must be {ESKETAMINE_DOSES_TEXT} mg for intranasal esketamine "
                    f"{_entered(dose, 'mg')}")
        return None
    if dose < ORAL_MG_MIN or dose > ORAL_MG_MAX:
        return (f"must be between {ORAL_MG_MIN} and {ORAL_MG_MAX:,} mg for "
                f"{route.label.lower()} {_entered(dose, 'mg')}")
    return None


def dose_mg_hint(route: Route) -> str:
    """The doses in milligrams a route allows, as the session form says them once the route
    is chosen: "Intranasal esketamine: 28, 56 or 84 mg." """
    doses = ESKETAMINE_DOSES_TEXT if route == Route.INTRANASAL else ORAL_MG_TEXT
    return f"{route.label}: {doses} mg."


def ideal_body_weight_kg(sex: Sex, height_cm: Decimal) -> Decimal:
    """Devine formula: 50 kg (men) or 45.5 kg (women) + 2.3 kg per inch over five feet.

    Below five feet the formula goes under its base weight; we keep the formula as published
    rather than invent a floor, and the clinician sees the result before saving.
    """
    base = Decimal("50") if sex == Sex.MALE else Decimal("45.5")
    inches = Decimal(height_cm) / Decimal("2.54")
    return (base + Decimal("2.3") * (inches - 60)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def dose_mg(dose_mg_per_kg: Decimal, weight_kg: Decimal) -> Decimal:
    """The administered milligrams, to one decimal place."""
    return (dose_mg_per_kg * weight_kg).quantize(Decimal("0.1"), ROUND_HALF_UP)


def next_ladder_step(current: Decimal) -> Decimal | None:
    """The smallest step of 0.5 → 0.6 → 0.75 → 1.0 mg/kg above the current dose."""
    return next((step for step in DOSE_LADDER if step > current), None)
