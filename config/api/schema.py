"""Helpers so each view documents its real envelope in the OpenAPI document."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["error"])
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField()
    totalPages = serializers.IntegerField()


def envelope(name: str, **fields) -> serializers.Serializer:
    return inline_serializer(
        name=name, fields={"status": serializers.ChoiceField(choices=["success"]), **fields}
    )


def errors(*status_codes: int) -> dict:
    return {code: OpenApiResponse(ErrorSerializer, description="Error envelope") for code in status_codes}


COMMON_ERRORS = (400, 401, 403, 404, 429)


def document_infrastructure_errors(result, generator, request, public):
    """Responses no view declares because they come from around the views, added to every operation they apply to:

    - 503 (database unavailable, with `Retry-After`; config/api/exception_handler.py), in the operation's own
      error shape, copied from its 401. OpenIndex answers it as the 500 it documents, so its operations are left.
    - 411 (a chunked body the server cannot read) and 413 (a body over the size limit) on operations with a body,
      from the request guard (config/api/middleware.py), which answers before routing, in the native envelope.
    """
    native = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not responses or "401" not in responses:
                continue
            if "500" not in responses:
                responses.setdefault(
                    "503",
                    {
                        "description": "The database is unavailable; retry after the given seconds.",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": responses["401"].get("content", native),
                    },
                )
            if "requestBody" in operation:
                responses.setdefault(
                    "411", {"description": "A chunked body this server cannot read.", "content": native}
                )
                responses.setdefault(
                    "413", {"description": "The body is larger than allowed.", "content": native}
                )
    return result
