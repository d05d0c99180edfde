from django.urls import path

from courses import views

app_name = "courses"

urlpatterns = [
    # /patients/<pk>/courses/
    path("patients/<int:pk>/courses/new/", views.course_new, name="new"),
    # /courses/<pk>/
    path("courses/<int:pk>/", views.course_detail, name="detail"),
    path("courses/<int:pk>/phase/", views.phase_change, name="phase"),
    path("courses/<int:pk>/end/", views.course_end, name="end"),
    path("courses/<int:pk>/chart/", views.course_chart, name="chart"),
    path("courses/<int:pk>/sessions/", views.course_sessions, name="sessions"),
    path("courses/<int:pk>/sessions/new/", views.session_new, name="session-new"),
    path("courses/<int:pk>/scores/", views.course_scores, name="scores"),
    path("courses/<int:pk>/flags/<str:code>/", views.flag_decide, name="flag-decide"),
    # /sessions/<pk>/
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/amend/", views.session_amend, name="session-amend"),
    path("sessions/<int:pk>/discharge/", views.session_discharge, name="session-discharge"),
    path("sessions/<int:pk>/void/", views.session_void, name="session-void"),
]
