from django.urls import path

from guidance import views

app_name = "guidance"

urlpatterns = [
    # /rules/ and /sources/: what the flags say and where it comes from
    path("rules/", views.rules, name="rules"),
    path("sources/", views.sources, name="sources"),
]
