from django.contrib import messages
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import (
    get_course_for_user,
    get_patient_for_user,
    get_session_for_user,
    records_reader,
    records_writer,
)
from clinic.plans import appointment_to_log, plan_box, plan_of, session_initial
from clinical.dosing import dose_mg_hint
from clinical.instruments import INSTRUMENTS
from clinical.vocab import Instrument, Route
from courses import actions
from courses.evaluation import (
    critical_flags,
    current_evaluation,
    draw_chart,
    engine_settings,
    evaluation_context,
    raised_flag,
)
from courses.forms import (
    AdverseEventFormSet,
    CourseForm,
    DischargeForm,
    EndCourseForm,
    FlagDecisionForm,
    PhaseChangeForm,
    SessionAmendForm,
    SessionForm,
    VoidForm,
    adverse_events_from,
)
from courses.models import (
    CONFIRMATIONS,
    AmendmentKind,
    Decision,
    TreatmentSession,
)
from courses.record import read_chart, read_record
from courses.rows import (
    score_page,
    score_rows,
    session_page,
    session_rows,
)
from ketacare.fragments import cached_html, cached_record, versions_read_with
from ketacare.prepared import Prepared, together
from patients.actions import record_view
from patients.models import WeightRecord
from selfreport.queries import course_box


# /patients/<pk>/courses/new/
@records_writer
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, pk, write=True)
    initial = {"started_on": timezone.localdate()}
    form = CourseForm(request.POST or None, patient=patient, initial=initial)
    if request.method == "POST" and form.is_valid():
        course = form.save(commit=False)
        course.patient = patient
        try:
            actions.start_course(request.user, course)
        except IntegrityError:  # another clinician started one this very moment
            form = CourseForm(request.POST, patient=patient, initial=initial)
            form.is_valid()  # now names the course they started
        else:
            messages.success(request, "Course started.")
            return redirect("courses:detail", pk=course.pk)
    return render(
        request, "courses/course_new.html",
        {"form": form, "patient": patient, "title": "Start a treatment course",
         "open_course": form.open_course},
    )


# /courses/<pk>/
@records_reader
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, versions=True)
    record_view(request.user, course.patient, what=f"course {course.pk}")
    today = timezone.localdate()
    # Everything below the heading, cached under the versions of what it shows (read with the
    # course): see ketacare.fragments.
    record = cached_record(request, "courses/_record.html", course.patient_id, today,
                           lambda: _record_context(course, today), course.pk,
                           versions=versions_read_with(course))
    context = {
        "course": course,
        "patient": course.patient,
        "instruments": INSTRUMENTS.values(),
        "record": record,
    }
    return render(request, "courses/detail.html", context)


# A course with up to this many sessions and scores (voided and corrected ones counted: 30
# visits of a session and two scores) has its chart drawn into its page, at the cost of a few
# rows; a longer course's chart comes in a request of its own once the page has arrived
# (course_chart), so that the page costs no more for 200 sessions than for 30, and the short
# courses most pages show cost no second request.
INLINE_CHART_POINTS = 90


def _record_context(course, today) -> dict:
    # The latest sessions and scores as rows, and how many there are; the rest are a page away
    # (course_sessions, course_scores).
    plan = plan_of(course)
    record = read_record(course, today, plan.starts_on if plan else None)
    context = evaluation_context(course, record.decisions)
    if not record.score_count:
        context["chart"] = ""  # "No scores yet."
    elif record.session_count + record.score_count <= INLINE_CHART_POINTS:
        context["chart"] = _chart(course, context["evaluation"])
    else:
        context["chart_url"] = reverse("courses:chart", args=[course.pk])
    return {
        "course": course,
        "sessions": session_rows(record.sessions[::-1], range(record.session_count, 0, -1)),
        "session_count": record.session_count,
        "scores": score_rows(record.scores[::-1], record.replaced),
        "score_count": record.score_count,
        **context,
        "medications": record.medications,
        "phase_changes": record.phase_changes,
        **course_box(course),
        **plan_box(course, record.plan_done, record.plan_last_at, record.upcoming, today),
    }


def _chart(course, evaluation: dict) -> str:
    """The chart of the whole course: every session given and every current score."""
    chart = read_chart(course)
    drawn = draw_chart(course, evaluation, chart.scores, chart.sessions)
    return drawn or '<p class="text-muted">No scores yet.</p>'


# /courses/<pk>/chart/
@records_reader
@require_GET
def course_chart(request: HttpRequest, pk: int) -> HttpResponse:
    """The chart of a long course, which its page fetches once it has arrived."""
    return chart_response(request, get_course_for_user(request.user, pk, versions=True))


