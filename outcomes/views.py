"""The clinic's outcome dashboard (issue 4): response and remission by route, highest dose and
optimization tried, and time to response, for courses started in a period.

Clinicians and clinic admins may read it (the clinical record's readers: it is aggregate and
helps clinicians judge their own optimizations); referring providers get a 404. It shows counts
only, never a patient, so reading it is not audited: the audit trail records access to a
patient's record.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.access import records_reader
from outcomes.charts import rate_chart, time_chart
from outcomes.forms import PeriodForm
from outcomes.summary import MIN_GROUP, outcomes


# /outcomes/
@records_reader
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    context = {"form": form, "min_group": MIN_GROUP}
    # Never a page that looks filtered but is not: no numbers until the period is fixed.
    if form.is_valid():
        data = form.cleaned_data
        found = outcomes(data["started_from"], data["started_to"])
        context.update({
            "outcomes": found,
            "route_chart": rate_chart(found.by_route, "Response and remission rates by route"),
            "dose_chart": rate_chart(found.by_dose,
                                     "Response and remission rates by highest dose"),
            "tried_chart": rate_chart(found.by_tried,
                                      "Response and remission rates by optimization tried"),
            "time_chart": time_chart(found.time_to_response, "Days from first session to "
                                     "response: median and interquartile range"),
        })
    return render(request, "outcomes/dashboard.html", context)
