"""Wire shapes of MCP servers and the dynamic context endpoint (camelCase; secret header values never appear)."""

from rest_framework import serializers

from config.api.serializers import StrictSerializer, iso
from tools.models import ContextEndpoint, McpServer

HEADERS_HELP = (
    "Secret headers sent with every request, as {name: value} (e.g. Authorization). Write-only: stored encrypted "
    "and never returned; responses list their names in `secretHeaders`."
)
MERGE_HELP = " Merged: {name: value} sets one, {name: null} removes one, the others are kept."


class McpToolSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(help_text="The function name the model calls: `<server name>__<tool name>`.")
    remoteName = serializers.CharField(help_text="The tool's name on the MCP server.")
    description = serializers.CharField()
    enabled = serializers.BooleanField(
        help_text="Off until switched on: new tools of a server start disabled."
    )
    isPublic = serializers.BooleanField()
    parameters = serializers.DictField(help_text="The server's inputSchema (JSON Schema).")


class McpServerSerializer(serializers.Serializer):
    id = serializers.CharField()
    mindId = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    enabled = serializers.BooleanField()
    secretHeaders = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the secret headers."
    )
    listedAt = serializers.DateTimeField(allow_null=True)
    lastError = serializers.CharField(help_text="Why the last refresh failed; empty when it did not.")
    tools = McpToolSerializer(many=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


def mcp_tool_data(tool) -> dict:
    return {
        "id": tool.id,
        "name": tool.name,
        "remoteName": (tool.config or {}).get("remoteName", ""),
        "description": tool.description,
        "enabled": tool.enabled,
        "isPublic": tool.is_public,
        "parameters": tool.parameters,
    }


def mcp_server_data(server: McpServer) -> dict:
    return {
        "id": server.id,
        "mindId": server.mind_id,
        "name": server.name,
        "url": server.url,
        "enabled": server.enabled,
        "secretHeaders": list(server.secret_header_names or []),
        "listedAt": iso(server.listed_at),
        "lastError": server.last_error,
        "tools": [mcp_tool_data(t) for t in server.tools.all().order_by("created_at", "id")],
        "createdAt": iso(server.created_at),
        "updatedAt": iso(server.updated_at),
    }


class ToolSwitchSerializer(serializers.Serializer):
    """{id, enabled}; the other fields of a tool as a GET shows it are ignored, so a server fetched, edited and sent
    back is accepted."""

    id = serializers.CharField()
    enabled = serializers.BooleanField()


def _headers_field(help_text: str, *, nullable: bool) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=nullable, trim_whitespace=False),
        required=False,
        write_only=True,
        help_text=help_text,
    )


class McpServerCreateSerializer(StrictSerializer):
    name = serializers.CharField(
        max_length=40, help_text="Letters, digits, _ and -; prefixes the names of the server's tools."
    )
    url = serializers.CharField(
        max_length=2000, help_text="The server's streamable HTTP endpoint (http or https)."
    )
    headers = _headers_field(HEADERS_HELP, nullable=False)
    enabled = serializers.BooleanField(required=False, default=True)


class McpServerUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=40, required=False)
    url = serializers.CharField(
        max_length=2000,
        required=False,
        help_text="A new URL is listed again; refused, unchanged, if unreachable.",
    )
    headers = _headers_field(HEADERS_HELP + MERGE_HELP + " Listed again with the new headers.", nullable=True)
    enabled = serializers.BooleanField(required=False)
    tools = ToolSwitchSerializer(many=True, required=False, help_text="Switch this server's tools on or off.")
    # What a GET shows and a PATCH ignores.
    id = serializers.CharField(required=False, help_text="Read-only: ignored.")
    mindId = serializers.CharField(required=False, help_text="Read-only: ignored.")
    secretHeaders = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Read-only: ignored."
    )
    listedAt = serializers.CharField(required=False, allow_null=True, help_text="Read-only: ignored.")
    lastError = serializers.CharField(required=False, allow_blank=True, help_text="Read-only: ignored.")
    createdAt = serializers.CharField(required=False, help_text="Read-only: ignored.")
    updatedAt = serializers.CharField(required=False, help_text="Read-only: ignored.")


class McpRefreshSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.CharField(), help_text="Remote names of the new tools.")
    updated = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())


class ContextEndpointSerializer(serializers.Serializer):
    urlTemplate = serializers.CharField()
    secretHeaders = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the secret headers."
    )
    cacheSeconds = serializers.IntegerField()
    timeoutSeconds = serializers.FloatField()
    enabled = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


def context_endpoint_data(endpoint: ContextEndpoint | None) -> dict | None:
    if endpoint is None:
        return None
    return {
        "urlTemplate": endpoint.url_template,
        "secretHeaders": list(endpoint.secret_header_names or []),
        "cacheSeconds": endpoint.cache_seconds,
        "timeoutSeconds": endpoint.timeout_seconds,
        "enabled": endpoint.enabled,
        "createdAt": iso(endpoint.created_at),
        "updatedAt": iso(endpoint.updated_at),
    }


class ContextEndpointInputSerializer(StrictSerializer):
    urlTemplate = serializers.CharField(
        max_length=2000,
        help_text=(
            "The URL called on each chat turn; may use {conversationId}, {mindId}, {lastUserMessage} and {userId} "
            "in its path and query (each URL-encoded when filled in)."
        ),
    )
    headers = _headers_field(HEADERS_HELP + MERGE_HELP, nullable=True)
    cacheSeconds = serializers.IntegerField(
        min_value=0, max_value=86400, required=False, help_text="How long one conversation reuses an answer."
    )
    timeoutSeconds = serializers.FloatField(min_value=0.5, max_value=10, required=False)
    enabled = serializers.BooleanField(required=False)
    # What a GET shows and a PUT ignores.
    secretHeaders = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Read-only: ignored."
    )
    createdAt = serializers.CharField(required=False, help_text="Read-only: ignored.")
    updatedAt = serializers.CharField(required=False, help_text="Read-only: ignored.")
