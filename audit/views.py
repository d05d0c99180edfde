"""The audit report and its CSV export, for clinic admins (HIPAA 164.312(b), ONC 170.315(d)(3)).

Both apply the same filters (a period in the clinic's time zone, user, patient, action) and the
same whitelisted sort, and both are themselves audited.
"""

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.access import clinic_admin_required
from audit import aside
from audit.log import record
from audit.models import Action, AuditEvent
from audit.plain import plain_events
from ketacare.filenames import attachment
from ketacare.spreadsheet import spreadsheet_safe
from ketacare.widgets import DateInput
from patients.models import Patient

PAGE_SIZE = 50
DEFAULT_DAYS = 7
# Dates outside these are typing mistakes (and 9999-12-31 has no next day to end the period).
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)
MAX_ID = 2**63 - 1

# ?sort= value -> the column it orders by; anything else falls back to DEFAULT_SORT.
SORT_FIELDS = {"at": "at", "actor": "actor_name", "action": "action", "patient": "patient_id"}
SORTS = frozenset([*SORT_FIELDS, *(f"-{name}" for name in SORT_FIELDS)])
DEFAULT_SORT = "-at"
# Each sort in words, for the audit row that records the report was read.
SORT_WORDS = {
    "at": "oldest first", "-at": "newest first",
    "actor": "by user name", "-actor": "by user name, reversed",
    "action": "by action", "-action": "by action, reversed",
    "patient": "by patient", "-patient": "by patient, reversed",
}

CSV_COLUMNS = [
    "id", "at", "actor", "action", "object_type", "object_id", "patient_id", "summary",
    "before", "after", "hash", "prev_hash",
]


