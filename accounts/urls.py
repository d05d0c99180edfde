from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import staff, twofactor, views
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
    # /staff/: clinic admins only
    path("staff/", staff.staff_list, name="staff-list"),
    path("staff/new/", staff.staff_create, name="staff-create"),
    path("staff/<int:pk>/", staff.staff_detail, name="staff-detail"),
    path("staff/<int:pk>/edit/", staff.staff_edit, name="staff-edit"),
    path("staff/<int:pk>/role/", staff.staff_role, name="staff-role"),
    path("staff/<int:pk>/deactivate/", staff.staff_deactivate, name="staff-deactivate"),
    path("staff/<int:pk>/reactivate/", staff.staff_reactivate, name="staff-reactivate"),
    path("staff/<int:pk>/password/", staff.staff_password, name="staff-password"),
    path("staff/<int:pk>/two-factor/reset/", staff.staff_two_factor_reset,
         name="staff-two-factor-reset"),
    path("staff/<int:pk>/patients/link/", staff.staff_link, name="staff-link"),
    path("staff/<int:pk>/patients/<int:patient_pk>/unlink/", staff.staff_unlink,
         name="staff-unlink"),
]
