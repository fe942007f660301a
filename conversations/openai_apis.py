"""OpenAI-compatible surface: `POST /api/v1/chat/completions` and `GET /api/v1/models`, so the official SDKs
work with `base_url=<server>/api/v1` and a `tr_live_` key.

A "model" is a mind (id or slug; TypingMind's `activatedCharacterID` also works). Citations travel in an
extension field, `citations`, on the message and on the final stream chunk.

Tools: the mind's own enabled tools run server-side inside the turn (conversations/tool_loop.py). Tools the client
passes (`tools`, `tool_choice`) are offered to the model too; a call to one ends the turn with `finish_reason:
"tool_calls"` and the `tool_calls` (streamed as deltas), and the client's follow-up (its assistant `tool_calls`
message and `role: "tool"` results after the question) continues the turn. Errors use OpenAI's shape
`{"error": {"message", "type", "param", "code"}}` with the statuses the SDKs map to their exception classes.
"""

import json
import re
import time
from collections.abc import Iterable, Iterator

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.api.errors import NotFound
from config.api.exception_handler import api_exception_handler
from config.api.views import WorkspaceApiView
from conversations.chat import (
    Token,
    TurnDone,
    TurnEvent,
    TurnFailed,
    TurnResult,
    TurnStarted,
    Usage,
    chat_complete,
    chat_stream,
)
from conversations.models import Conversation
from conversations.streaming import guarded, unbuffered_response
from minds.models import Mind
from minds.selectors import mind_get, minds_visible

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
}


def openai_error(status: int, message: str, code: str, param: str | None = None, headers=None) -> Response:
    body = {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error"),
            "param": param,
            "code": code,
        }
    }
    return Response(body, status=status, headers=headers)


class OpenAiApiView(WorkspaceApiView):
    """Same authentication, scopes and limits as every API view; only the error shape differs."""

    def handle_exception(self, exc):
        response = api_exception_handler(exc, self.get_exception_handler_context())
        if response is None:
            raise exc
        data = response.data or {}
        fields = (data.get("details") or {}).get("fields") or {}
        param = next(iter(fields), None)
        headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate")}
        return openai_error(
            response.status_code, data.get("message", "Error"), data.get("code", "error"), param, headers
        )


def _mind_for_model(principal, model: str) -> Mind | None:
    """The mind named as the model; None when the key cannot reach it (a group-only mind raises 403)."""
    try:
        return mind_get(principal=principal, mind_id=model)
    except NotFound:
        return None


ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# A client's system (or developer) messages are its instructions for the turn: they follow the mind's persona.
INSTRUCTION_ROLES = ("system", "developer")
MAX_LAST_MESSAGE_CHARS = 4000
# Earlier turns only feed the prompt's history; bounded so a huge one cannot cost seconds of CPU.
MAX_MESSAGE_CHARS = 32_000
MAX_MESSAGES_TOTAL_CHARS = 100_000
# Anthropic's legacy Text Completions body (TypingMind's "prompt", for Claude models): "\n\nHuman: …\n\nAssistant:".
CLAUDE_TURN = re.compile(r"(?:^\s*|\n\n)(Human|Assistant):")


def _message_text(message, index: int) -> tuple[str, str]:
    """(role, text) of one OpenAI message; content is a string, null, or a list of parts whose text parts count."""
    where = str(index)  # reported as messages.<index>… by the error envelope
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise serializers.ValidationError({where: [f"Each message needs a role: one of {', '.join(ROLES)}."]})
    content = message.get("content")
    if content is None or isinstance(content, str):
        return message["role"], content or ""
    if not isinstance(content, list):
        raise serializers.ValidationError({f"{where}.content": ["Content is a string or a list of parts."]})
    texts = []
    for part_index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise serializers.ValidationError(
                {f"{where}.content[{part_index}]": ["Each content part is an object with a type."]}
            )
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise serializers.ValidationError(
                    {f"{where}.content[{part_index}].text": ["A text part's text must be a string."]}
                )
            texts.append(part["text"])
    return message["role"], "\n".join(texts)


