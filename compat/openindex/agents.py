"""OpenIndex's agents, `GET/POST /api/agents`: agents are minds (docs/openindex.md has the field mapping)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from compat.openindex import agent_selectors, services
from compat.openindex.base import OpenIndexApiView, ok
from compat.openindex.serializers import (
    OpenIndexAgentInputSerializer,
    OpenIndexAgentSerializer,
    OpenIndexErrorSerializer,
    agent_changes,
    agent_data,
    openindex_body,
)


def _errors(*statuses: int) -> dict:
    return {
        status: OpenApiResponse(OpenIndexErrorSerializer, description="`{ok: false, error}`")
        for status in statuses
    }


class AgentsApi(OpenIndexApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="openindex_agents_list",
        tags=["OpenIndex"],
        description=(
            "The agents (minds) the key may use, newest first: group-only minds the key's member may not use are "
            'left out. The general agent "Jack Of All Trades" is listed once it exists.'
        ),
        responses={
            200: inline_serializer(
                "OpenIndexAgentList",
                fields={"ok": serializers.BooleanField(), "agents": OpenIndexAgentSerializer(many=True)},
            ),
            **_errors(401, 403, 500),
        },
    )
    def get(self, request):
        return ok(agents=[agent_data(mind) for mind in agent_selectors.agents_list(principal=self.principal)])

    @extend_schema(
        operation_id="openindex_agents_save",
        tags=["OpenIndex"],
        description=(
            "Creates an agent, or updates the one `id` names (only the fields given; null means not given). "
            "`collections` attaches exactly those collections. 400 `invalid name` / `invalid description` / "
            "`invalid <field>: …`; 403 `exceeded agent allowance` at the workspace's minds limit; 404 for an "
            "unknown `id`."
        ),
        request=OpenIndexAgentInputSerializer,
        responses={
            200: inline_serializer(
                "OpenIndexAgentSaved",
                fields={"ok": serializers.BooleanField(), "agentId": serializers.CharField()},
            ),
            **_errors(400, 401, 403, 404, 500),
        },
    )
    def post(self, request):
        data = openindex_body(OpenIndexAgentInputSerializer, request)
        mind = services.agent_save(
            principal=self.principal,
            agent_id=data.get("id") or None,
            changes=agent_changes(data),
            collection_ids=data.get("collections"),
        )
        return ok(agentId=mind.id)
