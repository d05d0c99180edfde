"""Course facts from the JSON of SPEC §5, and the evaluation back as JSON.

Every refusal is an :class:`InputError` whose text is one line naming the field and the reason,
e.g. ``sessions[2].dose_mg_per_kg: must be at most 1.0 mg/kg (you entered 1.2 mg/kg)``;
nothing is evaluated from input that was refused. Numbers are read as :class:`~decimal.Decimal`
so that 0.75 mg/kg is exactly 0.75.

Readings of the SPEC for the input (the engine's are at the top of :mod:`clinical.engine`):

- Required: ``patient`` with ``diagnosis`` and ``psychotic_features`` (a contraindication must
  not default to "no"), and ``phase`` (it decides which flags are raised). A session needs ``at``,
  ``route``, ``status``, ``dissociation``, ``adverse_event_severity`` and the dose of its route
  (``dose_mg_per_kg`` for IV and IM, ``dose_mg`` otherwise). A medication needs ``name`` and
  ``start``; a failed trial ``drug`` and ``adequate``; an assessment ``at``, ``instrument`` and
  ``items`` or ``total``. Everything else may be omitted or null.
- An unknown key is refused like an unknown spelling, so a misspelled field never silently takes
  its default. ``accepted_flags`` must name known flag codes. A key given twice is refused.
- A time without an offset is in the clinic's time zone; a date-only ``as_of`` means the end of
  that day, a date-only session or assessment time the start of it.
- ``dose_mg_per_kg`` is refused on the routes dosed in mg; ``stop`` before ``start`` and
  ``discharged_at`` before ``at`` are refused; ``bp_pre`` is [systolic, diastolic], two whole
  numbers above 0 with the systolic higher.
"""

import json
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from clinical import dosing
from clinical.catalogue import classify
from clinical.engine import DEFAULTS, EngineSettings, FlagCode, evaluate
from clinical.facts import (
    AssessmentFact,
    CourseFacts,
    FailedTrial,
    MedicationFact,
    PatientFacts,
    SessionFact,
)
from clinical.instruments import INSTRUMENTS, ItemError, validate_items
from clinical.vocab import (
    Diagnosis,
    Instrument,
    Intensity,
    MedClass,
    Phase,
    Route,
    SessionStatus,
)

FLAG_CODES = frozenset(code.value for code in FlagCode)


