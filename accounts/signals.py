"""Logins and logouts are audited. Django announces them only through these signals, so this is
the one place the project listens to signals."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.idle import renew
from audit.log import record
from audit.models import Action


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record(user, Action.LOGIN, user, object_type="accounts.User")
    if request is not None and hasattr(request, "session"):
        renew(request.session)  # the idle timeout starts at login (saved with the login)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(user, Action.LOGOUT, user, object_type="accounts.User")


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The attempted username is kept (it may be a typo of a real one); never the password.
    username = str(credentials.get("username", ""))[:150]
    record(None, Action.LOGIN_FAILED, object_type="accounts.User", summary=username)


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    record(None, Action.LOGIN_FAILED, object_type="accounts.User",
           summary=f"locked out: {str(username or '')[:120]}")