def _prompt_turns(prompt: str) -> list[tuple[str, str]]:
    """The turns of a Claude-style prompt. Text before the first `Human:` is the system prompt; the empty
    `Assistant:` that ends the prompt (where the model is to continue) is dropped. A prompt without any marker is
    one user message."""
    parts = CLAUDE_TURN.split(prompt)
    if len(parts) == 1:
        return [("user", prompt.strip())]
    turns = [("system", parts[0].strip())] if parts[0].strip() else []
    for speaker, text in zip(parts[1::2], parts[2::2], strict=True):
        turns.append(("user" if speaker == "Human" else "assistant", text.strip()))
    if turns and turns[-1] == ("assistant", ""):
        turns.pop()
    return turns


def _tool_step(message: dict) -> bool:
    return (message["role"] == "assistant" and bool(message.get("tool_calls"))) or message["role"] == "tool"


def _checked_turns(turns: list[dict], where: str) -> list[dict]:
    """The whole conversation's bounds (each message's own is checked where it is read). The question is the last
    message, a user message; or the last user message followed only by the client's tool steps (its assistant
    `tool_calls` and the `tool` results), which continue that turn."""
    if sum(len(t["content"]) for t in turns) > MAX_MESSAGES_TOTAL_CHARS:
        raise serializers.ValidationError(
            {where: [f"The messages together are limited to {MAX_MESSAGES_TOTAL_CHARS} characters."]}
        )
    end = len(turns)
    while end and _tool_step(turns[end - 1]):
        end -= 1
    if end < len(turns) and turns[end - 1 if end else 0].get("role") != "user":
        end = len(turns)  # tool steps not after a question: not a continuation
    role, text = (turns[end - 1]["role"], turns[end - 1]["content"]) if end else ("", "")
    if role != "user" or not text.strip():
        raise serializers.ValidationError({where: ["The last message must be a non-empty user message."]})
    if len(text) > MAX_LAST_MESSAGE_CHARS:
        raise serializers.ValidationError(
            {where: [f"The last message is longer than {MAX_LAST_MESSAGE_CHARS} characters."]}
        )
    return turns


def _tool_calls_of(message: dict, where: str) -> list[dict]:
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list) or len(calls) > MAX_TOOLS:
        raise serializers.ValidationError({f"{where}.tool_calls": [f"A list of at most {MAX_TOOLS} calls."]})
    checked = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call.get("id") if isinstance(call, dict) else None, str)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments", ""), str)
        ):
            raise serializers.ValidationError(
                {
                    f"{where}.tool_calls[{i}]": [
                        "Each call is {id, type: function, function: {name, arguments}}."
                    ]
                }
            )
        checked.append(
            {
                "id": call["id"][:64],
                "type": "function",
                "function": {"name": function["name"][:64], "arguments": function.get("arguments") or "{}"},
            }
        )
    return checked


def _with_tool_fields(turn: dict, message: dict, index: int) -> dict:
    where = str(index)
    if turn["role"] == "assistant":
        calls = _tool_calls_of(message, where)
        if calls:
            turn["tool_calls"] = calls
    elif turn["role"] == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise serializers.ValidationError(
                {f"{where}.tool_call_id": ["A tool message names the call it answers."]}
            )
        turn["tool_call_id"] = call_id[:64]
    return turn


MAX_TOOLS = 64
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _checked_tools(tools: list) -> list[dict]:
    """The client's tools as OpenAI function specs (only functions; others are refused)."""
    checked = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type", "function") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not FUNCTION_NAME.match(function["name"])
        ):
            raise serializers.ValidationError(
                {str(i): ["Each tool is {type: function, function: {name, description?, parameters?}}."]}
            )
        spec = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            spec["description"] = function["description"][:2000]
        if isinstance(function.get("parameters"), dict):
            spec["parameters"] = function["parameters"]
        checked.append({"type": "function", "function": spec})
    return checked


