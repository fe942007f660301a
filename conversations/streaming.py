"""The native API's chat stream: each turn event, rendered by serializers.event_data, as Server-Sent Events or
JSON Lines, flushed event by event (`conversation`, `tool_call` and `tool_result` when the mind calls its tools,
`token`, `citation`, then `done` or `error`).

`X-Accel-Buffering: no` and `Cache-Control: no-cache` stop proxies (nginx, CDNs) from buffering the stream, the
complaint users of peer products have most about streaming.

Once the first byte is sent the status cannot change, so a failure mid-stream (the database lost, a bug) ends the
stream with a final `error` event (guarded) instead of a connection cut with no word to the client.
"""

import json
import logging
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

from config.api.exception_handler import DATABASE_DOWN_MESSAGE, database_unavailable
from conversations.chat import TurnEvent, TurnFailed
from conversations.serializers import event_data

logger = logging.getLogger(__name__)


def guarded(events: Iterable[TurnEvent]) -> Iterator[TurnEvent]:
    """The events, ending with TurnFailed if producing them raises. A client that disconnects (GeneratorExit)
    still closes the turn, which saves the partial answer."""
    try:
        yield from events
    except Exception as exc:
        if database_unavailable(exc):
            logger.warning("Chat stream ended: database unavailable (%s)", exc.__class__.__name__)
            yield TurnFailed(code="service_unavailable", message=DATABASE_DOWN_MESSAGE)
        else:
            logger.exception("Chat stream failed", exc_info=exc)
            yield TurnFailed(code="internal_error", message="An internal error occurred. It has been logged.")


def sse(events: Iterable[TurnEvent]) -> Iterator[bytes]:
    for event in guarded(events):
        name, data = event_data(event)
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def jsonl(events: Iterable[TurnEvent]) -> Iterator[bytes]:
    for event in guarded(events):
        name, data = event_data(event)
        yield (json.dumps({"event": name, **data}, ensure_ascii=False) + "\n").encode()


def unbuffered_response(chunks: Iterator[bytes], content_type: str) -> StreamingHttpResponse:
    """A streaming response no proxy holds back (the OpenAI-compatible stream uses it too)."""
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def stream_response(events: Iterable[TurnEvent], fmt: str) -> StreamingHttpResponse:
    if fmt == "jsonl":
        return unbuffered_response(jsonl(events), "application/x-ndjson; charset=utf-8")
    return unbuffered_response(sse(events), "text/event-stream; charset=utf-8")
