"""OpenIndex's chat, `GET/POST /api/chat`, over the one chat service (conversations.chat) on the `openindex`
channel. docs/openindex.md describes the targets, the answer and the JSON Lines stream."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from compat.openindex import services
from compat.openindex.agent_selectors import agent_get
from compat.openindex.base import OpenIndexApiView, ok, openindex_error
from compat.openindex.chat_selectors import chats_page
from compat.openindex.serializers import (
    LLM_FAILED,
    OpenIndexChatAnswerSerializer,
    OpenIndexChatInputSerializer,
    OpenIndexChatListQuerySerializer,
    OpenIndexChatSerializer,
    OpenIndexErrorSerializer,
    answer_data,
    chat_data,
    chat_lines,
    openindex_body,
    openindex_query,
)
from config.api.errors import UpstreamUnavailable
from conversations.chat import chat_complete, chat_stream
from conversations.models import Conversation
from conversations.streaming import guarded, unbuffered_response
from knowledge.selectors import collection_get


def _errors(*statuses: int) -> dict:
    return {
        status: OpenApiResponse(OpenIndexErrorSerializer, description="`{ok: false, error}`")
        for status in statuses
    }


class ChatApi(OpenIndexApiView):
    required_scopes = {"GET": "conversations:read", "POST": "minds:chat"}

    @extend_schema(
        operation_id="openindex_chats_list",
        tags=["OpenIndex"],
        description=(
            "The key's OpenIndex chats, most recently active first. `agent_id` / `collection_id` filter; with "
            "neither, the general agent's own chats. `start_after` is the `updatedAt` (epoch milliseconds) of the "
            "last chat of the previous page. Chats of minds the key may not use are never listed."
        ),
        parameters=[OpenIndexChatListQuerySerializer],
        responses={
            200: inline_serializer(
                "OpenIndexChatList",
                fields={"ok": serializers.BooleanField(), "chats": OpenIndexChatSerializer(many=True)},
            ),
            **_errors(400, 401, 403, 404, 500),
        },
    )
    def get(self, request):
        params = openindex_query(OpenIndexChatListQuerySerializer, request)
        agent = (
            agent_get(principal=self.principal, agent_id=params["agent_id"]) if "agent_id" in params else None
        )
        collection = (
            collection_get(principal=self.principal, collection_id=params["collection_id"])
            if "collection_id" in params
            else None
        )
        chats = chats_page(
            principal=self.principal,
            agent=agent,
            collection=collection,
            start_after_ms=params.get("start_after"),
            limit=params["limit"],
            include_empty=params["include_empty"],
        )
        return ok(chats=[chat_data(chat) for chat in chats])

    @extend_schema(
        operation_id="openindex_chat_send",
        tags=["OpenIndex"],
        description=(
            "Sends a message to an agent (`agentId`), a collection (`collectionId`: the general agent answers from "
            "that collection only), both (the agent answers from that collection only) or neither (the general "
            'agent "Jack Of All Trades"). `chatId` null starts a chat; an existing one continues it. '
            "`streaming: true` answers in JSON Lines (application/x-ndjson): `start`, `token`, `source`, then "
            "`done` (the answer object) or `error`, with `tool_call` / `tool_result` lines when the agent calls its "
            "tools. `tools: [{id, checked}]` switches the agent's tools on or off for this chat. `model` and "
            "`lastUploadedFile` are accepted and not used: the agent's own model and settings answer."
        ),
        request=OpenIndexChatInputSerializer,
        responses={
            200: OpenApiResponse(
                OpenIndexChatAnswerSerializer, description="JSON, or JSON Lines when streaming."
            ),
            **_errors(400, 401, 403, 404, 500),
        },
    )
    def post(self, request):
        data = openindex_body(OpenIndexChatInputSerializer, request)
        target = services.chat_target(
            principal=self.principal,
            chat_id=data.get("chatId") or None,
            agent_id=data.get("agentId") or None,
            collection_id=data.get("collectionId") or None,
        )
        turn = {
            "mind": target.mind,
            "message": data["message"],
            "conversation_id": target.conversation_id,
            "channel": Conversation.Channel.OPENINDEX,
            "member": self.principal.member,
            "language": data.get("language") or None,
            "collection": target.collection,
            # The agent's tools, switched on or off for this chat (tools.runtime.toolbox_for's `checked`).
            "tools": None
            if data.get("tools") is None
            else [{"id": t["id"], "checked": t["checked"]} for t in data["tools"]],
        }
        if data["streaming"]:
            lines = chat_lines(guarded(chat_stream(**turn)), target)
            return unbuffered_response(lines, "application/x-ndjson; charset=utf-8")
        try:
            result = chat_complete(**turn)
        except UpstreamUnavailable:  # OpenIndex documents 500 for a failed reply (the native API says 502)
            return openindex_error(500, LLM_FAILED)
        return ok(**answer_data(result, target))
