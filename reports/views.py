"""Read-only course reports for referring providers (seed 000, "reporting to referring
providers": summary, response trajectory, optimization attempts, final outcome, next steps).

Only GET exists here; a referring provider sees the patients they referred and nothing else.
"""

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import get_referred_patient_for_user, referrer_patients
from assessments.models import Assessment
from courses.evaluation import evaluation_context
from courses.models import Course, TreatmentSession
from patients.actions import record_view


# /reports/
@login_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    patients = referrer_patients(request.user).prefetch_related(
        Prefetch("courses", queryset=Course.objects.order_by("-started_on"))
    )
    return render(request, "reports/list.html", {"patients": patients})


# /reports/patients/<pk>/
@login_required
@require_GET
def patient_report(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_referred_patient_for_user(request.user, pk)
    record_view(request.user, patient, what="referral report")
    courses = patient.courses.prefetch_related(
        Prefetch("sessions", queryset=TreatmentSession.objects.prefetch_related("adverse_events")),
        Prefetch("assessments", queryset=Assessment.objects.current()),
        "decisions__decided_by",
    )
    reports = []
    for course in courses:
        reports.append({
            "course": course,
            "sessions": list(course.sessions.all()),
            **evaluation_context(
                course, list(course.decisions.all()), list(course.assessments.all())
            ),
        })
    return render(request, "reports/patient.html", {
        "patient": patient, "reports": reports, "age": patient.age_on(timezone.localdate()),
    })
