"""Tool input and output shapes (camelCase on the wire). Secret header values are write-only (`headers`); a tool
says only which secret headers it has (`secretHeaders`, their names)."""

from rest_framework import serializers

from config.api.serializers import StrictSerializer, iso
from tools.models import Tool
from tools.runtime import spec_of

# camelCase API field -> model field
FIELD_MAP = {
    "name": "name",
    "description": "description",
    "parameters": "parameters",
    "enabled": "enabled",
    "isPublic": "is_public",
    "config": "config",
}
# Shown by a GET and ignored when sent back unchanged in a PATCH (a tool fetched, edited and sent back is accepted).
READ_ONLY = ("id", "secretHeaders", "mcpServerId", "createdAt", "updatedAt")


def tool_data(tool: Tool) -> dict:
    spec = spec_of(tool)
    return {
        "id": tool.id,
        "kind": tool.kind,
        "name": tool.name,
        "description": tool.description,
        # A built-in's fixed arguments, an HTTP tool's schema, an MCP tool's inputSchema.
        "parameters": spec.parameters,
        "enabled": tool.enabled,
        "isPublic": tool.is_public,
        "config": tool.config,
        "secretHeaders": list(tool.secret_header_names),
        "mcpServerId": tool.mcp_server_id,
        "createdAt": iso(tool.created_at),
        "updatedAt": iso(tool.updated_at),
    }


class ToolSerializer(serializers.Serializer):
    """Documents `tool_data` in the OpenAPI schema."""

    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=Tool.Kind.values)
    name = serializers.CharField(help_text="The function name the model calls, unique in the mind.")
    description = serializers.CharField(allow_blank=True)
    parameters = serializers.DictField(help_text="The JSON Schema of the arguments.")
    enabled = serializers.BooleanField()
    isPublic = serializers.BooleanField()
    config = serializers.DictField(
        help_text="http: {method, urlTemplate, headers?, timeoutSeconds?}; fetch_url: {allowedHosts, "
        "timeoutSeconds?}; mcp: {remoteName}."
    )
    secretHeaders = serializers.ListField(
        child=serializers.CharField(),
        help_text="Names of the secret headers set; their values are never returned.",
    )
    mcpServerId = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class ToolInputSerializer(StrictSerializer):
    # All kinds, one enum in the OpenAPI document; mcp is refused (400): MCP tools come from their server.
    kind = serializers.ChoiceField(choices=Tool.Kind.values, help_text="search_knowledge, fetch_url or http.")
    name = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Default for a built-in: its kind (search_knowledge, fetch_url).",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    parameters = serializers.DictField(
        required=False, help_text="An HTTP tool's JSON Schema of the arguments; fixed for the built-ins."
    )
    enabled = serializers.BooleanField(required=False, default=False)
    isPublic = serializers.BooleanField(required=False, default=False)
    config = serializers.DictField(required=False)
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        write_only=True,
        help_text="Secret headers {name: value}, stored encrypted and never returned (HTTP tools).",
    )


class ToolUpdateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(
        choices=Tool.Kind.values, required=False, help_text="Accepted only unchanged."
    )
    name = serializers.CharField(required=False, max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    parameters = serializers.DictField(required=False)
    enabled = serializers.BooleanField(required=False)
    isPublic = serializers.BooleanField(required=False)
    config = serializers.DictField(required=False)
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True, trim_whitespace=False),
        required=False,
        write_only=True,
        help_text="Secret headers to set {name: value}, or to remove {name: null}; the others are kept.",
    )
    id = serializers.CharField(required=False, help_text="Read-only: ignored.")
    secretHeaders = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Read-only: ignored."
    )
    mcpServerId = serializers.CharField(required=False, allow_null=True, help_text="Read-only: ignored.")
    createdAt = serializers.CharField(required=False, help_text="Read-only: ignored.")
    updatedAt = serializers.CharField(required=False, help_text="Read-only: ignored.")

    def validate(self, attrs):
        tool = self.context["tool"]
        if "kind" in attrs and attrs["kind"] != tool.kind:
            raise serializers.ValidationError({"kind": ["A tool's kind cannot change; create another tool."]})
        return attrs


def tool_changes(data: dict) -> dict:
    """The model fields a validated body changes (read-only and kind left out)."""
    return {field: data[name] for name, field in FIELD_MAP.items() if name in data}