def chart_response(request: HttpRequest, course) -> HttpResponse:
    """The chart of ``course`` (read with its record's versions) as a fragment of HTML: every
    session given and every current score, drawn as an SVG with its values as a table for
    screen readers (courses.charts). Audited as a view of the record, as the page is; kept in
    the fragment cache under the record's versions, as the page's own fragment is."""
    record_view(request.user, course.patient, what=f"course {course.pk} chart")

    rules = engine_settings()  # what the chart draws its cut-offs from
    return HttpResponse(cached_html("courses/chart", (
        course.pk, *versions_read_with(course), timezone.get_current_timezone_name(),
        *(rules.remission(code) for code in Instrument)),
        lambda: _chart(course, current_evaluation(course))))


# /courses/<pk>/sessions/
@records_reader
@require_GET
def course_sessions(request: HttpRequest, pk: int) -> HttpResponse:
    """Every session of the course, newest first, a page at a time."""
    return _every_row(request, pk, "sessions", session_page)


# /courses/<pk>/scores/
@records_reader
@require_GET
def course_scores(request: HttpRequest, pk: int) -> HttpResponse:
    """Every score of the course, newest first, a page at a time."""
    return _every_row(request, pk, "scores", score_page)


def _every_row(request, pk: int, rows: str, read_page) -> HttpResponse:
    """A page of the course's ``rows`` ("sessions" or "scores", read by ``read_page``) on
    ``courses/<rows>.html``, the view audited."""
    course = get_course_for_user(request.user, pk)
    record_view(request.user, course.patient, what=f"{rows} of course {course.pk}")
    page, shown = read_page(course, request.GET.get("page", "")[:20])
    return render(request, f"courses/{rows}.html",
                  {"course": course, "patient": course.patient, "page": page, rows: shown})


