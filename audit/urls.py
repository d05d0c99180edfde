from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    # /audit/
    path("audit/", views.report, name="report"),
    path("audit/export.csv", views.export, name="export"),
]
