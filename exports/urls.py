from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    # /exports/
    path("exports/", views.export_list, name="list"),
    path("exports/<uuid:pk>/", views.export_detail, name="detail"),
    path("exports/<uuid:pk>/status/", views.export_status, name="status"),
    path("exports/<uuid:pk>/download/", views.export_download, name="download"),
    path("exports/<uuid:pk>/again/", views.export_again, name="again"),
]
