from django.urls import path

from clinic import views

app_name = "clinic"

urlpatterns = [
    # /day/: the day sheet
    path("day/", views.day, name="day"),
    path("day/unbooked/", views.unbooked, name="unbooked"),
    path("day/flags/", views.undecided, name="undecided"),
    # /clinic/: the clinic's settings (clinic admins)
    path("clinic/settings/", views.settings_page, name="settings"),
    # /courses/<pk>/: a course's plan and bookings
    path("courses/<int:pk>/plan/", views.plan_edit, name="plan"),
    path("courses/<int:pk>/appointments/new/", views.appointment_new, name="appointment-new"),
    # /appointments/<pk>/
    path("appointments/<int:pk>/move/", views.appointment_move, name="appointment-move"),
    path("appointments/<int:pk>/cancel/", views.appointment_cancel, name="appointment-cancel"),
]
