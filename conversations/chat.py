"""The chat service: one generator of events used by the API (JSON, SSE, JSON Lines), the OpenAI-compatible
endpoint and the public page.

Order of events: `conversation` → `token`… (with a `citation` the first time each passage is cited) → `done`,
or `error` (the user's message is saved either way). Closing the generator early (a client that disconnects)
saves what was produced as an `interrupted` answer, so the conversation stays consistent.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from config.api.errors import NotFound, UpstreamUnavailable
from config.api.serializers import iso
from conversations import extractive
from conversations.citations import MarkerFilter
from conversations.models import Conversation, Message
from conversations.prompts import build_messages
from integrations import llm
from knowledge.search import SearchHit, search_chunks
from minds.models import Mind

logger = logging.getLogger(__name__)

RETRIEVE = 6
# A passage must be at least this similar to the question to be used at all; below it the mind says it does
# not know rather than answer from loosely related text.
MIN_SIMILARITY = 0.25
SNIPPET_CHARS = 240
TITLE_CHARS = 80


@dataclass
class ChatEvent:
    type: str  # conversation | token | citation | done | error
    data: dict


def citation_data(index: int, hit: SearchHit) -> dict:
    chunk = hit.chunk
    source = chunk.source
    url = chunk.url or source.url or None
    if source.type == "youtube" and source.youtube_video_id:
        url = f"https://youtu.be/{source.youtube_video_id}" + (
            f"?t={int(chunk.start_seconds)}" if chunk.start_seconds is not None else ""
        )
    snippet = " ".join(chunk.content.split())
    return {
        "index": index,
        "sourceId": source.id,
        "sourceName": source.name,
        "sourceType": source.type,
        "chunkId": chunk.id,
        "snippet": snippet[:SNIPPET_CHARS] + ("…" if len(snippet) > SNIPPET_CHARS else ""),
        "url": url,
        "page": chunk.page,
        "startSeconds": chunk.start_seconds,
        "score": round(hit.score, 4),
    }


def _conversation(
    *, mind, conversation_id, channel, member, visitor_id, visitor_email, title
) -> Conversation:
    if conversation_id:
        conversation = Conversation.objects.filter(
            id=conversation_id, mind=mind, workspace_id=mind.workspace_id
        ).first()
        if conversation is None or (visitor_id and conversation.visitor_id != visitor_id):
            raise NotFound("Conversation not found.")
        return conversation
    return Conversation.objects.create(
        workspace_id=mind.workspace_id,
        mind=mind,
        member=member,
        channel=channel,
        title=title[:TITLE_CHARS],
        visitor_id=visitor_id,
        visitor_email=visitor_email,
    )


def _history(conversation: Conversation, exclude_id: str) -> list[dict]:
    turns = (
        conversation.messages.exclude(id=exclude_id)
        .filter(status=Message.Status.COMPLETE)
        .order_by("-created_at")
        .values("role", "content")[:20]
    )
    return list(reversed(list(turns)))


def _retrieve(mind: Mind, query: str) -> list[SearchHit]:
    hits = search_chunks(mind=mind, query=query, limit=RETRIEVE, threshold=0.0, mode="hybrid")
    return [h for h in hits if h.vector_score >= MIN_SIMILARITY]


def _followups(mind: Mind, question: str, answer: str, language: str, asked: set[str]) -> list[str]:
    if llm.is_configured():
        suggested = llm.suggest_followups(question, answer, language)
        if suggested:
            return suggested[:3]
    return [q for q in mind.suggested_questions if q.strip().lower() not in asked][:3]


def chat_stream(
    *,
    mind: Mind,
    message: str,
    conversation_id: str | None = None,
    channel: str = "api",
    member=None,
    visitor_id: str = "",
    visitor_email: str = "",
    language: str | None = None,
    history: list[dict] | None = None,
) -> Iterator[ChatEvent]:
    started = time.monotonic()
    conversation = _conversation(
        mind=mind,
        conversation_id=conversation_id,
        channel=channel,
        member=member,
        visitor_id=visitor_id,
        visitor_email=visitor_email,
        title=message,
    )
    return _run(mind, conversation, message, language or mind.language or "English", history, started)


def _run(mind, conversation, message, language, history, started) -> Iterator[ChatEvent]:
    user_message = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=message)
    Conversation.objects.filter(id=conversation.id).update(updated_at=timezone.now())
    yield ChatEvent("conversation", {"conversationId": conversation.id, "messageId": user_message.id})

    if history is None:
        history = _history(conversation, user_message.id)
    configured = llm.is_configured()
    query = message
    if history and configured:
        query = llm.standalone_question(message, history)
    elif history and len(message.split()) <= 4:
        # No LLM to rewrite a terse follow-up ("and in 1990?"): give retrieval the previous question too.
        last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
        query = f"{last_user} {message}".strip()
    hits = _retrieve(mind, query)

    cited: dict[int, dict] = {}
    pending_citations: list[dict] = []

    def on_cited(number: int) -> None:
        if number not in cited:
            cited[number] = citation_data(number, hits[number - 1])
            pending_citations.append(cited[number])

    marker_filter = MarkerFilter(valid=lambda n: 1 <= n <= len(hits), on_cited=on_cited)
    usage = llm.Usage()
    model = (mind.model or settings.LLM_MODEL) if configured else "extractive"
    produced: list[str] = []
    first_token_ms = None
    finished = False
    try:
        if configured:
            messages = build_messages(
                mind=mind, question=message, history=history, hits=hits, language=language
            )
            pieces = llm.stream_chat(messages, model=model, temperature=mind.temperature, usage=usage)
        else:
            pieces = _words(extractive.compose(query, hits))
        try:
            for piece in pieces:
                for text in marker_filter.feed(piece):
                    produced.append(text)
                    if first_token_ms is None:
                        first_token_ms = int((time.monotonic() - started) * 1000)
                    yield ChatEvent("token", {"content": text})
                    while pending_citations:
                        yield ChatEvent("citation", pending_citations.pop(0))
            for text in marker_filter.flush():
                produced.append(text)
                yield ChatEvent("token", {"content": text})
        except llm.LlmUnavailable:
            finished = True  # nothing to save as an answer; the user's message stays
            yield ChatEvent(
                "error", {"code": "llm_unavailable", "message": UpstreamUnavailable.default_message}
            )
            return
        content = "".join(produced).strip()
        asked = {
            m.lower()
            for m in Message.objects.filter(conversation=conversation, role="user").values_list(
                "content", flat=True
            )
        }
        followups = _followups(mind, message, content, language, asked)
        citations = [cited[n] for n in sorted(cited)]
        latency_ms = int((time.monotonic() - started) * 1000)
        if not usage.completion_tokens:
            usage.completion_tokens = len(content.split())
        assistant = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=content,
            citations=citations,
            followups=followups,
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=latency_ms,
        )
        finished = True
        yield ChatEvent(
            "done",
            {
                "conversationId": conversation.id,
                "message": {
                    "id": assistant.id,
                    "role": "assistant",
                    "status": "complete",
                    "content": content,
                    "citations": citations,
                    "createdAt": iso(assistant.created_at),
                },
                "followups": followups,
                "usage": {
                    "promptTokens": usage.prompt_tokens,
                    "completionTokens": usage.completion_tokens,
                    "totalTokens": usage.prompt_tokens + usage.completion_tokens,
                },
                "latencyMs": latency_ms,
                "timeToFirstTokenMs": first_token_ms,
            },
        )
    finally:
        if not finished:
            # The client went away mid-answer (GeneratorExit) or something failed: keep what was said.
            Message.objects.create(
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                content="".join(produced).strip(),
                citations=[cited[n] for n in sorted(cited)],
                model=model,
                status=Message.Status.INTERRUPTED,
                latency_ms=int((time.monotonic() - started) * 1000),
            )


def _words(text: str) -> Iterator[str]:
    """The extractive answer, streamed a few words at a time like a model's tokens."""
    words = text.split(" ")
    for i in range(0, len(words), 3):
        yield " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")


def chat_complete(**kwargs) -> dict:
    """The whole answer at once: drains chat_stream; a provider failure raises 502 llm_unavailable."""
    result: dict = {}
    for event in chat_stream(**kwargs):
        if event.type == "conversation":
            result["conversationId"] = event.data["conversationId"]
        elif event.type == "error":
            raise UpstreamUnavailable(
                event.data["message"], details={"conversationId": result.get("conversationId")}
            )
        elif event.type == "done":
            result = event.data
    return result