class ChatCompletionInputSerializer(serializers.Serializer):
    # Lenient on purpose: SDKs send many optional parameters (n, user, stream_options…) that do not apply here.
    model = serializers.CharField(max_length=120, required=False)
    activatedCharacterID = serializers.CharField(max_length=120, required=False)
    messages = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=200, required=False
    )
    prompt = serializers.CharField(
        max_length=MAX_MESSAGES_TOTAL_CHARS,
        required=False,
        trim_whitespace=False,
        help_text='Claude-style body ("\\n\\nHuman: …\\n\\nAssistant:"), used when `messages` is absent.',
    )
    stream = serializers.BooleanField(default=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    tools = serializers.ListField(
        child=serializers.JSONField(),
        max_length=MAX_TOOLS,
        required=False,
        help_text="The client's own functions, offered to the model beside the mind's tools.",
    )
    tool_choice = serializers.JSONField(required=False, help_text='"auto", "none", "required" or a function.')

    def validate_messages(self, messages: list) -> list[dict]:
        turns = []
        for index, message in enumerate(messages):
            role, text = _message_text(message, index)
            if len(text) > MAX_MESSAGE_CHARS:
                raise serializers.ValidationError(
                    {str(index): [f"A message is limited to {MAX_MESSAGE_CHARS} characters."]}
                )
            turns.append(_with_tool_fields({"role": role, "content": text}, message, index))
        return turns

    def validate_tools(self, tools: list) -> list[dict]:
        return _checked_tools(tools)

    def validate_tool_choice(self, choice):
        if choice in ("auto", "none", "required"):
            return choice
        function = choice.get("function") if isinstance(choice, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "function", "function": {"name": function["name"]}}
        raise serializers.ValidationError('"auto", "none", "required" or {type: function, function: {name}}.')

    def validate(self, attrs):
        if not attrs.get("model") and not attrs.get("activatedCharacterID"):
            raise serializers.ValidationError({"model": ["Name a mind (its id or slug) as the model."]})
        if "messages" in attrs:
            turns, where = attrs["messages"], "messages"
        elif "prompt" in attrs:
            turns = [{"role": role, "content": text} for role, text in _prompt_turns(attrs["prompt"])]
            where = "prompt"
        else:
            raise serializers.ValidationError({"messages": ["Send `messages` (or a Claude-style `prompt`)."]})
        attrs["turns"] = _checked_turns(turns, where)
        return attrs


OPENAI_ERROR_SCHEMA = inline_serializer("OpenAiError", fields={"error": serializers.DictField()})


class ChatCompletionsApi(OpenAiApiView):
    required_scopes = {"POST": "minds:chat"}

    @extend_schema(
        operation_id="openai_chat_completions",
        request=ChatCompletionInputSerializer,
        responses={
            200: inline_serializer(
                "ChatCompletion",
                fields={
                    "id": serializers.CharField(),
                    "object": serializers.CharField(),
                    "choices": serializers.ListField(child=serializers.DictField()),
                    "usage": serializers.DictField(),
                    "citations": serializers.ListField(child=serializers.DictField()),
                },
            ),
            # OpenAI's error shape, so a client (and the schema fuzzing) knows what a refusal looks like.
            **dict.fromkeys((400, 401, 403, 404, 429), OPENAI_ERROR_SCHEMA),
        },
        description=(
            "OpenAI-compatible chat (and TypingMind's deprecated `/chat/completions`). The mind is "
            "`activatedCharacterID` when given, else `model` (a mind's id or slug). `messages` (OpenAI) or, when "
            "absent, `prompt` (Claude-style `\\n\\nHuman: …\\n\\nAssistant:`). The last user message is the "
            "question and earlier user/assistant messages the history; `system` and `developer` messages are the "
            "turn's instructions, added after the mind's persona; `temperature` (0–2) replaces the mind's for this "
            "turn. Citations are in the `citations` extension field. The mind's tools run server-side; the "
            "client's `tools` (functions) and `tool_choice` are offered to the model too, and a call to one ends "
            'the answer with `finish_reason: "tool_calls"` and `message.tool_calls` (stream: `delta.tool_calls`); '
            "send the results back as `role: tool` messages after the assistant's `tool_calls` to continue."
        ),
    )
    def post(self, request):
        serializer = ChatCompletionInputSerializer(
            data=request.data if isinstance(request.data, dict) else {}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # TypingMind sends its own model name ("gpt-4") beside the character: the character names the mind.
        model = data.get("activatedCharacterID") or data["model"]
        mind = _mind_for_model(self.principal, model)
        if mind is None:
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "model_not_found",
                "model",
            )
        turns = data["turns"]
        asked = max(i for i, t in enumerate(turns) if t["role"] == "user")
        history = [
            t
            for t in turns[:asked]
            if (t["role"] in ("user", "assistant") and t["content"])
            or t.get("tool_calls")
            or t["role"] == "tool"
        ]
        instructions = "\n\n".join(
            t["content"].strip() for t in turns if t["role"] in INSTRUCTION_ROLES and t["content"].strip()
        )
        # tool_choice "none": the client's tools are not offered (the mind's own still are).
        client_tools = [] if data.get("tool_choice") == "none" else data.get("tools") or []
        kwargs = {
            "mind": mind,
            "message": turns[asked]["content"],
            "channel": Conversation.Channel.OPENAI,
            "member": self.principal.member,
            "history": history,
            "instructions": instructions,
            "temperature": data.get("temperature"),
            "client_tools": client_tools,
            "tool_choice": data.get("tool_choice") if client_tools else None,
            "continuation": [t for t in turns[asked + 1 :] if _tool_step(t)],
        }
        if data["stream"]:
            return unbuffered_response(_chunks(chat_stream(**kwargs), mind), "text/event-stream")
        # A provider failure raises UpstreamUnavailable: handle_exception gives it OpenAI's shape (502 api_error).
        return Response(_completion(chat_complete(**kwargs), mind))


def _usage(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _citations(result: TurnResult) -> list[dict]:
    return [c.as_json() for c in result.citations]


def _completion(result: TurnResult, mind: Mind) -> dict:
    message = {"role": "assistant", "content": result.content, "citations": _citations(result)}
    if result.tool_calls:
        message.update(content=result.content or None, tool_calls=list(result.tool_calls))
    return {
        "id": f"chatcmpl-{result.message_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": mind.slug,
        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason}],
        "usage": _usage(result.usage),
        "citations": _citations(result),
        "conversation_id": result.conversation_id,
        "followups": list(result.followups),
        # Extension: the mind's own tool steps, run server-side inside the turn (not for the client to run).
        **({"tool_messages": list(result.tool_messages)} if result.tool_messages else {}),
    }


