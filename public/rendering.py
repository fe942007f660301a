"""What the public page is sent of a chat: a turn as the native Server-Sent Events, or a plain 502 when the model
fails before its first word; a conversation restored after a reload. Sources reach the page only when the mind
shows them (`showSources`): hiding them in the page's script alone would still hand them to anyone who asks."""

import dataclasses
from collections.abc import Generator, Iterator
from itertools import chain

from django.http import HttpResponse

from config.api.exception_handler import error_json_response
from conversations.chat import CitationFound, TurnDone, TurnEvent, TurnFailed, TurnStarted
from conversations.models import MESSAGE_ORDER, Conversation
from conversations.streaming import stream_response
from minds.models import Mind


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
    return stream_response(_visible(first, events, mind), "sse")


def _visible(
    first: list[TurnEvent], events: Generator[TurnEvent, None, None], mind: Mind
) -> Iterator[TurnEvent]:
    # Closing the response (a client gone mid-answer) closes the chat generator, which saves what was said.
    try:
        for event in chain(first, events):
            if mind.show_sources:
                yield event
            elif isinstance(event, TurnDone):
                yield TurnDone(dataclasses.replace(event.result, citations=()))
            elif not isinstance(event, CitationFound):
                yield event
    finally:
        events.close()


def conversation_restore_data(conversation: Conversation, mind: Mind) -> dict:
    """The visitor's conversation as the page redraws it after a reload."""
    messages = [
        {
            "role": m.role,
            "content": m.content,
            "citations": m.citations if mind.show_sources else [],
            "followups": m.followups,
        }
        for m in conversation.messages.order_by(*MESSAGE_ORDER)
        if m.content
    ]
    return {"status": "success", "conversationId": conversation.id, "messages": messages}
