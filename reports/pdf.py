"""The course report as a PDF, rendered on the server by WeasyPrint from the same template
body and the same print stylesheet the browser uses, so the two cannot drift apart."""

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from weasyprint import CSS, HTML

from ketacare.filenames import safe_filename
from patients.models import Patient
from reports.context import report_context

PRINT_CSS = "css/report-print.css"


def patient_report_pdf(patient: Patient) -> bytes:
    context = {"CLINIC_NAME": settings.CLINIC_NAME, **report_context(patient)}
    html = render_to_string("reports/patient_pdf.html", context)
    stylesheet = CSS(filename=finders.find(PRINT_CSS))
    return HTML(string=html).write_pdf(stylesheets=[stylesheet])


def pdf_filename(patient: Patient) -> str:
    # The record number only: a file name travels in e-mail subjects and download lists. Made
    # safe (a record number saved before they were restricted may hold anything).
    return safe_filename(f"ketacare-report-{patient.record_number}.pdf",
                         fallback=f"ketacare-report-{patient.pk}.pdf")
