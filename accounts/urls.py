from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import twofactor, views
from accounts.forms import LoginForm

urlpatterns = [
    path("", views.home, name="home"),
    # /accounts/
    path(
        "accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/keepalive/", views.keepalive, name="keepalive"),
    path("accounts/2fa/", twofactor.verify, name="two-factor"),
    path("accounts/2fa/setup/", twofactor.setup, name="two-factor-setup"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
]
