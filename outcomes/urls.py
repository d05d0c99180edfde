from django.urls import path

from outcomes import views

app_name = "outcomes"

urlpatterns = [
    # /outcomes/
    path("outcomes/", views.dashboard, name="dashboard"),
]
