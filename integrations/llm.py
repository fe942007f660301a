"""The language model, through the `openai` client: any OpenAI-compatible server via OPENAI_BASE_URL.

Configured when OPENAI_API_KEY or OPENAI_BASE_URL is set; without either, chat answers extractively (offline).
Every provider failure (timeout, connection, HTTP error) becomes LlmUnavailable, which the chat turns into a clean
`llm_unavailable` error.
"""

import functools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


class LlmUnavailable(Exception):
    pass


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ToolCall:
    """One function call the model asked for, assembled from the stream's deltas."""

    id: str
    name: str
    arguments: str  # a JSON string, as the model wrote it (possibly invalid: the tool reports that)

    def as_openai(self) -> dict:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class _ToolCallDeltas:
    """Tool calls arrive in pieces keyed by index: the id and name first, the arguments a few characters at a
    time. Some servers send a whole call in one delta, or omit the index (then each new id is a new call)."""

    def __init__(self):
        self.parts: dict[int, dict] = {}

    def feed(self, deltas) -> None:
        for delta in deltas:
            index = getattr(delta, "index", None)
            if index is None:
                index = len(self.parts) if getattr(delta, "id", None) or not self.parts else max(self.parts)
            part = self.parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if getattr(delta, "id", None):
                part["id"] = delta.id
            function = getattr(delta, "function", None)
            if function is not None:
                if getattr(function, "name", None):
                    part["name"] += function.name
                if getattr(function, "arguments", None):
                    part["arguments"] += function.arguments

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=part["id"] or f"call_{index}", name=part["name"], arguments=part["arguments"] or "{}")
            for index, part in sorted(self.parts.items())
            if part["name"]
        ]


def is_configured() -> bool:
    return bool(settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)


@functools.cache
def _tls_context():
    """The CA bundle, loaded once per process. A client made without one loads it afresh: ~50 ms of CPU, twice per
    chat turn (the answer and the follow-ups), which was most of a turn's server CPU under load
    (bench/mixed_load.py). Same rules as httpx's default (SSL_CERT_FILE / SSL_CERT_DIR, else certifi)."""
    import httpx

    return httpx.create_ssl_context()


def client(timeout=None):
    # Imported on first use: the openai package costs ~0.3 s to import, which offline deployments never need.
    from openai import DefaultHttpxClient, OpenAI

    return OpenAI(
        api_key=settings.OPENAI_API_KEY or "not-needed",
        base_url=settings.OPENAI_BASE_URL,
        timeout=timeout or settings.LLM_TIMEOUT_SECONDS,
        max_retries=1,
        http_client=DefaultHttpxClient(verify=_tls_context()),
    )


def _stream_timeout():
    """LLM_TIMEOUT_SECONDS to connect and write; a stream that sends nothing for LLM_STREAM_STALL_SECONDS (between
    two chunks, or before the first; at most LLM_TIMEOUT_SECONDS) is given up as stalled."""
    import httpx

    overall = settings.LLM_TIMEOUT_SECONDS
    return httpx.Timeout(overall, read=min(overall, settings.LLM_STREAM_STALL_SECONDS))


def _errors():
    import httpx
    import openai  # on first use, as in client()

    # Reading a stream is not wrapped by the client: a stalled or dropped stream raises httpx's own errors.
    return (openai.APIError, openai.APITimeoutError, openai.APIConnectionError, httpx.TransportError)


