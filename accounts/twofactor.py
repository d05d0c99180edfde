"""Two-factor authentication (TOTP) for clinicians and clinic admins (HIPAA 164.312(d)).

After the password, a clinician or admin without a confirmed authenticator is sent to enrol
one (scan a QR code, type a code); one with an authenticator types its current code. Until
then every other page redirects here (:class:`RequireTwoFactorMiddleware`).

The demo clinic's users share a published key so developers can log in; a device named
``DEMO_DEVICE`` is refused whenever DEBUG is off, so that key can never open a real server.
"""

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.middleware import OTPMiddleware
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from audit.log import audited, record
from audit.models import Action

TWO_FACTOR_ROLES = frozenset({Role.CLINICIAN, Role.CLINIC_ADMIN})
DEMO_DEVICE = "demo (development only)"


def needs_two_factor(user) -> bool:
    return user.is_authenticated and user.role in TWO_FACTOR_ROLES


def usable_device(user) -> TOTPDevice | None:
    devices = TOTPDevice.objects.devices_for_user(user, confirmed=True)
    if not settings.DEBUG:
        devices = devices.exclude(name=DEMO_DEVICE)
    return devices.first()


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app", min_length=6, max_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "autofocus": True}),
    )

    def clean_token(self):
        token = self.cleaned_data["token"].strip()
        if not token.isdigit():
            raise forms.ValidationError("The code is 6 digits.")
        return token


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path only: redirect() reads anything else ("home", "ß") as a view name, and an
    # unknown one was an error page.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return reverse("home")


def _with_next(name: str, target: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': target})}"


def _qr_svg(device: TOTPDevice) -> str:
    import segno

    return segno.make(device.config_url, error="m").svg_inline(scale=4)


def _staff_only(view):
    """Two-factor is for clinicians and clinic admins (README, Security). Referring providers
    are never asked for it, so enrolling would protect nothing: these pages do not exist for
    them (404), like every screen that is not theirs."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not needs_two_factor(request.user):
            raise Http404("Two-factor authentication is for clinicians and clinic admins.")
        return view(request, *args, **kwargs)

    return wrapped


# /accounts/2fa/
@login_required
@_staff_only
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    device = usable_device(request.user)
    if device is None:
        return redirect(_with_next("two-factor-setup", _next(request)))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            otp_login(request, device)
            record(request.user, Action.LOGIN, request.user, summary="second factor verified")
            return redirect(_next(request))
        record(request.user, Action.LOGIN_FAILED, request.user, summary="wrong second factor")
        form.add_error("token", "That code is not right (or has been used). Try the next one.")
    return render(request, "accounts/two_factor.html",
                  {"form": form, "next": _next(request), "enrol": False})


# /accounts/2fa/setup/: GET shows the key of an authenticator being enrolled (or the button
# that starts one); only a POST creates it, so a GET changes nothing.
@login_required
@_staff_only
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    if usable_device(request.user) is not None:
        return redirect(_with_next("two-factor", _next(request)))
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).order_by("pk").first()
    if request.method == "POST" and "start" in request.POST:
        if device is None:
            TOTPDevice.objects.create(user=request.user, confirmed=False, name="authenticator")
        return redirect(_with_next("two-factor-setup", _next(request)))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device is None:
            form.add_error(None, "Start the set-up first: show the QR code, scan it, then "
                                 "type the code.")
        elif device.verify_token(form.cleaned_data["token"]):
            with audited():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                record(request.user, Action.CREATE, device, summary="authenticator enrolled")
            otp_login(request, device)
            messages.success(request, "Two-factor authentication is on for your account.")
            return redirect(_next(request))
        else:
            form.add_error("token",
                           "That code does not match: check the app's clock and try again.")
    context = {"form": form, "next": _next(request), "enrol": True, "started": device}
    if device is not None:
        context["qr"] = mark_safe(_qr_svg(device))  # segno's own SVG markup, no user text
        context["secret"] = device.config_url.split("secret=")[1].split("&")[0]
    return render(request, "accounts/two_factor.html", context)


class SessionOTPMiddleware(OTPMiddleware):
    """django-otp's middleware without its device query on every request.

    ``django_otp.login`` writes the verifying device's id into the session only after a right
    code, and every way a device stops counting ends the user's sessions with it: resetting
    two-factor deletes the devices and the sessions, deactivating an account ends its sessions
    (``accounts.actions``), and no other code deletes or unconfirms a device. So a live
    session that holds a device id was verified, and ``user.is_verified()`` reads the session
    alone. ``user.otp_device`` is left None: nothing in KetaCare reads it.
    """

    async_capable = False  # served by WSGI; the async path would still query

    def _verify_user_sync(self, request, user):
        self._init_user_fields(user)
        verified = user.is_authenticated and bool(request.session.get(DEVICE_ID_SESSION_KEY))
        user.is_verified = lambda: verified
        return user


class RequireTwoFactorMiddleware:
    """Clinicians and admins reach nothing but these pages until their second factor is in."""

    # /r/: a patient's self-report link (selfreport.views.PUBLIC_PREFIX), which needs no
    # login, even in a browser where a clinician is half logged in.
    OPEN_PATHS = ("/accounts/login/", "/accounts/logout/", "/accounts/2fa/", "/static/", "/r/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            needs_two_factor(user)
            and not user.is_verified()
            and not request.path.startswith(self.OPEN_PATHS)
        ):
            return redirect(_with_next("two-factor", request.get_full_path()))
        return self.get_response(request)
