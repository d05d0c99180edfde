"""The two emails of self-report. Neither holds patient data: a greeting and a link."""

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse


def invitation(address: str, link: str) -> EmailMessage:
    hours = settings.SELF_REPORT_LINK_HOURS
    body = (
        "Hello,\n\n"
        f"Your care team at {settings.CLINIC_NAME} asks you to answer a short questionnaire "
        "about how you have been feeling (nine questions, about two minutes):\n\n"
        f"{link}\n\n"
        f"The link works once and for {hours} hours. If it has stopped working, your care team "
        "can send a new one.\n\n"
        "If you are thinking about hurting yourself, call or text 988 (Suicide & Crisis "
        "Lifeline, US) now, or call 911.\n"
    )
    return EmailMessage(
        subject=f"{settings.CLINIC_NAME}: a short questionnaire from your care team",
        body=body, to=[address],
    )


def alert(addresses: list[str], course_pk: int) -> EmailMessage:
    link = f"{settings.SITE_URL}{reverse('courses:detail', args=[course_pk])}"
    body = (
        "A patient's self-reported PHQ-9 needs clinical attention now: the answer to the "
        "question on thoughts of self-harm was not \"not at all\".\n\n"
        f"Open the course (login required): {link}\n\n"
        "This email holds no patient data; the record is in KetaCare.\n"
    )
    return EmailMessage(
        subject="KetaCare: a self-report needs attention now", body=body, to=addresses,
    )
