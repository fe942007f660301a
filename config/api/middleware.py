"""Guards for /api/ that run before any view: oversized bodies get the error envelope, not a stack trace."""

from django.conf import settings

from config.api.exception_handler import error_json_response


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            too_big = self._too_big(request)
            if too_big:
                return too_big
        return self.get_response(request)

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
