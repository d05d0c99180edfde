"""The client's address behind reverse proxies, for failed-login lockouts (django-axes).

With ``PROXY_COUNT`` = 0 (the default) it is ``REMOTE_ADDR``. Behind N trusted proxies, each
appending the address it saw to ``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``),
it is the N-th entry from the right: what the outermost trusted proxy saw. Entries further left
were written by the client and are never believed.
"""

from django.conf import settings


def client_ip(request) -> str | None:
    count = settings.AXES_IPWARE_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR")
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    return hops[-count] if len(hops) >= count else remote