@records_writer
@require_http_methods(["GET", "POST"])
def phase_change(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    if not course.is_active:
        messages.error(request, "This course has ended.")
        return redirect("courses:detail", pk=course.pk)
    form = PhaseChangeForm(
        request.POST or None, course=course, initial={"effective_on": timezone.localdate()}
    )
    if request.method == "POST" and form.is_valid():
        actions.change_phase(
            request.user, course, form.cleaned_data["to_phase"],
            form.cleaned_data["effective_on"], form.cleaned_data["note"],
        )
        messages.success(request, "Phase changed.")
        return redirect("courses:detail", pk=course.pk)
    return render(
        request, "form_page.html",
        {"form": form, "patient": course.patient, "course": course, "title": "Change phase"},
    )


@records_writer
@require_http_methods(["GET", "POST"])
def course_end(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    if not course.is_active:
        messages.error(request, "This course has already ended.")
        return redirect("courses:detail", pk=course.pk)
    form = EndCourseForm(
        request.POST or None, course=course, initial={"ended_on": timezone.localdate()}
    )
    if request.method == "POST" and form.is_valid():
        actions.end_course(
            request.user, course, form.cleaned_data["ended_on"], form.cleaned_data["reason"],
            form.cleaned_data["note"],
        )
        messages.success(request, "Course ended.")
        return redirect("courses:detail", pk=course.pk)
    return render(
        request, "form_page.html",
        {"form": form, "patient": course.patient, "course": course, "title": "End course"},
    )


@records_writer
@require_http_methods(["GET", "POST"])
def session_new(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    if not course.is_active:
        messages.error(request, "This course has ended; start a new course to log sessions.")
        return redirect("courses:detail", pk=course.pk)
    patient = course.patient
    appointment = appointment_to_log(request, course)  # ?appointment=<id>: logged from it
    if request.method == "POST":  # what was typed is bound: nothing to start from
        initial, weights = {}, None
    else:  # where the form starts and the dose preview's weights: one round trip
        last, weights = together((LAST_SESSION, {"course": course.pk}),
                                 (WEIGHTS, {"patient": patient.pk}))
        initial = _session_initial(last, appointment)
    form = SessionForm(request.POST or None, course=course, initial=initial)
    events = AdverseEventFormSet(request.POST or None, prefix="ae")
    if request.method == "POST" and form.is_valid() and events.is_valid():
        try:
            if form.already_saved:  # found by the form's check for a session near this one
                raise IntegrityError
            session = actions.record_session(
                request.user, form.save(commit=False), adverse_events_from(events), appointment
            )
        except IntegrityError:  # the same form sent twice (double click, retry)
            messages.info(request, "This session was already saved; it was not logged twice.")
        else:
            messages.success(request, f"Session logged: {session.dose_display}.")
        return redirect("courses:detail", pk=course.pk)
    context = {
        "form": form,
        "events": events,
        "course": course,
        "patient": patient,
        "critical_flags": critical_flags(current_evaluation(course)),
        "dose_data": _dose_data(patient, weights),
    }
    return render(request, "courses/session_form.html", context)


def _session_initial(last: list[tuple], appointment) -> dict:
    """Where the session form starts: now, and the last session's route and dose (``last``:
    its LAST_SESSION row, if any; nothing typed twice) or the appointment's."""
    initial = {"started_at": timezone.localtime().replace(second=0, microsecond=0)}
    if last:
        route, dose_mg_per_kg, weight_basis, dose_mg, infusion_minutes = last[0]
        initial.update(
            route=route, dose_mg_per_kg=dose_mg_per_kg, weight_basis=weight_basis,
            dose_mg=None if dose_mg_per_kg else dose_mg, infusion_minutes=infusion_minutes,
        )
    return {**initial, **session_initial(appointment)}


# The session form's reads, compiled once (ketacare.prepared): the form opens before every
# session logged, and building these queries cost as much as running them.
LAST_SESSION = Prepared(
    lambda course: TreatmentSession.objects.current().filter(course_id=course)
    .order_by("-started_at").values_list(
        "route", "dose_mg_per_kg", "weight_basis", "dose_mg", "infusion_minutes")[:1],
    course=int,
)
WEIGHTS = Prepared(
    lambda patient: WeightRecord.objects.filter(patient_id=patient).order_by("measured_on")
    .values_list("measured_on", "weight_kg"),
    patient=int,
)


def _dose_data(patient, rows: list[tuple] | None = None) -> dict:
    """The weights and ideal body weight the session form's live dose preview reads;
    ``rows``: the patient's WEIGHTS rows when already read."""
    if rows is None:
        rows = WEIGHTS.rows(patient=patient.pk)
    weights = [{"on": measured_on.isoformat(), "kg": str(weight_kg)}
               for measured_on, weight_kg in rows]
    ideal = patient.ideal_body_weight_kg()
    return {"weights": weights, "ideal": str(ideal) if ideal else None, "dose_hints": DOSE_HINTS}


# The milligram dose's hint for each route dosed in milligrams: the session form shows the
# chosen route's only (without JavaScript, the field's help text names them all).
DOSE_HINTS = {route.value: dose_mg_hint(route) for route in Route if not route.weight_based}


# /sessions/<pk>/
@records_reader
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    record_view(request.user, session.course.patient, what=f"session {session.pk}")
    return render(
        request, "courses/session_detail.html",
        {"session": session, "course": session.course, "patient": session.course.patient,
         "void": session.voided,
         "amendments": session.amendments.select_related("signed_by"),
         "confirmations": [
             TreatmentSession._meta.get_field(name).verbose_name
             for name in CONFIRMATIONS if getattr(session, name)
         ]},
    )


def _closed_to_corrections(request, session: TreatmentSession) -> HttpResponse | None:
    """A redirect with the reason when the session can no longer be corrected, else None."""
    if not session.course.is_active:
        reason = "The course has ended: its sessions can no longer be amended or voided."
    elif session.voided:
        reason = "This session was voided: it can no longer be amended."
    else:
        return None
    messages.error(request, reason)
    return redirect("courses:session-detail", pk=session.pk)


STALE_SESSION = (
    "Another clinician changed this session while you were editing. What you typed is below, "
    "not saved yet. The session now has: {now}. Check and save again."
)


def _amend(request, session: TreatmentSession, make_form, kind: AmendmentKind,
           template: str, title: str, events=None, **extra) -> HttpResponse:
    """The amendment flow shared by the full amendment (with adverse events noticed
    afterwards, ``events``) and the discharge form."""
    if refused := _closed_to_corrections(request, session):
        return refused
    form = make_form(request.POST or None, session)
    events_valid = events is None or events.is_valid()
    if request.method == "POST" and form.is_valid() and events_valid:
        try:
            amendments = actions.amend_session(
                request.user, form.save(commit=False), kind=kind,
                read_version=form.cleaned_data["version"], reason=form.cleaned_data["reason"],
                added_events=adverse_events_from(events) if events is not None else [],
            )
        except actions.StaleEdit:
            # Keep what they typed; the next save goes over the version now on record.
            fresh = get_session_for_user(request.user, session.pk, write=True)
            theirs = form.save(commit=False)
            now = [f"{form.fields[name].label} {actions.shown(fresh, name)}"
                   for name in actions.AMENDABLE
                   if name in form.fields and getattr(theirs, name) != getattr(fresh, name)]
            data = request.POST.copy()
            data["version"] = fresh.version
            form = make_form(data, fresh)
            form.is_valid()
            form.add_error(None, STALE_SESSION.format(now="; ".join(now) or "other changes"))
        except (actions.CourseEnded, actions.SessionVoided) as error:
            messages.error(request, str(error))
            return redirect("courses:session-detail", pk=session.pk)
        else:
            if amendments:
                fields = ", ".join(a.label.lower() for a in amendments)
                messages.success(request, f"Amendment signed: {fields}.")
            else:
                messages.info(request, "Nothing was changed; no amendment was signed.")
            return redirect("courses:session-detail", pk=session.pk)
    context = {"form": form, "session": session, "course": session.course,
               "patient": session.course.patient, "title": title, "events": events, **extra}
    return render(request, template, context)


# /sessions/<pk>/amend/
@records_writer
@require_http_methods(["GET", "POST"])
def session_amend(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk, write=True)
    return _amend(
        request, session,
        lambda data, s: SessionAmendForm(data, instance=s, course=s.course),
        AmendmentKind.AMENDMENT, "courses/session_amend.html",
        f"Amend session of {timezone.localtime(session.started_at):%Y-%m-%d %H:%M}",
        events=AdverseEventFormSet(request.POST or None, prefix="ae"),
        dose_data=_dose_data(session.course.patient), submit="Sign amendment",
    )


# /sessions/<pk>/discharge/
@records_writer
@require_http_methods(["GET", "POST"])
def session_discharge(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk, write=True)
    return _amend(
        request, session, lambda data, s: DischargeForm(data, instance=s),
        AmendmentKind.DISCHARGE, "courses/session_discharge.html",
        f"Complete discharge: session of {timezone.localtime(session.started_at):%Y-%m-%d %H:%M}",
    )


# /sessions/<pk>/void/
@records_writer
@require_http_methods(["GET", "POST"])
def session_void(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk, write=True)
    if refused := _closed_to_corrections(request, session):
        return refused
    form = VoidForm(request.POST or None, initial={"version": session.version})
    if request.method == "POST" and form.is_valid():
        try:
            actions.void_session(request.user, session, reason=form.cleaned_data["reason"],
                                 read_version=form.cleaned_data["version"])
        except actions.StaleEdit:
            data = request.POST.copy()
            data["version"] = TreatmentSession.objects.get(pk=session.pk).version
            form = VoidForm(data)
            form.is_valid()
            form.add_error(None, "Another clinician changed this session while you were "
                           "reading it: check the session below and void it again if it is "
                           "still in error.")
        except (actions.CourseEnded, actions.SessionVoided, IntegrityError) as error:
            messages.error(request, str(error) if not isinstance(error, IntegrityError)
                           else "This session was already voided.")
            return redirect("courses:session-detail", pk=session.pk)
        else:
            messages.success(request, "Session voided: it stays in the record, struck "
                             "through, and counts for nothing.")
            return redirect("courses:session-detail", pk=session.pk)
    return render(
        request, "courses/session_void.html",
        {"form": form, "session": session, "course": session.course,
         "patient": session.course.patient,
         "title": f"Void session of {timezone.localtime(session.started_at):%Y-%m-%d %H:%M}"},
    )


# /courses/<pk>/flags/<code>/
@records_writer
@require_http_methods(["GET", "POST"])
def flag_decide(request: HttpRequest, pk: int, code: str) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    flag = raised_flag(current_evaluation(course), code)
    if flag is None:
        raise Http404("That flag is not raised on this course now.")
    form = FlagDecisionForm(request.POST or None, initial={"decision": request.GET.get("decision")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.decide_flag(
                request.user, course, code, data["decision"], action=data["action"],
                detail=data["detail"], reason=data["reason"],
            )
        except actions.FlagNotRaised as error:
            messages.error(request, str(error))
        else:
            word = "accepted" if data["decision"] == Decision.ACCEPTED else "declined"
            messages.success(request, f"Flag {word} and signed.")
        return redirect("courses:detail", pk=course.pk)
    history = course.decisions.filter(code=code).select_related("decided_by")
    return render(
        request, "courses/flag_decide.html",
        {"form": form, "flag": flag, "course": course, "patient": course.patient,
         "history": history},
    )
