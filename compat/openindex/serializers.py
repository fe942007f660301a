"""OpenIndex's wire shapes for agents and chats: input checks, and the rendering of minds, conversations and chat
turns as OpenIndex's `{ok: …}` objects (docs/openindex.md has the field mapping and the JSON Lines schema).

Input errors are `ValidationFailed` with OpenIndex's wording, `invalid <field>`: exactly "invalid name" and
"invalid description" (the texts OpenIndex documents), "invalid <field>: <reason>" for the rest.
"""

import json
from collections.abc import Iterable, Iterator

from rest_framework import serializers

from compat.openindex.base import epoch_ms
from compat.openindex.chat_selectors import chat_agent_id
from compat.openindex.services import ChatTarget
from config.api.errors import ValidationFailed
from config.api.serializers import StrictSerializer
from conversations.chat import (
    CitationFound,
    Token,
    ToolCalled,
    ToolReturned,
    TurnDone,
    TurnEvent,
    TurnFailed,
    TurnResult,
    TurnStarted,
)
from conversations.citations import Citation
from conversations.models import Conversation, Message
from minds.models import Mind
from minds.services import MindChanges

# The last millisecond a datetime can hold (9999-12-31T23:59:59.999Z).
MAX_EPOCH_MS = 253_402_300_799_999
MAX_MESSAGE_CHARS = 4000
# Fields OpenIndex names as is in its error texts; the rest say why they are invalid.
BARE_ERRORS = {"name", "description"}
PRIVACY = ("public", "private")
# OpenIndex's text for a reply the model could not give (500, or the stream's error line).
LLM_FAILED = "Error running the language model."


def _first_error(errors, prefix: str = "") -> tuple[str, str]:
    """The first failing field as a dotted path (`params.topP`, `tools[0].id`) and its first message."""
    if isinstance(errors, dict):
        key, value = next(iter(errors.items()))
        if key == "non_field_errors":
            return _first_error(value, prefix)
        name = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
        return _first_error(value, name)
    if isinstance(errors, list):
        for index, item in enumerate(errors):
            if not isinstance(item, (dict, list)):
                return prefix, str(item)
            if item:  # a list of objects (many=True) has an empty entry for each valid one
                return _first_error(item, f"{prefix}[{index}]")
    return prefix, str(errors)


def openindex_body(serializer_class, request) -> dict:
    """The validated JSON body, or ValidationFailed("invalid <field>…") for the first field that fails."""
    if not isinstance(request.data, dict):
        raise ValidationFailed("invalid request: the body must be a JSON object.")
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        field, reason = _first_error(serializer.errors)
        field = field or "request"
        message = f"invalid {field}" if field in BARE_ERRORS else f"invalid {field}: {reason}"
        raise ValidationFailed(message, details={"fields": {field: [reason]}})
    return serializer.validated_data


def openindex_query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        field, reason = _first_error(serializer.errors)
        raise ValidationFailed(f"invalid {field}: {reason}", details={"fields": {field: [reason]}})
    return serializer.validated_data


def _http_url(value: str) -> str:
    if value and not value.lower().startswith(("https://", "http://")):
        raise serializers.ValidationError("Only http(s) URLs are allowed.")
    return value


# --- Agents ---


class OpenIndexToolSerializer(StrictSerializer):
    id = serializers.CharField(min_length=1, max_length=100)
    checked = serializers.BooleanField()


class OpenIndexParamsSerializer(StrictSerializer):
    # null leaves the value as it is (OpenIndex clients send every key of `params`).
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    topP = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    frequencePenalty = serializers.FloatField(min_value=-2, max_value=2, required=False, allow_null=True)
    presencePenalty = serializers.FloatField(min_value=-2, max_value=2, required=False, allow_null=True)