def stream_chat(
    messages: list[dict],
    *,
    model: str,
    temperature: float,
    usage: Usage,
    top_p: float | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    tools: list[dict] | None = None,
    tool_choice=None,
    tool_calls: list[ToolCall] | None = None,
) -> Iterator[str]:
    """Yields the answer's text pieces; fills `usage` when the server reports it. Sampling parameters left at
    None are not sent, so the provider's defaults apply.

    `tools` (OpenAI function specs) are offered to the model; the calls it makes are assembled from the stream's
    deltas and appended to `tool_calls` once the stream ends (any text it said before calling is yielded as
    usual). Without `tools` the request is exactly the plain chat request."""
    optional = {
        name: value
        for name, value in (
            ("top_p", top_p),
            ("frequency_penalty", frequency_penalty),
            ("presence_penalty", presence_penalty),
        )
        if value is not None
    }
    if tools:
        optional["tools"] = tools
        if tool_choice is not None:
            optional["tool_choice"] = tool_choice
    deltas = _ToolCallDeltas()
    try:
        stream = client(_stream_timeout()).chat.completions.create(
            model=model,
            messages=messages,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            **optional,
        )
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage.prompt_tokens = chunk.usage.prompt_tokens or 0
                usage.completion_tokens = chunk.usage.completion_tokens or 0
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is None:
                    continue
                if getattr(delta, "tool_calls", None):
                    deltas.feed(delta.tool_calls)
                piece = getattr(delta, "content", None)
                if piece:
                    yield piece
    except _errors() as exc:
        logger.warning("LLM call failed: %s", exc.__class__.__name__)
        raise LlmUnavailable(str(exc)) from exc
    if tool_calls is not None:
        tool_calls.extend(deltas.calls())


def complete(
    messages: list[dict], *, model: str | None = None, temperature: float = 0.2, timeout: float = 20
) -> str:
    try:
        response = client(timeout).chat.completions.create(
            model=model or settings.LLM_MODEL, messages=messages, temperature=temperature
        )
    except _errors() as exc:
        raise LlmUnavailable(str(exc)) from exc
    return (response.choices[0].message.content or "").strip() if response.choices else ""


def _json_list(text: str) -> list[str]:
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return [line.strip("-•* 0123456789.").strip() for line in text.splitlines() if line.strip()]
    try:
        items = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return []
    return [str(item).strip() for item in items if str(item).strip()]


def expand_query(query: str) -> list[str]:
    """Two rewrites and a short hypothetical answer, for `smart` search; [] on any failure."""
    prompt = (
        "Rewrite the search query in two different ways and write one short hypothetical passage that would answer "
        f"it. Reply with a JSON array of three strings only.\n\nQuery: {query}"
    )
    try:
        return _json_list(complete([{"role": "user", "content": prompt}], timeout=10))[:3]
    except LlmUnavailable:
        return []


def standalone_question(question: str, history: list[dict]) -> str:
    """A follow-up ("and his brother?") rewritten into a question that stands alone, for retrieval."""
    turns = "\n".join(f"{m['role']}: {m['content'][:500]}" for m in history[-6:])
    prompt = (
        "Given the conversation, rewrite the last user question so it can be understood without the conversation. "
        f"Reply with the question only.\n\nConversation:\n{turns}\n\nLast question: {question}"
    )
    try:
        rewritten = complete([{"role": "user", "content": prompt}], timeout=10)
    except LlmUnavailable:
        return question
    return rewritten.strip().strip('"') or question


def suggest_followups(question: str, answer: str, language: str) -> list[str]:
    prompt = (
        f"Suggest three short follow-up questions (in {language}) a user might ask next. Reply with a JSON array of "
        f"strings only.\n\nQuestion: {question}\n\nAnswer: {answer[:2000]}"
    )
    try:
        return [
            q for q in _json_list(complete([{"role": "user", "content": prompt}], timeout=10)) if len(q) < 200
        ][:3]
    except LlmUnavailable:
        return []


def speak(text: str, *, voice: str, speed: float, timeout: float = 30) -> bytes:
    """MP3 of `text` read aloud by the configured OpenAI-compatible speech endpoint."""
    try:
        audio = client(timeout).audio.speech.create(
            model=settings.TTS_MODEL, voice=voice, input=text, speed=speed
        )
        return audio.read()
    except _errors() as exc:
        logger.warning("Speech call failed: %s", exc.__class__.__name__)
        raise LlmUnavailable(str(exc)) from exc
