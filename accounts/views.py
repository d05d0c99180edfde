from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy

from accounts.access import can_read_records, can_write_records
from accounts.idle import renew
from audit.log import record
from audit.models import Action


@login_required
def keepalive(request: HttpRequest) -> HttpResponse:
    """Renews the idle timer while the clinician is active on a page (no data in the reply)."""
    renew(request.session)
    return HttpResponse(status=204)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Clinicians start at the day sheet; clinic admins at the patient list (the day sheet is
    theirs to read from the menu); referring providers at their referrals."""
    if can_write_records(request.user):
        return redirect("clinic:day")
    if can_read_records(request.user):
        return redirect("patients:list")
    return redirect("reports:list")


class PasswordChangeView(auth_views.PasswordChangeView):
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)  # keeps this session, ends the others
        record(self.request.user, Action.PASSWORD_CHANGE, self.request.user)
        messages.success(self.request, "Password changed.")
        return response
