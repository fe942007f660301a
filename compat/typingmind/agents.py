"""TypingMind's AI characters and agent chat, over minds: `GET /api/v1/ai-characters` and the stateless
`POST /api/v2/agents/{agent_id}/chat` (seeds/001, reference/seed-apis.md §B.2–B.3).

A character (agent) is a mind the key may use: the list goes through `minds_visible` and the chat resolves its
agent with `mind_get`, so a group-only mind is left out of the list and refused in chat with TypingMind's exact
403 body. The chat is stateless: the client sends the whole conversation; the last user message is the question
and the earlier user and assistant text its history, with the tool steps earlier calls returned (assistant
`tool_calls` and `tool` results, kept in pairs). Image blocks are accepted and ignored (a mind reads no images).
The mind's enabled tools run server-side inside the turn (conversations/tool_loop.py) and one call returns
several messages, as TypingMind documents: each assistant message with `tool_calls`, the `tool` results, then the
final answer. The answer keeps its citations in an extension field on the message, as the OpenAI-compatible API
does. Every turn is still recorded (channel `agent`), so chat logs
and conversation counts include it.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from compat.typingmind.base import TypingMindApiView
from config.api.errors import NotFound
from config.api.serializers import iso
from conversations.chat import EXTRACTIVE_MODEL, chat_complete
from conversations.models import Conversation
from integrations import llm
from minds.models import Mind
from minds.selectors import mind_get, minds_visible

TAGS = ["TypingMind"]
INVALID_REQUEST = "Invalid request"
AGENT_NOT_FOUND = "Agent not found"

ROLES = ("user", "assistant", "tool")
MAX_MESSAGES = 200
# The bounds of the OpenAI-compatible /chat/completions: history only feeds the prompt, the question is searched.
MAX_MESSAGE_CHARS = 32_000
MAX_MESSAGES_TOTAL_CHARS = 100_000
MAX_QUESTION_CHARS = 4000


class TypingMindAgentError(serializers.Serializer):
    userMessage = serializers.CharField()
    details = serializers.DictField(required=False, help_text="For 400: the fields at fault and why.")


def _errors(*status_codes: int) -> dict:
    return {code: TypingMindAgentError for code in status_codes}


def default_model(mind: Mind) -> str:
    """The model that answers this mind's chats, as the chat turn chooses it: the mind's own or the configured
    one, or `extractive` when no LLM is configured (answers composed from the passages, offline)."""
    if not llm.is_configured():
        return EXTRACTIVE_MODEL
    return mind.model or settings.LLM_MODEL


def character_data(mind: Mind) -> dict:
    return {
        "id": mind.id,
        "title": mind.name,
        "description": mind.headline,
        "instruction": mind.system_prompt,
        "defaultModel": default_model(mind),
        "createdAt": iso(mind.created_at),
    }


class CharacterSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The mind's id; its slug works too wherever an agent id is taken.")
    title = serializers.CharField(help_text="The mind's name.")
    description = serializers.CharField(help_text="The mind's headline.")
    instruction = serializers.CharField(help_text="The mind's system prompt.")
    defaultModel = serializers.CharField(
        help_text="The mind's model, else the configured LLM model; `extractive` when no LLM is configured."
    )
    createdAt = serializers.CharField()


class CharacterListApi(TypingMindApiView):
    required_scopes = {"GET": "minds:read"}

    @extend_schema(
        operation_id="typingmind_ai_characters_list",
        tags=TAGS,
        description=(
            "TypingMind's AI characters: the minds this key may use (a group-only mind whose groups the key's "
            "member is not in is left out), by name."
        ),
        responses={
            200: inline_serializer(
                "TypingMindCharacterList", fields={"data": CharacterSerializer(many=True)}
            ),
            **_errors(401, 403, 429),
        },
    )
    def get(self, request):
        minds = minds_visible(principal=self.principal).order_by("name", "id")
        return Response({"data": [character_data(mind) for mind in minds]})


def _invalid(field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [message]})


def _optional(message: dict, key: str, kind: type, where: str, what: str) -> None:
    if message.get(key) is not None and not isinstance(message[key], kind):
        raise _invalid(f"{where}.{key}", f"{key} is {what} or null.")


def _tool_fields(message: dict) -> dict:
    """What a history message keeps of its tool step: an assistant's well-formed calls, a result's call id."""
    if message["role"] == "assistant" and message.get("tool_calls"):
        calls = [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": str(call["function"].get("name") or ""),
                    "arguments": str(call["function"].get("arguments") or "{}"),
                },
            }
            for call in message["tool_calls"]
            if isinstance(call, dict)
            and isinstance(call.get("id"), str)
            and isinstance(call.get("function"), dict)
        ]
        return {"tool_calls": calls} if calls else {}
    if message["role"] == "tool" and message.get("tool_call_id"):
        return {"tool_call_id": message["tool_call_id"]}
    return {}


def _message_text(message, index: int) -> tuple[str, str]:
    """(role, text) of one TypingMind message. Content is a string, null or a list of blocks; only text blocks
    count. tool_calls, tool_call_id and name are checked for their types."""
    where = str(index)  # reported as messages.<index>… by the error envelope
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise _invalid(where, f"Each message is an object with a role: one of {', '.join(ROLES)}.")
    _optional(message, "tool_calls", list, where, "a list")
    _optional(message, "tool_call_id", str, where, "a string")
    _optional(message, "name", str, where, "a string")
    content = message.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        texts = []
        for block_index, block in enumerate(content):
            at = f"{where}.content[{block_index}]"
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise _invalid(at, "Each content block is an object with a type.")
            if block["type"] == "text":
                if not isinstance(block.get("text"), str):
                    raise _invalid(f"{at}.text", "A text block's text is a string.")
                texts.append(block["text"])
        text = "\n".join(texts)
    else:
        raise _invalid(f"{where}.content", "Content is a string, a list of blocks or null.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise _invalid(where, f"A message is limited to {MAX_MESSAGE_CHARS} characters.")
    return message["role"], text


class AgentChatInputSerializer(serializers.Serializer):
    # TypingMind's body is `{messages}`; anything else a client adds is ignored, as its own server does.
    messages = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=MAX_MESSAGES,
        help_text=(
            "The whole conversation: `{role: user|assistant|tool, content: string | blocks | null, tool_calls?, "
            "tool_call_id?, name?}`; blocks are `{type: 'text', text}` or `{type: 'image_url', image_url}`."
        ),
    )

    def validate_messages(self, messages: list) -> dict:
        turns = [_message_text(message, index) for index, message in enumerate(messages)]
        steps = [_tool_fields(message) for message in messages]
        if sum(len(text) for _role, text in turns) > MAX_MESSAGES_TOTAL_CHARS:
            raise serializers.ValidationError(
                f"The messages together are limited to {MAX_MESSAGES_TOTAL_CHARS} characters."
            )
        asked = [index for index, (role, _text) in enumerate(turns) if role == "user"]
        if not asked or not turns[asked[-1]][1].strip():
            raise serializers.ValidationError("The last user message must hold text: it is the question.")
        question = turns[asked[-1]][1].strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise serializers.ValidationError(
                f"The last user message is longer than {MAX_QUESTION_CHARS} characters."
            )
        # conversations.prompts.history_messages keeps tool steps only in complete pairs.
        history = [
            {"role": role, "content": text, **step}
            for (role, text), step in zip(turns[: asked[-1]], steps, strict=False)
            if step or (role in ("user", "assistant") and text.strip())
        ]
        return {"question": question, "history": history}


class AgentMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["assistant", "tool"])
    content = serializers.CharField(
        allow_null=True, help_text="null on an assistant message that calls tools."
    )
    tool_calls = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="An assistant message that called tools: `[{id, type: function, function: {name, arguments}}]`.",
    )
    tool_call_id = serializers.CharField(required=False, help_text="A tool message: the call it answers.")
    name = serializers.CharField(required=False, help_text="A tool message: the tool's name.")
    citations = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Extension, on the final answer: the passages it cites as [n] (index, sourceId, sourceName, "
        "snippet, url…; a tool's result cited has sourceType `tool`, toolName and toolArguments).",
    )


class AgentChatApi(TypingMindApiView):
    required_scopes = {"POST": "minds:chat"}
    not_found_message = AGENT_NOT_FOUND

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # TypingMind documents one message for every bad body; `details` says what exactly.
        if response.status_code == 400:
            response.data["userMessage"] = INVALID_REQUEST
        return response

    @extend_schema(
        operation_id="typingmind_agent_chat",
        tags=TAGS,
        description=(
            "Chat with an agent (a mind, by id or slug), statelessly: send the whole conversation, append the "
            "returned messages to continue. The last user message is the question, earlier user and assistant "
            "text and tool steps the history; image blocks are accepted and ignored. With an LLM configured the "
            "mind calls its enabled tools server-side and the response holds several messages: each assistant "
            "message with `tool_calls`, the `tool` results (`tool_call_id`, `name`), then the final answer. The "
            "answer comes from the mind's knowledge with the configured LLM, or extractively when none is "
            "configured, and keeps its citations on the message. 403 `{userMessage}` for a group-only agent the key's member "
            "is not allowed to use."
        ),
        parameters=[
            OpenApiParameter("agent_id", str, OpenApiParameter.PATH, description="A mind's id or slug.")
        ],
        request=AgentChatInputSerializer,
        responses={
            200: inline_serializer(
                "TypingMindAgentChatResponse", fields={"messages": AgentMessageSerializer(many=True)}
            ),
            **_errors(400, 401, 403, 404, 429, 502),
        },
    )
    def post(self, request, agent_id: str):
        try:
            mind = mind_get(principal=self.principal, mind_id=agent_id)
        except NotFound as exc:
            raise NotFound(AGENT_NOT_FOUND) from exc
        serializer = AgentChatInputSerializer(data=request.data if isinstance(request.data, dict) else None)
        serializer.is_valid(raise_exception=True)
        turn = serializer.validated_data["messages"]
        result = chat_complete(
            mind=mind,
            message=turn["question"],
            channel=Conversation.Channel.AGENT,
            member=self.principal.member,
            history=turn["history"],
        )
        citations = [citation.as_json() for citation in result.citations]
        final = {"role": "assistant", "content": result.content, "citations": citations}
        return Response({"messages": [*result.tool_messages, final]})
