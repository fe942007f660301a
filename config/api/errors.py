"""Domain errors raised by services and selectors; the exception handler turns them into the envelope."""

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    code = "bad_request"
    default_message = "The request could not be processed."

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None, code: str | None = None
    ):
        self.message = message or self.default_message
        self.details = details or {}
        if code:
            self.code = code
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    code = "validation_error"
    default_message = "The request is not valid."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class LimitExceeded(ApplicationError):
    code = "limit_exceeded"
    default_message = "A plan limit has been reached."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "forbidden"
    default_message = "You do not have access to this resource."


class UpstreamUnavailable(ApplicationError):
    status_code = 502
    code = "llm_unavailable"
    default_message = "The language model is unavailable. Try again shortly."