class InputError(ValueError):
    """Refused input: ``field`` is where (``sessions[2].dose_mg_per_kg``), ``reason`` why."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = " ".join(reason.split())  # always one line
        super().__init__(f"{field}: {self.reason}")


def _shown(value) -> str:
    """A value as the input spelled it, on one line."""
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Reader:
    """Reads one JSON object, knowing its path for the error messages."""

    def __init__(self, data, path: str, required: tuple[str, ...], optional: tuple[str, ...]):
        self.path = path
        if not isinstance(data, dict):
            raise InputError(path or "input", f"must be an object, got {_kind(data)}")
        self.data = data
        allowed = required + optional
        for key in data:
            if key not in allowed:
                raise InputError(
                    self.field(key), f"unknown field; expected one of {', '.join(allowed)}"
                )
        for key in required:
            if data.get(key) is None:
                raise InputError(self.field(key), "is required")

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str):
        return self.data.get(key)

    def fail(self, key: str, reason: str):
        raise InputError(self.field(key), reason)

    def enum(self, key: str, enum, default=None):
        value = self.get(key)
        if value is None:
            return default
        spellings = [member.value for member in enum]
        if not isinstance(value, str) or value not in spellings:
            self.fail(
                key, f"unknown spelling {_shown(value)}; expected one of {', '.join(spellings)}"
            )
        return enum(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_kind(value)} {_shown(value)}")
        return value

    def text(self, key: str) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {_kind(value)} {_shown(value)}")
        return value.strip()

    def number(self, key: str) -> Decimal | None:
        value = self.get(key)
        if value is None:
            return None
        return _number(value, self.field(key))

    def whole(self, key: str) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        return _whole(value, self.field(key))

    def items(self, key: str) -> list | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(key, f"must be a list, got {_kind(value)} {_shown(value)}")
        return value

    def moment(self, key: str, tz, *, end_of_day: bool = False) -> datetime | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be an ISO 8601 date-time string, got {_kind(value)}")
        try:
            if len(value) == 10:  # a date only: YYYY-MM-DD
                day = date.fromisoformat(value)
                moment = datetime.combine(day, time.max if end_of_day else time.min)
            else:
                moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, f"malformed date-time {_shown(value)}; expected e.g. 2026-02-02T09:00")
        return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment

    def day(self, key: str) -> date | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be an ISO 8601 date string, got {_kind(value)}")
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.fail(key, f"malformed date {_shown(value)}; expected e.g. 2026-02-02")


def _number(value, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InputError(field, f"must be a number, got {_kind(value)} {_shown(value)}")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:  # pragma: no cover - json gives no such numbers
        raise InputError(field, f"must be a number, got {_shown(value)}") from None
    if not number.is_finite():
        raise InputError(field, f"must be a finite number, got {_shown(value)}")
    return number


def _whole(value, field: str) -> int:
    number = _number(value, field)
    if number != number.to_integral_value():
        raise InputError(field, f"must be a whole number, got {_shown(value)}")
    return int(number)


def _check(field: str, reason: str | None, value=None) -> None:
    """A hard limit of SPEC §2 broken: the rule, then the value given (a dose's reason already
    names what was entered)."""
    if reason is not None:
        raise InputError(field, reason if value is None else f"{reason}, got {value}")


def _patient(data) -> PatientFacts:
    reader = _Reader(
        data, "patient", ("diagnosis", "psychotic_features"), ("weight_kg", "failed_trials")
    )
    weight = reader.number("weight_kg")
    if weight is not None:
        _check(reader.field("weight_kg"), dosing.check_weight(weight), weight)
    trials = []
    for index, trial in enumerate(reader.items("failed_trials") or []):
        trial_reader = _Reader(
            trial, f"patient.failed_trials[{index}]", ("drug", "adequate"), ("class",)
        )
        drug = trial_reader.text("drug")
        trials.append(
            FailedTrial(
                drug=drug,
                drug_class=trial_reader.enum("class", MedClass, default=classify(drug)),
                adequate=trial_reader.boolean("adequate"),
            )
        )
    return PatientFacts(
        diagnosis=reader.enum("diagnosis", Diagnosis),
        psychotic_features=reader.boolean("psychotic_features"),
        weight_kg=weight,
        failed_trials=tuple(trials),
    )


def _medication(data, path: str) -> MedicationFact:
    reader = _Reader(data, path, ("name", "start"), ("class", "stop"))
    name = reader.text("name")
    start, stop = reader.day("start"), reader.day("stop")
    if stop is not None and stop < start:
        reader.fail("stop", f"must be on or after start {start.isoformat()}, got {stop}")
    return MedicationFact(
        name=name,
        drug_class=reader.enum("class", MedClass, default=classify(name)),
        start=start,
        stop=stop,
    )


SESSION_FIELDS = (
    "at",
    "route",
    "dose_mg_per_kg",
    "dose_mg",
    "minutes",
    "dissociation",
    "adverse_event_severity",
    "benzodiazepine_24h",
    "bp_pre",
    "discharged_at",
    "enhanced_monitoring",
    "status",
)
SESSION_REQUIRED = ("at", "route", "status", "dissociation", "adverse_event_severity")


def _session(data, path: str, tz) -> SessionFact:
    optional = tuple(key for key in SESSION_FIELDS if key not in SESSION_REQUIRED)
    reader = _Reader(data, path, SESSION_REQUIRED, optional)
    at = reader.moment("at", tz)
    route = reader.enum("route", Route)
    per_kg, mg = reader.number("dose_mg_per_kg"), reader.number("dose_mg")
    if route.weight_based:
        if per_kg is None:
            reader.fail("dose_mg_per_kg", f"is required for route {route}")
        _check(reader.field("dose_mg_per_kg"), dosing.check_dose_mg_per_kg(per_kg))
        if mg is not None and mg <= 0:
            reader.fail("dose_mg", f"must be above 0 mg, got {mg}")
    else:
        if per_kg is not None:
            reader.fail(
                "dose_mg_per_kg", f"only IV and IM are dosed in mg/kg; give dose_mg for {route}"
            )
        if mg is None:
            reader.fail("dose_mg", f"is required for route {route}")
        _check(reader.field("dose_mg"), dosing.check_dose_mg(route, mg))
    minutes = reader.whole("minutes")
    if minutes is not None:
        _check(reader.field("minutes"), dosing.check_infusion_minutes(minutes), minutes)
    discharged = reader.moment("discharged_at", tz)
    if discharged is not None and discharged < at:
        reader.fail("discharged_at", f"must be at or after the session time {at.isoformat()}")
    return SessionFact(
        at=at,
        route=route,
        dose_mg_per_kg=per_kg,
        dose_mg=mg,
        minutes=minutes,
        dissociation=reader.enum("dissociation", Intensity),
        adverse_event_severity=reader.enum("adverse_event_severity", Intensity),
        benzodiazepine_24h=reader.boolean("benzodiazepine_24h"),
        bp_pre=_blood_pressure(reader),
        discharged_at=discharged,
        enhanced_monitoring=reader.boolean("enhanced_monitoring"),
        status=reader.enum("status", SessionStatus),
    )


def _blood_pressure(reader: _Reader) -> tuple[int, int] | None:
    values = reader.items("bp_pre")
    if values is None:
        return None
    if len(values) != 2:
        reader.fail("bp_pre", f"must be [systolic, diastolic], got {len(values)} values")
    systolic, diastolic = (
        _whole(value, f"{reader.field('bp_pre')}[{index}]") for index, value in enumerate(values)
    )
    if diastolic <= 0 or systolic <= diastolic:
        reader.fail(
            "bp_pre",
            f"must be [systolic, diastolic] above 0 with the systolic higher, "
            f"got {systolic}/{diastolic}",
        )
    return systolic, diastolic


def _assessment(data, path: str, tz) -> AssessmentFact:
    reader = _Reader(data, path, ("at", "instrument"), ("items", "total"))
    at = reader.moment("at", tz)
    instrument = reader.enum("instrument", Instrument)
    definition = INSTRUMENTS[instrument]
    items, total = reader.items("items"), reader.get("total")
    if items is None and total is None:
        reader.fail("items", "item scores (or a total for imported history) are required")
    if items is not None:
        try:
            validate_items(definition, items)
        except ItemError as error:
            raise InputError(reader.field("items"), str(error)) from None
        items = tuple(items)
    if total is not None:
        total = _whole(total, reader.field("total"))
        if not 0 <= total <= definition.total_max:
            reader.fail(
                "total", f"{definition.name} total must be 0–{definition.total_max}, got {total}"
            )
        if items is not None and sum(items) != total:
            reader.fail("total", f"is {total} but the item scores add up to {sum(items)}")
    return AssessmentFact(
        at=at,
        instrument=instrument,
        total=sum(items) if items is not None else total,
        items=items,
    )


COURSE_FIELDS = (
    "maintenance_started",
    "as_of",
    "medications",
    "sessions",
    "assessments",
    "accepted_flags",
)


def parse_course(data: dict, settings: EngineSettings = DEFAULTS) -> CourseFacts:
    """The course facts of a SPEC §5 input object; raises :class:`InputError`."""
    tz = settings.timezone
    reader = _Reader(data, "", ("patient", "phase"), COURSE_FIELDS)
    patient = _patient(reader.get("patient"))
    accepted = []
    for index, code in enumerate(reader.items("accepted_flags") or []):
        if not isinstance(code, str) or code not in FLAG_CODES:
            raise InputError(f"accepted_flags[{index}]", f"unknown flag code {_shown(code)}")
        accepted.append(code)

    def listed(key, parse):
        return tuple(
            parse(item, f"{key}[{index}]") for index, item in enumerate(reader.items(key) or [])
        )

    return CourseFacts(
        patient=patient,
        phase=reader.enum("phase", Phase),
        maintenance_started=reader.day("maintenance_started"),
        as_of=reader.moment("as_of", tz, end_of_day=True),
        medications=listed("medications", _medication),
        sessions=listed("sessions", lambda item, path: _session(item, path, tz)),
        assessments=listed("assessments", lambda item, path: _assessment(item, path, tz)),
        accepted_flags=frozenset(accepted),
    )


def _refuse_duplicates(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            raise InputError(key, "is given twice")
        data[key] = value
    return data


def _refuse_constant(name):
    raise InputError("input", f"invalid JSON: {name} is not a number")


def load_course(text: str, settings: EngineSettings = DEFAULTS) -> CourseFacts:
    """The course facts of a SPEC §5 JSON text; raises :class:`InputError`."""
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_refuse_duplicates,
        )
    except json.JSONDecodeError as error:
        raise InputError(
            "input", f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    return parse_course(data, settings)


def evaluate_json(text: str, settings: EngineSettings = DEFAULTS) -> str:
    """The evaluation of a SPEC §5 JSON text, as JSON text; raises :class:`InputError`."""
    evaluation = evaluate(load_course(text, settings), settings)
    return json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False)
