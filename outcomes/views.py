"""The clinic's outcome dashboard (issue 4): response and remission by route, highest dose and
optimization tried, and time to response, for courses started in a period.

Clinicians and clinic admins may read it (the clinical record's readers: it is aggregate and
helps clinicians judge their own optimizations); referring providers get a 404. It shows counts
only, never a patient, so reading it is not audited: the audit trail records access to a
patient's record.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from accounts.access import records_reader
from ketacare.fragments import cached_template, data_version
from outcomes.charts import rate_chart, time_chart
from outcomes.forms import PeriodForm
from outcomes.summary import MIN_GROUP, outcomes


# /outcomes/
@records_reader
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    if not form.is_valid():
        # Never a page that looks filtered but is not: no numbers until the period is fixed.
        results = render_to_string("outcomes/_results.html")
    else:
        start, end = form.cleaned_data["started_from"], form.cleaned_data["started_to"]
        # Counted again only after a change to the data (see ketacare.fragments).
        results = cached_template(request, "outcomes/_results.html",
                                  (start, end, data_version()),
                                  lambda: results_context(start, end))
    return render(request, "outcomes/dashboard.html", {"form": form, "results": results})


def results_context(start, end) -> dict:
    found = outcomes(start, end)
    return {
        "min_group": MIN_GROUP,
        "outcomes": found,
        "route_chart": rate_chart(found.by_route, "Response and remission rates by route"),
        "dose_chart": rate_chart(found.by_dose, "Response and remission rates by highest dose"),
        "tried_chart": rate_chart(found.by_tried,
                                  "Response and remission rates by optimization tried"),
        "time_chart": time_chart(found.time_to_response, "Days from first session to "
                                 "response: median and interquartile range"),
    }
