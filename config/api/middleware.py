"""Guards that run before any view, and the HEAD rule that runs after every one.

Everything under /api/ and the public chat's JSON endpoints answers in the error envelope, even when the request
never reaches a view: oversized bodies, chunked bodies the server cannot read, NUL characters in the URL
(PostgreSQL cannot compare text holding them, so a lookup would raise), and CSRF failures (see `csrf_failure`).
"""

import re
import tempfile

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.views.csrf import csrf_failure as django_csrf_failure

from config.api.exception_handler import error_json_response
from config.api.parsers import NUL_IN_URL, url_has_nul

# The public page's JSON endpoints: chat, speech and the restored conversation.
PUBLIC_JSON_PATH = re.compile(r"^/m/[^/]+/(chat|speech|conversation/)")


def answers_in_json(path: str) -> bool:
    return path.startswith("/api/") or bool(PUBLIC_JSON_PATH.match(path))


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if answers_in_json(request.path):
            refusal = self._chunked(request) or self._too_big(request)
            if refusal:
                return refusal
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        """A NUL in the URL, once the route is known: an API view refuses it itself, first thing in `initial`, so
        the refusal comes in its surface's shape (`{"ok": false}`, `{"userMessage"}`); any other JSON route here.
        Unknown API paths, the public chat and the rest answer in the native envelope."""
        if not answers_in_json(request.path) or not url_has_nul(request):
            return None
        if getattr(getattr(view_func, "cls", None), "refuses_nul_in_url", False):  # config/api/views.py
            return None
        return error_json_response(400, "malformed_request", NUL_IN_URL)

    @staticmethod
    def _chunked(request):
        """A `Transfer-Encoding: chunked` body has no Content-Length, and Django reads a body only up to that
        length: it would see an empty body and act on it. Read it when the server has decoded it (gunicorn says so
        with `wsgi.input_terminated`), within the same size limits, or refuse it with 411 (runserver, wsgiref)."""
        if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        if not request.environ.get("wsgi.input_terminated"):
            return error_json_response(
                411,
                "length_required",
                "This server cannot read a chunked request body: send a Content-Length.",
            )
        limit, code = _body_limit(request)
        # Spooled: a chunked upload of hundreds of MB goes to a temporary file, not to memory.
        body = tempfile.SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        source = request.environ["wsgi.input"]
        length = 0
        while block := source.read(min(64 * 1024, limit + 1 - length)):
            length += len(block)
            if length > limit:
                body.close()
                return _too_large(limit, code)
            body.write(block)
        body.seek(0)
        request._stream = LimitedStream(body, length)
        request.META["CONTENT_LENGTH"] = str(length)
        return None

    @staticmethod
    def _too_big(request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_json_response(400, "malformed_request", "Content-Length is not a number.")
        limit, code = _body_limit(request)
        return _too_large(limit, code) if length > limit else None


def _body_limit(request) -> tuple[int, str]:
    """The bytes a request body may have, and the code of the refusal past them."""
    if request.content_type == "multipart/form-data":
        return settings.MAX_AUDIO_BYTES + 1024 * 1024, "file_too_large"
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "payload_too_large"


def _too_large(limit: int, code: str):
    return error_json_response(
        413, code, f"The request body is larger than the {limit} bytes allowed.", {"maxBytes": limit}
    )


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
