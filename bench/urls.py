"""The production URLs plus the bare floor view; the benchmark runs with this ROOT_URLCONF
(override_settings for the test client, DJANGO_SETTINGS_MODULE for its gunicorn)."""

from django.urls import include, path

from bench import views

urlpatterns = [
    # /bench/
    path("bench/floor/", views.floor, name="bench-floor"),
    path("", include("ketacare.urls")),
]
