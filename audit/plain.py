"""The audit report in words a clinic admin reads: model names ("Treatment session"), field
labels ("BP before, systolic"), choice labels ("IV ketamine"), and patients by record number.

The stored rows stay as they are (the hash chain covers them, and the CSV export gives them
raw); this only changes how a page of them reads.
"""

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist

from accounts.models import User
from patients.models import Patient

USER_TYPE = f"{User._meta.app_label}.{User.__name__}"

# Bookkeeping a reader does not need: the row's own id, the form's one-time token, when the row
# was written (the event's time says it) and the evaluation the engine stores (its own page).
HIDDEN = frozenset({"id", "submission_token", "created_at", "updated_at", "recorded_at",
                    "signed_at", "changed_at", "evaluation", "evaluated_at", "version"})


@dataclass(frozen=True)
class Change:
    label: str
    before: object
    after: object


@dataclass(frozen=True)
class PlainEvent:
    event: object
    what: str  # "Treatment session 12", "Patient DEMO-001"
    record_number: str
    changes: list[Change]


def _model(object_type: str):
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def _words(field, value):
    if value is None or value == "":
        return None
    if field is not None and field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        return value[:16].replace("T", " ")  # an ISO date-time, to the minute
    return value


def _change(model, name, before, after) -> Change | None:
    if name in HIDDEN:
        return None
    field = None
    if model is not None:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
    if field is not None and field.is_relation and not field.many_to_many:
        if before is None:
            return None  # a new row's links (its course, its clinician) are shown elsewhere
        label = str(field.verbose_name)
    else:
        label = str(getattr(field, "verbose_name", name.replace("_", " ")))
    return Change(label[:1].upper() + label[1:], _words(field, before), _words(field, after))


def plain_events(events) -> list[PlainEvent]:
    """A page of audit events in words: a query for the record numbers, one for the staff
    accounts' user names."""
    events = list(events)
    numbers = dict(Patient.objects.filter(
        pk__in={e.patient_id for e in events if e.patient_id}
    ).values_list("pk", "record_number"))
    accounts = {  # staff accounts by user name, not by number
        str(pk): username for pk, username in User.objects.filter(pk__in={
            int(e.object_id) for e in events
            if e.object_type == USER_TYPE and str(e.object_id).isdigit()
        }).values_list("pk", "username")
    }
    rows = []
    for event in events:
        model = _model(event.object_type) if event.object_type else None
        name = str(model._meta.verbose_name) if model else (event.object_type or "")
        name = name[:1].upper() + name[1:]
        if event.object_type == USER_TYPE and event.object_id in accounts:
            what = f"Account {accounts[event.object_id]}"
        elif event.object_type == "audit.AuditEvent":
            what = "Audit trail"
        elif model is Patient and event.patient_id in numbers:
            what = f"{name} {numbers[event.patient_id]}"
        elif event.object_id:
            what = f"{name} {event.object_id}"
        else:
            what = name
        changes = [c for c in (_change(model, *change) for change in event.changes()) if c]
        rows.append(PlainEvent(event, what, numbers.get(event.patient_id, ""), changes))
    return rows
