from django.contrib import messages
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.access import (
    get_course_for_user,
    get_patient_for_user,
    get_session_for_user,
    records_reader,
    records_writer,
)
from clinic.plans import appointment_to_log, plan_box, session_initial
from clinical.instruments import INSTRUMENTS
from courses import actions
from courses.evaluation import (
    critical_flags,
    current_evaluation,
    evaluation_context,
    raised_flag,
)
from courses.forms import (
    AdverseEventFormSet,
    CourseForm,
    EndCourseForm,
    FlagDecisionForm,
    PhaseChangeForm,
    SessionForm,
    adverse_events_from,
)
from courses.models import Decision, TreatmentSession
from ketacare.forms import already_saved
from ketacare.fragments import cached_record
from patients.actions import record_view
from selfreport.queries import course_box


# /patients/<pk>/courses/new/
@records_writer
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, pk, write=True)
    form = CourseForm(request.POST or None, initial={"started_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        course = form.save(commit=False)
        course.patient = patient
        actions.start_course(request.user, course)
        messages.success(request, "Course started.")
        return redirect("courses:detail", pk=course.pk)
    return render(
        request, "form_page.html",
        {"form": form, "patient": patient, "title": "Start a treatment course"},
    )


# /courses/<pk>/
@records_reader
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_course_for_user(request.user, pk)
    record_view(request.user, course.patient, what=f"course {course.pk}")
    today = timezone.localdate()
    # Everything below the heading, cached under the versions of what it shows: see
    # ketacare.fragments.
    record = cached_record(request, "courses/_record.html", course.patient_id, today,
                           lambda: _record_context(course, today), course.pk)
    context = {
        "course": course,
        "patient": course.patient,
        "instruments": INSTRUMENTS.values(),
        "record": record,
    }
    return render(request, "courses/detail.html", context)


def _record_context(course, today) -> dict:
    sessions = list(
        course.sessions.select_related("clinician").prefetch_related("adverse_events")
    )
    assessments = list(course.assessments.select_related("scored_by"))
    replaced = {a.replaces_id for a in assessments if a.replaces_id}
    current = [a for a in assessments if a.pk not in replaced]
    decisions = list(course.decisions.select_related("decided_by"))
    return {
        "course": course,
        "sessions": sessions,
        "assessments": assessments,
        "replaced": replaced,
        **evaluation_context(course, decisions, current),
        "medications": course.patient.medications.active_on(today),
        "phase_changes": course.phase_changes.select_related("changed_by"),
        **course_box(course),
        **plan_box(course, sessions, today),
    }


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
    last = course.sessions.order_by("-started_at").first()
    initial = {"started_at": timezone.localtime().replace(second=0, microsecond=0)}
    if last:  # nothing typed twice: start from the last session's route and dose
        initial.update(
            route=last.route, dose_mg_per_kg=last.dose_mg_per_kg, weight_basis=last.weight_basis,
            dose_mg=None if last.dose_mg_per_kg else last.dose_mg,
            infusion_minutes=last.infusion_minutes,
        )
    appointment = appointment_to_log(request, course)  # ?appointment=<id>: logged from it
    initial.update(session_initial(appointment))
    form = SessionForm(request.POST or None, course=course, initial=initial)
    events = AdverseEventFormSet(request.POST or None, prefix="ae")
    if request.method == "POST" and form.is_valid() and events.is_valid():
        try:
            if already_saved(TreatmentSession, form):
                raise IntegrityError
            session = actions.record_session(
                request.user, form.save(commit=False), adverse_events_from(events), appointment
            )
        except IntegrityError:  # the same form sent twice (double click, retry)
            messages.info(request, "This session was already saved; it was not logged twice.")
        else:
            messages.success(request, f"Session logged: {session.dose_display}.")
        return redirect("courses:detail", pk=course.pk)
    weights = [
        {"on": w.measured_on.isoformat(), "kg": str(w.weight_kg)}
        for w in patient.weights.order_by("measured_on")
    ]
    ideal = patient.ideal_body_weight_kg()
    context = {
        "form": form,
        "events": events,
        "course": course,
        "patient": patient,
        "critical_flags": critical_flags(current_evaluation(course)),
        "dose_data": {"weights": weights, "ideal": str(ideal) if ideal else None},
    }
    return render(request, "courses/session_form.html", context)


# /sessions/<pk>/
@records_reader
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    record_view(request.user, session.course.patient, what=f"session {session.pk}")
    return render(
        request, "courses/session_detail.html",
        {"session": session, "course": session.course, "patient": session.course.patient},
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
