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
