"""Clinicians' self-report controls on the course page, and the patient's pages under
``PUBLIC_PREFIX``: no login, nothing of the record, never cached, rate-limited per address."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import get_course_for_user, get_plan_for_user, records_writer
from selfreport import actions, links, ratelimit
from selfreport.forms import PlanForm, SelfReportForm
from selfreport.models import Schedule

PUBLIC_PREFIX = "/r/"  # the login, two-factor and idle middlewares let these through


# -- the course page -----------------------------------------------------------------------------

# /courses/<pk>/self-report/new/
@records_writer
@require_http_methods(["GET", "POST"])
def plan_new(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    form = PlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        schedule = form.cleaned_data["schedule"]
        try:
            actions.start_plan(request.user, course, schedule)
        except actions.NotReady as reason:
            form.add_error("schedule", str(reason))
        else:
            done = ("Invitation being sent." if schedule == Schedule.ONCE
                    else f"Self-report invitations: {schedule.label.lower()}.")
            messages.success(request, done)
            return redirect("courses:detail", pk=course.pk)
    return render(request, "form_page.html", {
        "form": form, "patient": course.patient, "course": course,
        "title": "Invite the patient to self-report",
    })


# /self-report/plans/<pk>/stop/
@records_writer
@require_POST
def plan_stop(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, pk, write=True)
    actions.stop_plan(request.user, plan)
    messages.success(request, f"Self-report stopped: {plan.get_schedule_display().lower()}.")
    return redirect("courses:detail", pk=plan.course_id)


# /self-report/plans/<pk>/send-again/
@records_writer
@require_POST
def plan_send_again(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, pk, write=True)
    try:
        count = actions.send_again(request.user, plan)
    except actions.NotReady as reason:
        messages.error(request, str(reason))
    else:
        messages.success(request, f"{count} invitation{'s' if count != 1 else ''} sent again."
                         if count else "Nothing to send again.")
    return redirect("courses:detail", pk=plan.course_id)


# -- the patient's pages -------------------------------------------------------------------------

def public_page(view: Callable) -> Callable:
    """A page a patient opens from an email: never stored by the browser or a proxy, never
    indexed. Its address holds the link, and the site's ``Referrer-Policy: same-origin`` sends
    it to no other site. (``no-referrer`` would make Chromium post the form with
    ``Origin: null``, which Django's CSRF check refuses.)"""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapper


def _link_closed(request: HttpRequest, status: int = 404) -> HttpResponse:
    """The one page for a forged, used or expired link: it says nothing about which."""
    return render(request, "selfreport/closed.html", {"busy": status == 429}, status=status)


# /r/<token>/
@public_page
@require_http_methods(["GET", "POST"])
def answer(request: HttpRequest, token: str) -> HttpResponse:
    if ratelimit.exceeded(request):
        return _link_closed(request, status=429)
    invitation = links.open_invitation(token)
    if invitation is None:
        return _link_closed(request)
    form = SelfReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        items = form.cleaned_data["items"]
        saved = actions.submit_self_report(
            invitation.pk, items, form.cleaned_data.get("difficulty") or ""
        )
        if saved is None:  # answered a moment ago, or just expired
            return _link_closed(request)
        at_risk = items[actions.SUICIDE_ITEM - 1] >= 1
        return redirect("selfreport:thanks-help" if at_risk else "selfreport:thanks")
    return render(request, "selfreport/answer.html", {"form": form, **_crisis()})


def _crisis() -> dict:
    return {"crisis_text": settings.SELF_REPORT_CRISIS_TEXT}


# /r/thanks/
@public_page
def thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "selfreport/thanks.html", {"help_first": False, **_crisis()})


# /r/thanks/help/: after an answer of 1 or more to question 9, the crisis lines come first.
@public_page
def thanks_help(request: HttpRequest) -> HttpResponse:
    return render(request, "selfreport/thanks.html", {"help_first": True, **_crisis()})
