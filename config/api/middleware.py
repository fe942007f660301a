"""Guards that run before any view, and the HEAD rule that runs after every one.

Everything under /api/ and the public chat's JSON endpoints answers in the error envelope, even when the request
never reaches a view: oversized bodies, NUL characters in the URL (PostgreSQL cannot compare text holding them, so
a lookup would raise), and CSRF failures (see `csrf_failure`).
"""

import re

from django.conf import settings
from django.views.csrf import csrf_failure as django_csrf_failure

from config.api.exception_handler import error_json_response

# The public page's JSON endpoints: chat, speech and the restored conversation.
PUBLIC_JSON_PATH = re.compile(r"^/m/[^/]+/(chat|speech|conversation/)")


def answers_in_json(path: str) -> bool:
    return path.startswith("/api/") or bool(PUBLIC_JSON_PATH.match(path))


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if answers_in_json(request.path):
            refusal = self._nul_in_url(request) or self._too_big(request)
            if refusal:
                return refusal
        return self.get_response(request)

    @staticmethod
    def _nul_in_url(request):
        query = request.GET
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in query.items()):
            return error_json_response(400, "malformed_request", "The URL contains a NUL character.")
        return None

    @staticmethod
    def _too_big(request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_json_response(400, "malformed_request", "Content-Length is not a number.")
        is_multipart = request.content_type == "multipart/form-data"
        limit = (
            settings.MAX_AUDIO_BYTES + 1024 * 1024 if is_multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        )
        if length > limit:
            code = "file_too_large" if is_multipart else "payload_too_large"
            return error_json_response(
                413, code, f"The request body is larger than the {limit} bytes allowed.", {"maxBytes": limit}
            )
        return None


class HeadWithoutBodyMiddleware:
    """A HEAD response carries the GET's headers and no body.

    Django leaves this to the server; runserver strips it, gunicorn does not, and the stray bytes are then read
    as the start of the next response on a kept-alive connection.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.streaming_content = []
            else:
                length = response.get("Content-Length", str(len(response.content)))
                response.content = b""
                response["Content-Length"] = length
        return response


def csrf_failure(request, reason: str = ""):
    """Django's CSRF check, answered in the envelope where clients expect JSON (browsers keep the HTML page)."""
    if answers_in_json(request.path):
        return error_json_response(
            403, "csrf_failed", "This request was refused by the cross-site request forgery check."
        )
    return django_csrf_failure(request, reason=reason)
