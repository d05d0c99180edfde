from django.urls import path

from rems import views

app_name = "rems"

urlpatterns = [
    # /rems/: the clinic's Spravato REMS monitoring forms (SPEC §8)
    path("rems/", views.queue, name="queue"),
    path("rems/print/", views.print_set, name="print"),
    path("rems/export/", views.export, name="export"),
    path("rems/<int:pk>/", views.form_detail, name="form"),
    path("rems/<int:pk>/pdf/", views.form_pdf, name="pdf"),
    path("rems/<int:pk>/submit/", views.submit, name="submit"),
    path("rems/<int:pk>/undo/", views.undo, name="undo"),
]
