"""The native API of a mind's tools: /minds/{mind_id}/tools and /minds/{mind_id}/tools/{tool_id}."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import body
from config.api.views import success
from minds.apis_base import MindScopedApiView
from tools import selectors, services
from tools.serializers import (
    ToolInputSerializer,
    ToolSerializer,
    ToolUpdateSerializer,
    tool_changes,
    tool_data,
)

TOOLS_DESCRIPTION = (
    "What the mind may call while it answers (OpenAI function calling): the built-ins `search_knowledge` (its own "
    "knowledge, searched again with the model's query) and `fetch_url` (pages of `config.allowedHosts` only), HTTP "
    "tools (`config.urlTemplate` with `{argument}` placeholders, `config.method` GET or POST) and the tools of MCP "
    "servers. A tool is off until `enabled`; only tools with `isPublic` are used on the public page and the widget. "
    "Secret headers (`headers`) are stored encrypted and never returned: `secretHeaders` lists their names."
)


class ToolListApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="tools_list",
        description=TOOLS_DESCRIPTION,
        responses={
            200: envelope("ToolListResponse", tools=ToolSerializer(many=True)),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        return success(tools=[tool_data(tool) for tool in selectors.tool_list(mind=self.mind)])

    @extend_schema(
        operation_id="tools_create",
        description=(
            "A built-in (`kind` search_knowledge or fetch_url; its name defaults to the kind, its arguments are "
            "fixed) or an HTTP tool (`kind` http, with `name`, `parameters` and `config.urlTemplate`). The name is "
            "the function name the model calls (`^[a-zA-Z0-9_-]{1,64}$`), unique in the mind: 409 `conflict`. "
            "MCP tools come from their server."
        ),
        request=ToolInputSerializer,
        responses={201: envelope("ToolCreateResponse", tool=ToolSerializer()), **errors(*COMMON_ERRORS, 409)},
    )
    def post(self, request):
        data = body(ToolInputSerializer, request)
        tool = services.tool_create(
            mind=self.mind,
            kind=data["kind"],
            name=data.get("name"),
            description=data.get("description", ""),
            parameters=data.get("parameters"),
            enabled=data["enabled"],
            is_public=data["isPublic"],
            config=data.get("config"),
            secret_headers=data.get("headers"),
        )
        return success(201, tool=tool_data(tool))


class ToolDetailApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "PATCH": "minds:write", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="tools_retrieve",
        responses={200: envelope("ToolDetailResponse", tool=ToolSerializer()), **errors(*COMMON_ERRORS)},
    )
    def get(self, request, tool_id: str):
        return success(tool=tool_data(selectors.tool_get(mind=self.mind, tool_id=tool_id)))

    @extend_schema(
        operation_id="tools_update",
        description=(
            "Partial: send only what changes. `headers` sets the secret headers it names and removes those sent as "
            "null, keeping the others. The read-only fields of a GET are ignored, so a tool fetched, edited and sent "
            "back is accepted; `kind` only unchanged. An MCP tool's name, arguments and config come from its server: "
            "only `enabled`, `isPublic` and `description` change."
        ),
        request=ToolUpdateSerializer,
        responses={200: envelope("ToolUpdateResponse", tool=ToolSerializer()), **errors(*COMMON_ERRORS, 409)},
    )
    def patch(self, request, tool_id: str):
        tool = selectors.tool_get(mind=self.mind, tool_id=tool_id)
        data = body(ToolUpdateSerializer, request, context={"tool": tool})
        tool = services.tool_update(tool=tool, changes=tool_changes(data), secret_headers=data.get("headers"))
        return success(tool=tool_data(tool))

    @extend_schema(
        operation_id="tools_destroy",
        responses={
            200: envelope(
                "ToolDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, tool_id: str):
        tool = selectors.tool_get(mind=self.mind, tool_id=tool_id)
        return success(deleted=True, id=services.tool_delete(tool=tool))
