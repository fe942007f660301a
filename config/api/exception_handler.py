"""One error envelope for every failure: `{"status": "error", "code", "message", "details"}`."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.api.errors import ApplicationError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": "error", "code": code, "message": message, "details": details or {}}


def error_json_response(
    status_code: int, code: str, message: str, details=None, headers=None
) -> JsonResponse:
    """For code paths outside DRF views (middleware, 404/500 handlers)."""
    response = JsonResponse(error_body(code, message, details), status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# The database is unreachable (refused, lost, restarting): a 503 the client may retry, not a 500.
DATABASE_DOWN = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER = "5"


def database_unavailable(exc: BaseException) -> bool:
    """True for a lost or refused database connection; the connections are closed so the next request
    reconnects by itself once the server is back."""
    if not isinstance(exc, DATABASE_DOWN):
        return False
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except DATABASE_DOWN:
            pass  # a dead connection cannot be closed cleanly; it is discarded either way
    return True


DATABASE_DOWN_MESSAGE = "The database is unavailable. Retry shortly."

# Redis unreachable (restarting): the rate limits, the cache and the task queue live there, so a request cannot be
# counted or its work queued. A 503 to retry as well; redis-py reconnects by itself on the next request.
REDIS_DOWN = (RedisError, BrokerUnavailable)
REDIS_DOWN_MESSAGE = "The service is briefly unavailable. Retry shortly."


# A transaction the database aborted to break a deadlock or a serialisation conflict (SQLSTATE class 40): the
# database is up and the same request will very likely pass when sent again, so the message says that instead.
CONFLICT_MESSAGE = "The request collided with a concurrent change and was rolled back. Retry it."


def transaction_conflict(exc: BaseException) -> bool:
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return isinstance(exc, OperationalError) and sqlstate.startswith("40")


def unavailable_message(exc: BaseException) -> str | None:
    """The 503 message for a backing service that is down (the database, Redis), or None for any other error."""
    if transaction_conflict(exc):
        return CONFLICT_MESSAGE
    if database_unavailable(exc):
        return DATABASE_DOWN_MESSAGE
    if isinstance(exc, REDIS_DOWN):
        return REDIS_DOWN_MESSAGE
    return None


def _flatten_validation(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "_"
            fields.update(_flatten_validation(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            fields[prefix or "_"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                fields.update(_flatten_validation(item, f"{prefix}[{index}]"))
    else:
        fields[prefix or "_"] = [str(detail)]
    return fields


def _validation_message(fields: dict[str, list[str]]) -> str:
    if not fields:
        return "The request is not valid."
    name, messages = next(iter(fields.items()))
    return messages[0] if name == "_" else f"{name}: {messages[0]}"


# DRF's own codes (`default_code`, or the `code` an exception was raised with) where ours read differently.
DRF_CODE_NAMES = {
    "parse_error": "malformed_request",
    "throttled": "rate_limited",
    "not_authenticated": "missing_api_key",
    "authentication_failed": "invalid_api_key",
    "permission_denied": "forbidden",
    "error": "bad_request",
}


def _envelope_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return DRF_CODE_NAMES.get(code, code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        fields = _flatten_validation(exc.detail)
        return Response(
            error_body("validation_error", _validation_message(fields), {"fields": fields}),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = _envelope_code(exc)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait)))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        detail = exc.detail
        message = str(detail if not isinstance(detail, (list, dict)) else exc.default_detail)
        if isinstance(exc, exceptions.NotFound):
            message = "Not found."
        return Response(error_body(code, message), status=exc.status_code, headers=headers)

    if message := unavailable_message(exc):
        logger.warning("Backing service unavailable: %s", exc.__class__.__name__)
        return Response(
            error_body("service_unavailable", message),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    logger.exception("Unhandled error in API view", exc_info=exc)
    set_rollback()
    return Response(
        error_body("internal_error", "An internal error occurred. It has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
