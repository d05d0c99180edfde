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
from clinical.instruments import INSTRUMENTS
from courses.charts import score_chart
from courses.evaluation import engine_settings, refresh_evaluation
from courses.models import Course, TreatmentSession
from courses.views import flags_with_decisions
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
    rules = engine_settings()
    courses = patient.courses.prefetch_related(
        Prefetch("sessions", queryset=TreatmentSession.objects.prefetch_related("adverse_events")),
        Prefetch("assessments", queryset=Assessment.objects.current()),
        "decisions__decided_by",
    )
    reports = []
    for course in courses:
        evaluation = course.evaluation or refresh_evaluation(course)
        decisions = list(course.decisions.all())
        reports.append({
            "course": course,
            "evaluation": evaluation,
            "flags": flags_with_decisions(evaluation, decisions),
            "decisions": decisions,
            "sessions": list(course.sessions.all()),
            "chart": score_chart(
                list(course.assessments.all()), INSTRUMENTS,
                {code: rules.remission(code) for code in INSTRUMENTS},
            ),
        })
    return render(request, "reports/patient.html", {
        "patient": patient, "reports": reports, "age": patient.age_on(timezone.localdate()),
    })
