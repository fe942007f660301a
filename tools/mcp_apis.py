from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from config.api.errors import NotFound
from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import body
from config.api.views import success
from minds.apis_base import MindScopedApiView
from tools import mcp_services
from tools.mcp_serializers import (
    ContextEndpointInputSerializer,
    ContextEndpointSerializer,
    McpRefreshSerializer,
    McpServerCreateSerializer,
    McpServerSerializer,
    McpServerUpdateSerializer,
    context_endpoint_data,
    mcp_server_data,
)
from tools.models import ContextEndpoint, McpServer

MCP_ERRORS = (*COMMON_ERRORS, 409, 422)


def _server(mind, server_id: str) -> McpServer:
    server = McpServer.objects.filter(mind=mind, pk=server_id).first()
    if server is None:
        raise NotFound("No MCP server with this id on this mind.")
    return server


class McpServerListApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="mcp_servers_list",
        responses={
            200: envelope("McpServerListResponse", mcpServers=McpServerSerializer(many=True)),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        servers = McpServer.objects.filter(mind=self.mind).prefetch_related("tools")
        return success(mcpServers=[mcp_server_data(s) for s in servers])

    @extend_schema(
        operation_id="mcp_servers_create",
        description=(
            "Connects to the server (streamable HTTP), lists its tools and saves them, each disabled until switched "
            "on (PATCH with `tools`). A server that cannot be listed is not saved: 400 `url_not_allowed` (the "
            "address is not public), 422 `mcp_unreachable`, `mcp_timeout` or `mcp_protocol_error`."
        ),
        request=McpServerCreateSerializer,
        responses={
            201: envelope("McpServerCreateResponse", mcpServer=McpServerSerializer()),
            **errors(*MCP_ERRORS),
        },
    )
    def post(self, request):
        data = body(McpServerCreateSerializer, request)
        server = mcp_services.mcp_server_create(
            mind=self.mind,
            changes=mcp_services.McpServerChanges(
                name=data["name"], url=data["url"], headers=data.get("headers"), enabled=data.get("enabled")
            ),
        )
        return success(201, mcpServer=mcp_server_data(server))


class McpServerDetailApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "PATCH": "minds:write", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="mcp_servers_retrieve",
        responses={
            200: envelope("McpServerDetailResponse", mcpServer=McpServerSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request, server_id: str):
        return success(mcpServer=mcp_server_data(_server(self.mind, server_id)))

    @extend_schema(
        operation_id="mcp_servers_update",
        description=(
            "Partial. A new `url` or `headers` lists the server again (refused with nothing saved when it cannot "
            "be listed); `tools: [{id, enabled}]` switches the server's tools on or off."
        ),
        request=McpServerUpdateSerializer,
        responses={
            200: envelope("McpServerUpdateResponse", mcpServer=McpServerSerializer()),
            **errors(*MCP_ERRORS),
        },
    )
    def patch(self, request, server_id: str):
        server = _server(self.mind, server_id)
        data = body(McpServerUpdateSerializer, request)
        server = mcp_services.mcp_server_update(
            server=server,
            changes=mcp_services.McpServerChanges(
                name=data.get("name"),
                url=data.get("url"),
                headers=data.get("headers"),
                enabled=data.get("enabled"),
                tools=[dict(t) for t in data.get("tools", [])],
            ),
        )
        return success(mcpServer=mcp_server_data(server))

    @extend_schema(
        operation_id="mcp_servers_destroy",
        responses={
            200: envelope(
                "McpServerDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, server_id: str):
        return success(deleted=True, id=mcp_services.mcp_server_delete(server=_server(self.mind, server_id)))


class McpServerRefreshApi(MindScopedApiView):
    required_scopes = {"POST": "minds:write"}

    @extend_schema(
        operation_id="mcp_servers_refresh",
        description=(
            "Lists the server's tools again: new ones are added disabled, vanished ones deleted, changed schemas "
            "updated. A failure is 422 (and recorded as the server's `lastError`); its tools are kept."
        ),
        request=None,
        responses={
            200: envelope(
                "McpServerRefreshResponse", mcpServer=McpServerSerializer(), changes=McpRefreshSerializer()
            ),
            **errors(*MCP_ERRORS),
        },
    )
    def post(self, request, server_id: str):
        server = _server(self.mind, server_id)
        changes = mcp_services.mcp_server_refresh(server=server)
        return success(mcpServer=mcp_server_data(server), changes=changes)


class ContextEndpointApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "PUT": "minds:write", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="context_endpoint_retrieve",
        responses={
            200: envelope(
                "ContextEndpointResponse", contextEndpoint=ContextEndpointSerializer(allow_null=True)
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        endpoint = ContextEndpoint.objects.filter(mind=self.mind).first()
        return success(contextEndpoint=context_endpoint_data(endpoint))

    @extend_schema(
        operation_id="context_endpoint_set",
        description=(
            "Sets the mind's dynamic context endpoint: called on each chat turn (GET, through the SSRF-safe "
            "client, within `timeoutSeconds`), its answer goes into the system prompt, cut to a share of the "
            "model's context and reused by a conversation for `cacheSeconds`. A failure is skipped: the chat goes "
            "on without it."
        ),
        request=ContextEndpointInputSerializer,
        responses={
            200: envelope("ContextEndpointSetResponse", contextEndpoint=ContextEndpointSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def put(self, request):
        data = body(ContextEndpointInputSerializer, request)
        endpoint = mcp_services.context_endpoint_set(
            mind=self.mind,
            changes=mcp_services.ContextEndpointChanges(
                url_template=data["urlTemplate"],
                headers=data.get("headers"),
                cache_seconds=data.get("cacheSeconds"),
                timeout_seconds=data.get("timeoutSeconds"),
                enabled=data.get("enabled"),
            ),
        )
        return success(contextEndpoint=context_endpoint_data(endpoint))

    @extend_schema(
        operation_id="context_endpoint_destroy",
        responses={
            200: envelope("ContextEndpointDeleteResponse", deleted=serializers.BooleanField()),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request):
        return success(deleted=mcp_services.context_endpoint_delete(mind=self.mind))
