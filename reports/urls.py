from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    # /reports/
    path("reports/", views.report_list, name="list"),
    path("reports/patients/<int:pk>/", views.patient_report, name="patient"),
    path("reports/courses/<int:pk>/chart/", views.course_chart, name="course-chart"),
    path("reports/patients/<int:pk>/pdf/", views.patient_report_pdf_view, name="patient-pdf"),
    # /patients/<pk>/report.pdf: the same report for clinicians and clinic admins
    path("patients/<int:pk>/report.pdf", views.record_report_pdf, name="record-pdf"),
]
