"""Shared serializer behaviour: unknown fields are rejected, not silently ignored."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def query_params(serializer_class, request) -> dict:
    """Validates query parameters with a serializer; errors become the 400 envelope."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def body(serializer_class, request, **kwargs) -> dict:
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"_": ["The body must be a JSON object."]})
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def iso(value) -> str | None:
    """Timestamps on the wire: ISO-8601 UTC with a `Z`."""
    return value.isoformat().replace("+00:00", "Z") if value else None