class OpenIndexAgentInputSerializer(StrictSerializer):
    """`POST /api/agents`. Every field may be null, which means "not given": an update changes only what is given."""

    id = serializers.CharField(max_length=120, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(min_length=1, max_length=100, required=False, allow_null=True)
    description = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    image = serializers.CharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    privacy = serializers.ChoiceField(choices=PRIVACY, required=False, allow_null=True)
    isAutonomous = serializers.BooleanField(required=False, allow_null=True)
    prompt = serializers.CharField(max_length=20000, required=False, allow_null=True, allow_blank=True)
    welcome = serializers.CharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    model = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    params = OpenIndexParamsSerializer(required=False, allow_null=True)
    tools = OpenIndexToolSerializer(many=True, required=False, allow_null=True, max_length=50)
    collections = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=120),
        max_length=100,
        required=False,
        allow_null=True,
    )
    # Read-only fields of an Agent, sent back by a client that edits what GET /api/agents gave it: ignored.
    slug = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    namespace = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    userId = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    createdAt = serializers.IntegerField(required=False, allow_null=True)
    updatedAt = serializers.IntegerField(required=False, allow_null=True)
    status = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    def validate_name(self, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise serializers.ValidationError("A name is required.")
        return value.strip() if value is not None else None

    def validate_image(self, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None


def agent_changes(data: dict) -> MindChanges:
    """The validated Agent fields as the mind's (docs/openindex.md: field mapping)."""
    params = data.get("params") or {}
    tools = data.get("tools")
    privacy = data.get("privacy")
    return MindChanges(
        name=data.get("name"),
        headline=data.get("description"),
        avatar_url=data.get("image"),
        is_published=None if privacy is None else privacy == "public",
        system_prompt=data.get("prompt"),
        welcome_message=data.get("welcome"),
        model=data.get("model"),
        temperature=params.get("temperature"),
        top_p=params.get("topP"),
        frequency_penalty=params.get("frequencePenalty"),
        presence_penalty=params.get("presencePenalty"),
        agent_tools=None if tools is None else [{"id": t["id"], "checked": t["checked"]} for t in tools],
        is_autonomous=data.get("isAutonomous"),
    )


AGENT_STATUS = "active"


def agent_data(mind: Mind) -> dict:
    """A mind as an OpenIndex Agent; `collections` needs `prefetch_related("collections")` for a list."""
    return {
        "id": mind.id,
        "slug": mind.slug,
        "name": mind.name,
        "description": mind.headline,
        "image": mind.avatar_url,
        "privacy": "public" if mind.is_published else "private",
        # Minds belong to a workspace, not to one user: the workspace is both the namespace and the author.
        "namespace": mind.workspace_id,
        "prompt": mind.system_prompt,
        "isAutonomous": mind.is_autonomous,
        "welcome": mind.welcome_message,
        "model": mind.model,
        "params": {
            "temperature": mind.temperature,
            "topP": mind.top_p,
            "frequencePenalty": mind.frequency_penalty,
            "presencePenalty": mind.presence_penalty,
        },
        "tools": [{"id": t.get("id"), "checked": bool(t.get("checked"))} for t in mind.agent_tools or []],
        "userId": mind.workspace_id,
        "createdAt": epoch_ms(mind.created_at),
        "updatedAt": epoch_ms(mind.updated_at),
        "status": AGENT_STATUS,
        "collections": [c.id for c in mind.collections.all()],
    }


# --- Chat ---


class OpenIndexChatInputSerializer(StrictSerializer):
    chatId = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
    agentId = serializers.CharField(max_length=120, required=False, allow_null=True, allow_blank=True)
    collectionId = serializers.CharField(max_length=120, required=False, allow_null=True, allow_blank=True)
    message = serializers.CharField(min_length=1, max_length=MAX_MESSAGE_CHARS, trim_whitespace=True)
    streaming = serializers.BooleanField(default=False)
    # The agent's tools switched on or off for this chat; `model` is accepted and not used (docs/openindex.md).
    tools = OpenIndexToolSerializer(many=True, required=False, allow_null=True, max_length=50)
    model = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    lastUploadedFile = serializers.CharField(
        max_length=2000, required=False, allow_null=True, allow_blank=True
    )
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$", required=False, allow_null=True, allow_blank=True
    )


class OpenIndexChatListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    start_after = serializers.IntegerField(min_value=0, max_value=MAX_EPOCH_MS, required=False)
    agent_id = serializers.CharField(max_length=120, required=False)
    collection_id = serializers.CharField(max_length=120, required=False)
    include_empty = serializers.BooleanField(default=False)


def source_label(citation: dict | Citation) -> str:
    """What `sources` lists for a citation: the source's URL, else its name."""
    if isinstance(citation, Citation):
        citation = citation.as_json()
    return citation.get("url") or citation.get("sourceName") or ""


def _sources(citations: Iterable[dict]) -> list[str]:
    return list(dict.fromkeys(label for label in map(source_label, citations) if label))


def _answer_parts(citations: list[dict], followups: Iterable[str]) -> dict:
    return {
        "sources": _sources(citations),
        "followup": {"questions": list(followups)},
        "context": {"citations": citations},
    }


def answer_data(result: TurnResult, target: ChatTarget) -> dict:
    """The answer object of `POST /api/chat` (without `ok`)."""
    return {
        "message": result.content,
        "error": None,
        **_answer_parts([c.as_json() for c in result.citations], result.followups),
        "chatId": result.conversation_id,
        "agentId": target.agent_id,
        "collectionId": target.collection_id,
    }


def _line(payload: dict) -> bytes:
    return (json.dumps(payload, ensure_ascii=False) + "\n").encode()


def chat_lines(events: Iterable[TurnEvent], target: ChatTarget) -> Iterator[bytes]:
    """The JSON Lines stream of `POST /api/chat {streaming: true}`: `start`, `token`…, `source` (after the token
    that first cites it), then `done` (the whole answer object) or `error` (`{ok: false, error}`).

    `events` come through conversations.streaming.guarded, so a failure mid-answer (the database lost, a bug)
    arrives as TurnFailed and ends the stream with an `error` line rather than a cut.
    """
    for event in events:
        match event:
            case TurnStarted():
                yield _line(
                    {
                        "type": "start",
                        "chatId": event.conversation_id,
                        "agentId": target.agent_id,
                        "collectionId": target.collection_id,
                    }
                )
            case Token():
                yield _line({"type": "token", "token": event.text})
            case CitationFound():
                citation = event.citation.as_json()
                yield _line({"type": "source", "source": source_label(citation), "citation": citation})
            case ToolCalled():
                yield _line(
                    {
                        "type": "tool_call",
                        "id": event.call_id,
                        "name": event.name,
                        "arguments": event.arguments,
                    }
                )
            case ToolReturned():
                yield _line(
                    {
                        "type": "tool_result",
                        "id": event.call_id,
                        "name": event.name,
                        "content": event.content,
                        "isError": event.is_error,
                    }
                )
            case TurnFailed():
                # OpenIndex's own words for a failed model; any other failure says what it is.
                error = LLM_FAILED if event.code == "llm_unavailable" else event.message
                yield _line({"type": "error", "ok": False, "error": error})
            case TurnDone():
                yield _line({"type": "done", "ok": True, **answer_data(event.result, target)})


def _chat_status(messages: list[Message]) -> str:
    if not messages:
        return "empty"
    last = messages[-1]
    if last.role in (Message.Role.USER, Message.Role.TOOL) or (
        last.role == Message.Role.ASSISTANT and last.tool_calls and last.status == Message.Status.COMPLETE
    ):
        # The model failed on the last question (maybe after calling tools): sending it again continues the chat.
        return "unanswered"
    return "interrupted" if last.status == Message.Status.INTERRUPTED else "answered"


def chat_message_data(message: Message) -> dict:
    data = {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "createdAt": epoch_ms(message.created_at),
    }
    if message.role == Message.Role.ASSISTANT and message.tool_calls:
        data["toolCalls"] = message.tool_calls
    elif message.role == Message.Role.TOOL:
        data.update(toolCallId=message.tool_call_id, name=message.tool_name)
    elif message.role == Message.Role.ASSISTANT:
        data.update(_answer_parts(list(message.citations or []), message.followups or []))
    return data


def chat_data(conversation: Conversation) -> dict:
    """A conversation as an OpenIndex chat; needs `select_related("mind")` and its messages prefetched in order."""
    messages = list(conversation.messages.all())
    return {
        "id": conversation.id,
        "userId": conversation.member_id,
        "createdAt": epoch_ms(conversation.created_at),
        "updatedAt": epoch_ms(conversation.updated_at),
        "agentId": chat_agent_id(conversation),
        "collectionId": conversation.collection_id,
        "status": _chat_status(messages),
        "current": [chat_message_data(m) for m in messages],
        "auto": {},
        "tools": [],
    }


# --- OpenAPI shapes ---


class OpenIndexErrorSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=False)
    error = serializers.CharField()


