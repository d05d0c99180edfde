"""The Rules page (every flag with its trigger, severity, suggestion and source; how a course is
classified) and the Sources page (each guidance document and what the product takes from it).

Every logged-in user reads them: clinicians and clinic admins act on flags, and referring
providers read reports whose flags cite these sources. They show no patient data, so reading
them is not audited.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.access import any_staff
from clinical.engine import RULES_REVISION
from clinical.sources import DOCUMENTS
from courses.evaluation import engine_settings
from guidance.rules import CLASSIFICATION, FLAG_GROUPS


# /rules/
@any_staff
@require_GET
def rules(request: HttpRequest) -> HttpResponse:
    rules = engine_settings()
    settings_rows = [
        ("MADRS remission", f"{rules.madrs_remission} or less", "MADRS_REMISSION"),
        ("PHQ-9 remission", f"{rules.phq9_remission} or less", "PHQ9_REMISSION"),
        ("Blood pressure: warning above", "/".join(map(str, rules.bp_warning)), "BP_WARNING"),
        ("Blood pressure: critical above", "/".join(map(str, rules.bp_critical)),
         "BP_CRITICAL"),
    ]
    return render(request, "guidance/rules.html", {
        "revision": RULES_REVISION, "groups": FLAG_GROUPS, "classification": CLASSIFICATION,
        "settings_rows": settings_rows,
    })


# /sources/
@any_staff
@require_GET
def sources(request: HttpRequest) -> HttpResponse:
    return render(request, "guidance/sources.html", {"documents": DOCUMENTS})
