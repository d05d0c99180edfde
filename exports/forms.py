from django import forms

from clinical.vocab import Route, Status, choices
from exports.summaries import select_courses
from ketacare.forms import PlausibleDateField, SubmitOnceForm
from ketacare.widgets import DateInput


class ExportForm(SubmitOnceForm):
    started_from = PlausibleDateField(
        label="Courses started from", required=False, widget=DateInput,
    )
    started_to = PlausibleDateField(label="to", required=False, widget=DateInput)
    statuses = forms.MultipleChoiceField(
        label="Status", required=False, widget=forms.CheckboxSelectMultiple,
        choices=choices(Status), help_text="As last evaluated. None ticked: every status.",
    )
    routes = forms.MultipleChoiceField(
        label="Route", required=False, widget=forms.CheckboxSelectMultiple,
        choices=choices(Route),
        help_text="Courses with a completed session by any ticked route. None ticked: all.",
    )
    include_pdfs = forms.BooleanField(
        label="Also each patient's PDF course report (a ZIP; takes longer)", required=False,
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("started_from"), cleaned.get("started_to")
        if start and end and start > end:
            self.add_error("started_to", "The end of the period is before its start.")
        if not self.errors and not select_courses(**self.filters()).exists():
            # The export would be a header and nothing else: say so now, queue nothing.
            raise forms.ValidationError("No course matches these filters.")
        return cleaned

    def filters(self) -> dict:
        """The cleaned filters, as ``select_courses`` (and so the export's build) takes them."""
        return {name: self.cleaned_data[name]
                for name in ("started_from", "started_to", "statuses", "routes")}
