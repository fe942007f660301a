from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers

from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import body, query_params
from config.api.views import WorkspaceApiView, success
from conversations import chat, selectors, services
from conversations.models import Conversation
from conversations.serializers import (
    ChatInputSerializer,
    ChatlogQuerySerializer,
    ChatlogSerializer,
    ConversationListQuerySerializer,
    ConversationSerializer,
    FeedbackInputSerializer,
    MessageSerializer,
    answer_data,
    chatlog_data,
    conversation_data,
    message_data,
)
from conversations.streaming import stream_response
from minds.apis_base import MindScopedApiView


class ChatApi(MindScopedApiView):
    required_scopes = {"POST": "minds:chat"}

    @extend_schema(
        operation_id="minds_chat",
        description=(
            "Asks the mind. Retrieves passages (hybrid search), answers with the configured LLM (or extractively "
            "from the passages when none is configured) and cites them as [n]; every citation maps to a real "
            "passage. `stream: true` (or `format: sse|jsonl`) streams events `conversation`, `token`, `citation`, "
            "`tool_call`, `tool_result`, `done` or `error` as Server-Sent Events (default) or JSON Lines. With an "
            "LLM configured the mind may call its enabled tools first (`tools: [{id, checked}]` switches them for "
            "this chat); each call and result is a `tool_call` / `tool_result` event and a message of the turn, "
            "and the answer lists them in `toolMessages`."
        ),
        request=ChatInputSerializer,
        responses={
            200: OpenApiResponse(
                envelope(
                    "ChatResponse",
                    conversationId=serializers.CharField(),
                    message=MessageSerializer(),
                    followups=serializers.ListField(child=serializers.CharField()),
                    usage=serializers.DictField(),
                    toolMessages=serializers.ListField(
                        child=serializers.DictField(),
                        required=False,
                        help_text="When the mind called tools: the assistant's `tool_calls` messages and the "
                        "`tool` results, in order (OpenAI's shape).",
                    ),
                    toolLimit=serializers.ChoiceField(
                        choices=["calls", "time"],
                        required=False,
                        help_text="The bound the tool calls hit, when they did.",
                    ),
                ),
                description="JSON, or text/event-stream / application/x-ndjson when streaming.",
            ),
            **errors(*COMMON_ERRORS, 502),
        },
    )
    def post(self, request):
        data = body(ChatInputSerializer, request)
        fmt = data.get("format") or ("sse" if data["stream"] else "json")
        kwargs = {
            "mind": self.mind,
            "message": data["message"],
            "conversation_id": data.get("conversationId"),
            "channel": Conversation.Channel.API,
            "member": self.principal.member,
            "language": data.get("language"),
            "tools": _checked(data.get("tools")),
        }
        if fmt == "json":
            return success(**answer_data(chat.chat_complete(**kwargs)))
        return stream_response(chat.chat_stream(**kwargs), fmt)


def _checked(tools) -> list[dict] | None:
    return None if tools is None else [{"id": t["id"], "checked": t["checked"]} for t in tools]


class ConversationListApi(MindScopedApiView):
    required_scopes = {"GET": "conversations:read"}

    @extend_schema(
        operation_id="minds_conversations",
        parameters=[ConversationListQuerySerializer],
        responses={
            200: envelope(
                "ConversationListResponse",
                conversations=ConversationSerializer(many=True),
                hasMore=serializers.BooleanField(),
                nextStartAfter=serializers.CharField(allow_null=True),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(ConversationListQuerySerializer, request)
        page, has_more = selectors.conversation_page(
            mind=self.mind, start_after=params.get("startAfter"), limit=params["limit"]
        )
        return success(
            conversations=[conversation_data(c) for c in page],
            hasMore=has_more,
            nextStartAfter=page[-1].id if has_more and page else None,
        )


class ConversationDetailApi(WorkspaceApiView):
    required_scopes = {"GET": "conversations:read", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="conversations_retrieve",
        responses={
            200: envelope("ConversationDetailResponse", conversation=ConversationSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request, conversation_id: str):
        conversation = selectors.conversation_get(principal=self.principal, conversation_id=conversation_id)
        return success(conversation=conversation_data(conversation, with_messages=True))

    @extend_schema(
        operation_id="conversations_destroy",
        responses={
            200: envelope(
                "ConversationDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, conversation_id: str):
        conversation = selectors.conversation_get(principal=self.principal, conversation_id=conversation_id)
        return success(deleted=True, id=services.conversation_delete(conversation=conversation))


class MessageFeedbackApi(WorkspaceApiView):
    required_scopes = {"POST": "minds:chat"}

    @extend_schema(
        operation_id="messages_feedback",
        request=FeedbackInputSerializer,
        responses={200: envelope("FeedbackResponse", message=MessageSerializer()), **errors(*COMMON_ERRORS)},
    )
    def post(self, request, conversation_id: str, message_id: str):
        conversation = selectors.conversation_get(principal=self.principal, conversation_id=conversation_id)
        message = selectors.message_get(conversation=conversation, message_id=message_id)
        data = body(FeedbackInputSerializer, request)
        message = services.message_feedback(
            message=message, rating=data["rating"], comment=data.get("comment", "")
        )
        return success(message=message_data(message))


class ChatlogListApi(WorkspaceApiView):
    required_scopes = {"GET": "conversations:read"}

    @extend_schema(
        operation_id="chatlogs_list",
        description=(
            "TypingMind's chat log export, over every conversation of the minds the key may use (API, "
            "OpenAI-compatible, agent chat, public page, widget): newest first, the last 100 by default; "
            "`startUnixTime`/`endUnixTime` (seconds, fractions accepted) bound `createdAt`; `userID` is a member's "
            "id or a public visitor's id; page with `limit` (1–500) and `offset`."
        ),
        parameters=[ChatlogQuerySerializer],
        responses={
            200: envelope("ChatlogListResponse", data=ChatlogSerializer(many=True)),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(ChatlogQuerySerializer, request)
        logs = selectors.chatlogs(
            principal=self.principal,
            start=params.get("startUnixTime"),
            end=params.get("endUnixTime"),
            user_id=params.get("userID"),
            limit=params["limit"],
            offset=params["offset"],
        )
        return success(data=[chatlog_data(c) for c in logs])
