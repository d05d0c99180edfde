from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    # /patients/
    path("patients/", views.patient_list, name="list"),
    path("patients/new/", views.patient_new, name="new"),
    path("patients/<int:pk>/", views.patient_detail, name="detail"),
    path("patients/<int:pk>/edit/", views.patient_edit, name="edit"),
    path("patients/<int:pk>/weights/new/", views.weight_new, name="weight-new"),
    path("patients/<int:pk>/trials/new/", views.trial_new, name="trial-new"),
    path("patients/<int:pk>/medications/new/", views.medication_new, name="medication-new"),
    # /medications/
    path("medications/<int:pk>/stop/", views.medication_stop, name="medication-stop"),
    path("medications/<int:pk>/classify/", views.medication_classify, name="medication-classify"),
]
