from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    # /reports/
    path("reports/", views.report_list, name="list"),
    path("reports/patients/<int:pk>/", views.patient_report, name="patient"),
]
