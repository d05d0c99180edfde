from datetime import date, timedelta

from django import forms
from django.utils import timezone

from ketacare.formrender import PLAIN_WIDGETS
from ketacare.forms import PlausibleDateField
from ketacare.widgets import DateInput

# Dates outside these are typing mistakes.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


def year_before(day: date) -> date:
    """The first day of the twelve months that end on ``day``."""
    try:
        return day.replace(year=day.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28) + timedelta(days=1)


class PeriodForm(forms.Form):
    """The dashboard's GET parameters: courses started in a period (default the last 12
    months)."""

    # Its inputs written in Python, Django's own markup (ketacare.formrender): a tenth of the
    # time of Django's widget templates.
    default_renderer = PLAIN_WIDGETS

    started_from = PlausibleDateField(label="Courses started from", required=False,
                                   widget=DateInput(attrs={"class": "form-control"}))
    started_to = PlausibleDateField(label="to", required=False,
                                 widget=DateInput(attrs={"class": "form-control"}))

    def full_clean(self) -> None:
        super().full_clean()
        # Bootstrap's red outline; the template writes the fields by hand (crispy-forms cost a
        # dashboard that must stay cheap more than the page's own queries).
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["class"] = "form-control is-invalid"

    def _clean_day(self, name: str) -> date | None:
        day = self.cleaned_data[name]
        if day is not None and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(f"Enter a date between {EARLIEST} and {LATEST}.")
        return day

    def clean_started_from(self) -> date | None:
        return self._clean_day("started_from")

    def clean_started_to(self) -> date | None:
        return self._clean_day("started_to")

    def clean(self):
        cleaned = super().clean()
        if "started_from" not in cleaned or "started_to" not in cleaned:
            return cleaned  # a date did not parse; its own error says why
        end = cleaned["started_to"] or timezone.localdate()
        start = cleaned["started_from"] or year_before(end)
        if start > end:
            self.add_error("started_to", "The end of the period is before its start.")
            return cleaned
        cleaned["started_from"], cleaned["started_to"] = start, end
        return cleaned
