"""What the public page is sent of a chat: a turn as the native Server-Sent Events, or a plain 502 when the model
fails before its first word; a conversation restored after a reload. Sources reach the page only when the mind
shows them (`showSources`): hiding them in the page's script alone would still hand them to anyone who asks.

Each citation the page gets is the API's (`Citation.as_json`) plus `link`: where a visitor can follow it, only
http(s), pointing into the passage when it can (`#page=N` for a PDF on the web, the position in a YouTube video or
a podcast episode). The page's script understands the events it knows and ignores the others."""

import json
from collections.abc import Generator, Iterator
from itertools import chain
from urllib.parse import urlsplit

from django.http import HttpResponse

from config.api.exception_handler import error_json_response
from conversations.chat import TurnEvent, TurnFailed, TurnStarted
from conversations.models import MESSAGE_ORDER, Conversation, Message
from conversations.serializers import event_data
from conversations.streaming import guarded, unbuffered_response
from minds.models import Mind


def citation_link(citation: dict) -> str | None:
    """Where the visitor follows a citation: its URL (http/https only), at the cited page or moment."""
    url = citation.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https") or "\n" in url:
        return None
    seconds = citation.get("startSeconds")
    page = citation.get("page")
    if "#" in url:
        return url
    if isinstance(seconds, int | float) and seconds >= 0:
        query = urlsplit(url).query
        if citation.get("sourceType") == "youtube":
            return url if "t=" in query else f"{url}{'&' if query else '?'}t={int(seconds)}"
        return f"{url}#t={int(seconds)}"  # a media fragment: browsers start the audio there
    if isinstance(page, int) and page > 0 and urlsplit(url).path.lower().endswith(".pdf"):
        return f"{url}#page={page}"
    return url


def public_citation(citation: dict) -> dict:
    return {**citation, "link": citation_link(citation)}


def public_event(name: str, data: dict, mind: Mind) -> dict | None:
    """An event's payload as the page gets it, None for an event it must not get."""
    shown = mind.show_sources
    if name == "citation":
        return public_citation(data) if shown else None
    if name == "tool_result":
        return {**data, "citations": [public_citation(c) for c in data.get("citations", [])] if shown else []}
    if name == "done":
        message = data["message"]
        cited = [public_citation(c) for c in message.get("citations", [])] if shown else []
        done = {**data, "message": {**message, "citations": cited}}
        if not shown:
            done.pop("toolMessages", None)  # what a tool returned is a source too
        return done
    return data


def answer_response(events: Generator[TurnEvent, None, None], mind: Mind) -> HttpResponse:
    """Streams the answer, unless the model fails before its first word: then a 502 the page shows as an error
    (and whose conversation id lets a retry continue the conversation)."""
    first: list[TurnEvent] = []
    for event in events:
        first.append(event)
        if not isinstance(event, TurnStarted):
            break
    failed = first[-1] if first else None
    if isinstance(failed, TurnFailed):
        started = next((e for e in first if isinstance(e, TurnStarted)), None)
        details = {"conversationId": started.conversation_id if started else None}
        return error_json_response(502, failed.code, failed.message, details)
    return unbuffered_response(_sse(first, events, mind), "text/event-stream; charset=utf-8")


def _sse(first: list[TurnEvent], events: Generator[TurnEvent, None, None], mind: Mind) -> Iterator[bytes]:
    # Closing the response (a client gone mid-answer) closes the chat generator, which saves what was said.
    try:
        for event in guarded(chain(first, events)):
            name, data = event_data(event)
            shown = public_event(name, data, mind)
            if shown is not None:
                yield f"event: {name}\ndata: {json.dumps(shown, ensure_ascii=False)}\n\n".encode()
    finally:
        events.close()


def conversation_restore_data(conversation: Conversation, mind: Mind) -> dict:
    """The visitor's conversation as the page redraws it after a reload (its question and answers, not the tools'
    steps): with each answer's id and the visitor's rating of it, for the thumbs."""
    messages = [
        {
            "id": m.id,
            "role": m.role,
            "content": m.content,
            "citations": [public_citation(c) for c in m.citations] if mind.show_sources else [],
            "followups": m.followups,
            "feedback": m.feedback_rating or None,
        }
        for m in conversation.messages.order_by(*MESSAGE_ORDER)
        if m.content and m.role in (Message.Role.USER, Message.Role.ASSISTANT)
    ]
    return {"status": "success", "conversationId": conversation.id, "messages": messages}
