"""The patient's single-use link: 256 random bits, only their SHA-256 stored.

The token is ``secrets.token_urlsafe(32)`` (43 characters, 256 bits). The database keeps its
SHA-256 alone, so a copy of the database opens no questionnaire. A link is found by looking its
hash up (an index on a hash: the time it takes says nothing about the token) and the stored hash
is then compared with ``hmac.compare_digest``, in constant time.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from selfreport.models import Invitation

TOKEN_BYTES = 32
# What token_urlsafe(32) gives: 43 characters of the URL-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime() -> timedelta:
    return timedelta(hours=settings.SELF_REPORT_LINK_HOURS)


def url(token: str) -> str:
    return f"{settings.SITE_URL}{reverse('selfreport:answer', args=[token])}"


def open_invitation(token: str) -> Invitation | None:
    """The invitation whose link this is, if the link still works: sent, not answered, not
    expired. None for a forged, used or expired link alike (the caller shows one page)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    wanted = digest(token)
    invitation = Invitation.objects.filter(token_hash=wanted).first()
    if invitation is None or not hmac.compare_digest(invitation.token_hash, wanted):
        return None
    return invitation if invitation.is_open else None


def expiry(now=None):
    return (now or timezone.now()) + lifetime()