def _chunks(events: Iterable[TurnEvent], mind: Mind) -> Iterator[bytes]:
    created = int(time.time())
    # The answer's message does not exist before the stream ends, so the chunks carry the question's id.
    completion_id = "chatcmpl-pending"

    def chunk(delta: dict, finish=None, **extra) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": mind.slug,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

    # guarded: a failure mid-stream ends with an error chunk and [DONE] rather than a cut connection.
    for event in guarded(events):
        match event:
            case TurnStarted():
                completion_id = f"chatcmpl-{event.message_id}"
                yield chunk({"role": "assistant", "content": ""})
            case Token():
                yield chunk({"content": event.text})
            case TurnFailed():
                error = {
                    "error": {
                        "message": event.message,
                        "type": "api_error",
                        "param": None,
                        "code": event.code,
                    }
                }
                yield f"data: {json.dumps(error)}\n\n".encode()
                break
            case TurnDone(result=result):
                for index, call in enumerate(result.tool_calls):
                    # OpenAI's deltas: the id and name first, then the arguments.
                    head = {"index": index, "id": call["id"], "type": "function"}
                    yield chunk(
                        {
                            "tool_calls": [
                                {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                            ]
                        }
                    )
                    yield chunk(
                        {
                            "tool_calls": [
                                {"index": index, "function": {"arguments": call["function"]["arguments"]}}
                            ]
                        }
                    )
                yield chunk(
                    {},
                    result.finish_reason,
                    usage=_usage(result.usage),
                    citations=_citations(result),
                    conversation_id=result.conversation_id,
                )
    yield b"data: [DONE]\n\n"


class ModelListApi(OpenAiApiView):
    required_scopes = {"GET": "minds:chat"}

    @extend_schema(
        operation_id="openai_models",
        responses={
            200: inline_serializer(
                "ModelList",
                fields={
                    "object": serializers.CharField(),
                    "data": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request):
        minds = minds_visible(principal=self.principal).order_by("name")
        return Response(
            {
                "object": "list",
                "data": [
                    {
                        "id": m.slug,
                        "object": "model",
                        "created": int(m.created_at.timestamp()),
                        "owned_by": self.principal.workspace.name,
                        "name": m.name,
                        "mind_id": m.id,
                    }
                    for m in minds
                ],
            }
        )
