"""Conversation shapes on the wire, and the native API's rendering of a chat turn (JSON, and the events that
streaming.py writes as Server-Sent Events or JSON Lines)."""

from rest_framework import serializers

from config.api.pagination import MAX_OFFSET
from config.api.serializers import StrictSerializer, iso
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
    Usage,
)
from conversations.models import Conversation, Message

MAX_UNIX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


def message_data(message: Message) -> dict:
    data = {
        "id": message.id,
        "role": message.role,
        "turn": message.turn,
        "content": message.content,
        "status": message.status,
        "createdAt": iso(message.created_at),
    }
    if message.step:
        data["step"] = message.step
    if message.role == Message.Role.ASSISTANT and message.tool_calls:
        data["toolCalls"] = message.tool_calls
    if message.role == Message.Role.TOOL:
        data.update(
            toolCallId=message.tool_call_id,
            toolName=message.tool_name,
            citations=message.citations,
            latencyMs=message.latency_ms,
        )
    elif message.role == Message.Role.ASSISTANT:
        data.update(
            citations=message.citations,
            followups=message.followups,
            model=message.model or None,
            usage={"promptTokens": message.prompt_tokens, "completionTokens": message.completion_tokens},
            latencyMs=message.latency_ms,
            feedback={"rating": message.feedback_rating, "comment": message.feedback_comment}
            if message.feedback_rating
            else None,
        )
    return data


def usage_data(usage: Usage) -> dict:
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }


def answer_data(result: TurnResult) -> dict:
    """The answer of `POST /minds/{id}/chat` as JSON; the stream's `done` event adds the time to first token."""
    return {
        "conversationId": result.conversation_id,
        "message": {
            "id": result.message_id,
            "role": Message.Role.ASSISTANT,
            "turn": result.turn,
            "status": Message.Status.COMPLETE,
            "content": result.content,
            "citations": [c.as_json() for c in result.citations],
            "createdAt": iso(result.created_at),
        },
        "followups": list(result.followups),
        "usage": usage_data(result.usage),
        "latencyMs": result.latency_ms,
        **tool_steps_data(result),
    }


def tool_steps_data(result: TurnResult) -> dict:
    """The turn's tool steps, only when it had some (a turn without tools keeps its shape): `toolMessages` (the
    assistant's calls and the results, OpenAI's shape), `toolLimit` when a bound was hit."""
    data = {}
    if result.tool_messages:
        data["toolMessages"] = list(result.tool_messages)
    if result.tool_limit:
        data["toolLimit"] = result.tool_limit
    return data


def tool_call_data(event: ToolCalled) -> dict:
    return {
        "id": event.call_id,
        "name": event.name,
        "arguments": event.arguments,
        "messageId": event.message_id,
    }


def tool_result_data(event: ToolReturned) -> dict:
    return {
        "id": event.call_id,
        "name": event.name,
        "content": event.content,
        "isError": event.is_error,
        "durationMs": event.duration_ms,
        "messageId": event.message_id,
        "citations": [c.as_json() for c in event.citations],
    }


def event_data(event: TurnEvent) -> tuple[str, dict]:
    """A chat event's name and payload in the native stream."""
    match event:
        case TurnStarted():
            return "conversation", {"conversationId": event.conversation_id, "messageId": event.message_id}
        case Token():
            return "token", {"content": event.text}
        case CitationFound():
            return "citation", event.citation.as_json()
        case ToolCalled():
            return "tool_call", tool_call_data(event)
        case ToolReturned():
            return "tool_result", tool_result_data(event)
        case TurnFailed():
            return "error", {"code": event.code, "message": event.message}
        case TurnDone():
            return "done", {
                **answer_data(event.result),
                "timeToFirstTokenMs": event.result.time_to_first_token_ms,
            }
    raise TypeError(f"not a chat event: {event!r}")


def conversation_data(conversation: Conversation, *, with_messages: bool = False) -> dict:
    messages = list(conversation.messages.all())
    data = {
        "id": conversation.id,
        "mindId": conversation.mind_id,
        "title": conversation.title,
        "channel": conversation.channel,
        "visitorEmail": conversation.visitor_email or None,
        "messageCount": len(messages),
        "createdAt": iso(conversation.created_at),
        "updatedAt": iso(conversation.updated_at),
    }
    if with_messages:
        data["messages"] = [message_data(m) for m in messages]
    return data


