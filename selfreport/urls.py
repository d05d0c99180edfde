from django.urls import path

from selfreport import views

app_name = "selfreport"

urlpatterns = [
    # /courses/<pk>/self-report/
    path("courses/<int:pk>/self-report/new/", views.plan_new, name="plan-new"),
    # /self-report/plans/<pk>/
    path("self-report/plans/<int:pk>/stop/", views.plan_stop, name="plan-stop"),
    path("self-report/plans/<int:pk>/send-again/", views.plan_send_again,
         name="plan-send-again"),
    # /r/: the patient's pages, no login (PUBLIC_PREFIX)
    path("r/thanks/", views.thanks, name="thanks"),
    path("r/thanks/help/", views.thanks_help, name="thanks-help"),
    path("r/<str:token>/", views.answer, name="answer"),
]
