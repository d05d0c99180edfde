from django.conf import settings


def clinic(request):
    return {
        "CLINIC_NAME": settings.CLINIC_NAME,
        "IDLE_SECONDS": settings.SESSION_COOKIE_AGE,
    }
