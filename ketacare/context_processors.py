from django.conf import settings

from accounts.idle import seconds_left

# The menu entry a page belongs to, by its URL's namespace (or name): the navigation marks it
# as the current page (aria-current), for the eye and for screen readers. A course, its
# sessions, scores, plan and self-report belong to the patient they are part of.
NAV_SECTIONS = {
    "clinic:day": "day", "clinic:unbooked": "day", "clinic:undecided": "day",
    "clinic:settings": "settings", "clinic": "patients",
    "patients": "patients", "courses": "patients", "assessments": "patients",
    "selfreport": "patients", "rems": "rems", "outcomes": "outcomes",
    "guidance:rules": "rules", "guidance:sources": "sources",
    "exports": "exports", "audit": "audit", "reports": "referrals",
}


def nav_section(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    if match.url_name and match.url_name.startswith("staff-"):
        return "staff"
    return NAV_SECTIONS.get(match.view_name) or NAV_SECTIONS.get(match.namespace, "")


def clinic(request):
    return {
        "CLINIC_NAME": settings.CLINIC_NAME,
        "IDLE_SECONDS": seconds_left(request.session) if hasattr(request, "session") else 0,
        "NAV_SECTION": nav_section(request),
    }
