from django.urls import path

from assessments import views

app_name = "assessments"

urlpatterns = [
    # /courses/<pk>/assessments/
    path(
        "courses/<int:pk>/assessments/new/<str:instrument>/",
        views.assessment_new, name="new",
    ),
    # /assessments/<pk>/
    path("assessments/<int:pk>/", views.assessment_detail, name="detail"),
    path("assessments/<int:pk>/correct/", views.assessment_correct, name="correct"),
]