class OpenIndexAgentParamsOutSerializer(serializers.Serializer):
    temperature = serializers.FloatField()
    topP = serializers.FloatField(allow_null=True)
    frequencePenalty = serializers.FloatField(allow_null=True)
    presencePenalty = serializers.FloatField(allow_null=True)


class OpenIndexToolOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    checked = serializers.BooleanField()


class OpenIndexAgentSerializer(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    image = serializers.CharField()
    privacy = serializers.ChoiceField(choices=PRIVACY)
    namespace = serializers.CharField()
    prompt = serializers.CharField()
    isAutonomous = serializers.BooleanField()
    welcome = serializers.CharField()
    model = serializers.CharField()
    params = OpenIndexAgentParamsOutSerializer()
    tools = OpenIndexToolOutSerializer(many=True)
    userId = serializers.CharField()
    createdAt = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    updatedAt = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    status = serializers.CharField()
    collections = serializers.ListField(child=serializers.CharField())


class OpenIndexChatAnswerSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    sources = serializers.ListField(
        child=serializers.CharField(), help_text="The cited sources' URLs or names."
    )
    followup = serializers.DictField(help_text="`{questions: [string]}`: suggested next questions.")
    context = serializers.DictField(
        help_text="`{citations: [{index, sourceId, sourceName, sourceType, chunkId, snippet, url, page, "
        "startSeconds, score}]}`."
    )
    chatId = serializers.CharField()
    agentId = serializers.CharField(allow_null=True)
    collectionId = serializers.CharField(allow_null=True)


class OpenIndexChatSerializer(serializers.Serializer):
    id = serializers.CharField()
    userId = serializers.CharField(allow_null=True)
    createdAt = serializers.IntegerField()
    updatedAt = serializers.IntegerField()
    agentId = serializers.CharField(allow_null=True)
    collectionId = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["empty", "answered", "unanswered", "interrupted"])
    current = serializers.ListField(child=serializers.DictField())
    auto = serializers.DictField()
    tools = OpenIndexToolOutSerializer(many=True)