class AuditFilterForm(forms.Form):
    """The report's GET parameters, cleaned into a period, filters and a sort."""

    start = forms.DateField(required=False, widget=DateInput())
    end = forms.DateField(required=False, widget=DateInput())
    user = forms.CharField(required=False, max_length=150, label="User name contains")
    patient = forms.CharField(
        required=False, max_length=20, label="Patient",
        help_text="Record number, or the patient's id number.",
    )
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *Action.choices],
        error_messages={"invalid_choice": "“%(value)s” is not an audited action."},
    )
    sort = forms.CharField(required=False, widget=forms.HiddenInput)

    def _clean_date(self, name: str) -> date | None:
        day = self.cleaned_data[name]
        if day is not None and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(f"Enter a date between {EARLIEST} and {LATEST}.")
        return day

    def clean_start(self) -> date | None:
        return self._clean_date("start")

    def clean_end(self) -> date | None:
        return self._clean_date("end")

    def clean_patient(self) -> int | None:
        """The patient's id; ``patient_words`` says who it is ("MRN-1"), for the page and the
        audit row."""
        value = self.cleaned_data["patient"].strip()
        if not value:
            return None
        # A record number first (what the clinic knows a patient by), then a patient id.
        found = Patient.objects.filter(record_number__iexact=value).values_list(
            "pk", "record_number")
        # isascii: digits Python reads as numbers but a patient id is not ("²", "٣").
        if not found and value.isascii() and value.isdigit() and int(value) <= MAX_ID:
            found = Patient.objects.filter(pk=int(value)).values_list("pk", "record_number")
            if not found:  # a patient since removed, or a mistyped id: an empty result
                self.patient_words = f"id {int(value)} (no such patient)"
                return int(value)
        if found:
            pk, self.patient_words = found[0]
            return pk
        raise forms.ValidationError(f"No patient has the record number “{value}”.")

    def clean_sort(self) -> str:
        value = self.cleaned_data["sort"]
        return value if value in SORTS else DEFAULT_SORT

    def clean(self):
        cleaned = super().clean()
        if "start" not in cleaned or "end" not in cleaned:
            return cleaned  # a date did not parse; its own error says why
        end = cleaned["end"] or timezone.localdate()
        start = cleaned["start"] or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("The end of the period is before its start.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def filter(self, events: QuerySet) -> QuerySet:
        """``events`` in the period (whole days in the clinic's time zone), filtered and sorted."""
        data = self.cleaned_data
        events = events.filter(at__gte=_midnight(data["start"]),
                               at__lt=_midnight(data["end"] + timedelta(days=1)))
        if data["user"]:
            events = events.filter(actor_name__icontains=data["user"])
        if data["patient"] is not None:
            events = events.filter(patient_id=data["patient"])
        if data["action"]:
            events = events.filter(action=data["action"])
        return events.order_by(*_ordering(data["sort"]))

    def describe(self) -> str:
        """The filters in words, for the audit row that records this report was read."""
        if not self.is_valid():
            fields = sorted("period" if name == "__all__" else name for name in self.errors)
            return "invalid filters: " + ", ".join(fields)
        data = self.cleaned_data
        words = [f"{data['start']:%Y-%m-%d} to {data['end']:%Y-%m-%d}"]
        if data["user"]:
            words.append(f"user name contains “{data['user']}”")
        if data["patient"] is not None:
            words.append(f"patient {self.patient_words}")
        if data["action"]:
            words.append(f"action “{Action(data['action']).label}”")
        return ", ".join([*words, SORT_WORDS[data["sort"]]])


def _midnight(day: date) -> datetime:
    """The start of ``day`` in the clinic's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def _ordering(sort: str) -> list:
    column = F(SORT_FIELDS[sort.removeprefix("-")])
    if sort.startswith("-"):
        # Events without a patient (logins) come last either way, on every database.
        return [column.desc(nulls_last=True), "-id"]
    return [column.asc(nulls_last=True), "id"]


# The report's columns: (heading, the ?sort= name when it can be sorted by).
COLUMNS = [
    ("When", "at"), ("User", "actor"), ("Action", "action"), ("Record", None),
    ("Patient", "patient"), ("Summary", None), ("Before → after", None),
]


def _headers(current: str) -> list[dict]:
    """Each column heading; a sortable one links to its sort, reversed on a second click."""
    headers = []
    for label, name in COLUMNS:
        header = {"label": label, "sort": None, "aria_sort": ""}
        if name is not None:
            header["sort"] = f"-{name}" if current == name else name
            header["aria_sort"] = {name: "ascending", f"-{name}": "descending"}.get(current, "")
        headers.append(header)
    return headers


# /audit/
@clinic_admin_required
@require_GET
@never_cache
def report(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()
    record(request.user, Action.VIEW, object_type="audit.AuditEvent",
           patient_id=form.cleaned_data.get("patient") if valid else None,
           summary=f"audit report {form.describe()}")
    aside.wait()  # written before the report reads the trail: it lists its own view
    if valid:
        events = form.filter(AuditEvent.objects.all())
        sort = form.cleaned_data["sort"]
    else:
        # Never a page that looks filtered but is not: no rows until the filters are fixed.
        events, sort = AuditEvent.objects.none(), DEFAULT_SORT
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form, "page": page, "rows": plain_events(page), "sort": sort,
        "headers": _headers(sort),
        "action_label": Action(form.cleaned_data["action"]).label
        if valid and form.cleaned_data["action"] else "",
        "patient_words": getattr(form, "patient_words", ""),
        "default_days": DEFAULT_DAYS,
    }
    return render(request, "audit/report.html", context)


class _Echo:
    """A file-like object whose write() hands the line back, for streaming csv.writer rows."""

    def write(self, value: str) -> str:
        return value


def _json(value) -> str:
    return "" if value is None else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


def _csv_rows(events: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=2000):
        yield writer.writerow([
            event.pk,
            timezone.localtime(event.at).isoformat(),
            spreadsheet_safe(event.actor_name),
            event.action,
            spreadsheet_safe(event.object_type),
            spreadsheet_safe(event.object_id),
            "" if event.patient_id is None else event.patient_id,
            spreadsheet_safe(event.summary),
            _json(event.before),
            _json(event.after),
            event.hash,
            event.prev_hash,
        ])


# /audit/export.csv
@clinic_admin_required
@require_GET
@never_cache
def export(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        # The report shows what is wrong with the filters; nothing is exported.
        return redirect(f"{reverse('audit:report')}?{request.GET.urlencode()}")
    record(request.user, Action.VIEW, object_type="audit.AuditEvent",
           patient_id=form.cleaned_data["patient"],
           summary=f"exported audit CSV {form.describe()}")
    events = form.filter(AuditEvent.objects.all())
    data = form.cleaned_data
    response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv; charset=utf-8")
    filename = f"audit-{data['start']:%Y-%m-%d}-to-{data['end']:%Y-%m-%d}.csv"
    response["Content-Disposition"] = attachment(filename)
    return response