def chatlog_data(conversation: Conversation) -> dict:
    messages = list(conversation.messages.all())
    text = "\n\n".join(
        f"{'User' if m.role == Message.Role.USER else 'Assistant'}: {m.content}"
        for m in messages
        if m.content and m.role != Message.Role.TOOL  # a tool's result is not what either side said
    )
    models = sorted({m.model for m in messages if m.model})
    return {
        "chatID": conversation.id,
        "chatTitle": conversation.title,
        "createdAt": iso(conversation.created_at),
        # Listed by turn, the last message is not always the newest: concurrent turns finish in any order.
        "recordedAt": iso(max(m.created_at for m in messages) if messages else conversation.updated_at),
        "conversationText": text,
        "userID": conversation.member_id or conversation.visitor_id or None,
        "model": models[-1] if models else None,
        "agents": [conversation.mind.name],
        "plugins": [],
        "channel": conversation.channel,
    }


class ChatToolSerializer(StrictSerializer):
    id = serializers.CharField(min_length=1, max_length=100)
    checked = serializers.BooleanField()


class ChatInputSerializer(StrictSerializer):
    message = serializers.CharField(min_length=1, max_length=4000, trim_whitespace=True)
    conversationId = serializers.CharField(max_length=40, required=False, allow_null=True)
    stream = serializers.BooleanField(default=False)
    format = serializers.ChoiceField(choices=["json", "sse", "jsonl"], required=False)
    language = serializers.CharField(max_length=40, required=False)
    tools = ChatToolSerializer(
        many=True,
        required=False,
        allow_null=True,
        max_length=50,
        help_text="Switches the mind's tools on or off for this chat, by id; tools not named keep their setting.",
    )


class ConversationListQuerySerializer(serializers.Serializer):
    startAfter = serializers.CharField(max_length=40, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class FeedbackInputSerializer(StrictSerializer):
    rating = serializers.ChoiceField(choices=["up", "down"])
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ChatlogQuerySerializer(serializers.Serializer):
    # TypingMind types the times as `number`: fractions of a second are accepted (NaN and infinities are not).
    startUnixTime = serializers.FloatField(
        min_value=0, max_value=MAX_UNIX_TIME, required=False, help_text="Unix time (seconds), inclusive."
    )
    endUnixTime = serializers.FloatField(
        min_value=0, max_value=MAX_UNIX_TIME, required=False, help_text="Unix time (seconds), inclusive."
    )
    userID = serializers.CharField(max_length=64, required=False)
    # TypingMind returns the last 100 matching conversations by default.
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


class MessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    role = serializers.CharField()
    turn = serializers.IntegerField(
        help_text="A question and its answer share a turn; messages list by turn."
    )
    content = serializers.CharField()
    status = serializers.CharField()
    createdAt = serializers.DateTimeField()
    citations = serializers.ListField(child=serializers.DictField(), required=False)
    followups = serializers.ListField(child=serializers.CharField(), required=False)
    step = serializers.IntegerField(
        required=False,
        help_text="Order within the turn: the question 0, tool calls and results, the answer last.",
    )
    toolCalls = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="An assistant message that calls tools: `[{id, type: function, function: {name, arguments}}]`.",
    )
    toolCallId = serializers.CharField(required=False, help_text="A tool message: the call it answers.")
    toolName = serializers.CharField(required=False, help_text="A tool message: the tool's name.")


class ConversationSerializer(serializers.Serializer):
    id = serializers.CharField()
    mindId = serializers.CharField()
    title = serializers.CharField()
    channel = serializers.CharField()
    visitorEmail = serializers.CharField(allow_null=True)
    messageCount = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    messages = MessageSerializer(many=True, required=False)


class ChatlogSerializer(serializers.Serializer):
    """Documents `chatlog_data`: TypingMind's Chatlog, plus `channel` (where the chat happened)."""

    chatID = serializers.CharField()
    chatTitle = serializers.CharField()
    createdAt = serializers.DateTimeField()
    recordedAt = serializers.DateTimeField()
    conversationText = serializers.CharField(help_text='"User: …\\n\\nAssistant: …"')
    userID = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    agents = serializers.ListField(child=serializers.CharField())
    plugins = serializers.ListField(child=serializers.CharField())
    channel = serializers.ChoiceField(choices=Conversation.Channel.choices)
