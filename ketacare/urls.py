from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("patients.urls")),
    path("", include("courses.urls")),
    path("", include("assessments.urls")),
    path("", include("reports.urls")),
    path("", include("audit.urls")),
    path("", include("exports.urls")),
    path("", include("outcomes.urls")),
    path("", include("selfreport.urls")),
    path("", include("clinic.urls")),
    path("", include("rems.urls")),
    path("", include("guidance.urls")),
]

handler500 = "ketacare.errors.server_error"  # a database outage: 503 with Retry-After
