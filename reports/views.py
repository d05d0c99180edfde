"""Course reports (seed 000, "reporting to referring providers": summary, response trajectory,
optimization attempts, final outcome, next steps), on the page and as a PDF.

Only GET exists here. A referring provider sees the patients they referred and nothing else;
clinicians and clinic admins can download any patient's report to send it on.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import (
    get_patient_for_user,
    get_referred_course_for_user,
    get_referred_patient_for_user,
    records_reader,
    referrer_patients,
)
from courses.models import Course
from courses.views import chart_response
from ketacare.filenames import attachment
from ketacare.fragments import cached_record, versions_read_with
from patients.actions import record_view
from patients.models import Patient
from reports.context import LATEST_SESSIONS, report_context
from reports.pdf import patient_report_pdf, pdf_filename


# /reports/
@login_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    patients = referrer_patients(request.user).prefetch_related(
        Prefetch("courses", queryset=Course.objects.order_by("-started_on"))
    )
    return render(request, "reports/list.html", {"patients": patients})


# /reports/patients/<pk>/
@login_required
@require_GET
def patient_report(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_referred_patient_for_user(request.user, pk)
    record_view(request.user, patient, what="referral report")
    # The report's body, cached under the versions of what it shows (read with the patient):
    # see ketacare.fragments.
    body = cached_record(
        request, "reports/_report.html", patient.pk, timezone.localdate(),
        lambda: {"CLINIC_NAME": settings.CLINIC_NAME,
                 "pdf_url": reverse("reports:patient-pdf", args=[patient.pk]),
                 **report_context(patient, latest=LATEST_SESSIONS)},
        settings.CLINIC_NAME, versions=versions_read_with(patient),
    )
    return render(request, "reports/patient.html", {"patient": patient, "report": body})


# /reports/courses/<pk>/chart/
@login_required
@require_GET
def course_chart(request: HttpRequest, pk: int) -> HttpResponse:
    """The chart of a course on the report, which the report page fetches once it has
    arrived (as the course page fetches its own: courses.views.course_chart)."""
    return chart_response(request, get_referred_course_for_user(request.user, pk))


def _pdf_response(request: HttpRequest, patient: Patient) -> HttpResponse:
    record_view(request.user, patient, what="report PDF")
    response = HttpResponse(patient_report_pdf(patient), content_type="application/pdf")
    response["Content-Disposition"] = attachment(pdf_filename(patient))
    return response


# /reports/patients/<pk>/pdf/
@login_required
@require_GET
def patient_report_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _pdf_response(request, get_referred_patient_for_user(request.user, pk))


# /patients/<pk>/report.pdf
@records_reader
@require_GET
def record_report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    return _pdf_response(request, get_patient_for_user(request.user, pk))
