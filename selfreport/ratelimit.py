"""Requests to the patient links, counted per client address in the cache (fixed windows).

The address is read as django-axes reads it for login lockouts (``PROXY_COUNT``). With the
default per-process cache each process counts on its own; with ``CACHE_URL`` the count is shared.
"""

import hashlib
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache


def exceeded(request) -> bool:
    """Count this request; True once the address has made more than the limit this window."""
    window = settings.SELF_REPORT_RATE_WINDOW
    address = get_client_ip_address(request) or "unknown"
    # The address is hashed: the cache holds no addresses.
    who = hashlib.sha256(address.encode()).hexdigest()[:32]
    key = f"selfreport-rate:{who}:{int(time.time() // window)}"
    cache.add(key, 0, timeout=window * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window * 2)
        count = 1
    return count > settings.SELF_REPORT_RATE_LIMIT
