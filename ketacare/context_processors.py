from django.conf import settings

from accounts.idle import seconds_left


def clinic(request):
    return {
        "CLINIC_NAME": settings.CLINIC_NAME,
        "IDLE_SECONDS": seconds_left(request.session) if hasattr(request, "session") else 0,
    }
