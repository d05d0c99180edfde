"""Pages are never kept in a browser's or a proxy's cache unless a view says they may be.

Patient data in a browser cache outlives the session: Back after logout would show it. Every
response gets ``Cache-Control: no-store, private`` unless its view explicitly marked it public
(``@cache_control(public=True, ...)``); static files are served by WhiteNoise before this
middleware is reached, with their own long-lived headers.
"""

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


def is_public(response: HttpResponse) -> bool:
    directives = {part.strip().split("=")[0].lower()
                  for part in response.get("Cache-Control", "").split(",")}
    return "public" in directives


class PrivateByDefaultMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_public(response):
            patch_cache_control(response, no_store=True, private=True)
        return response
