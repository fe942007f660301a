"""The native API's chat stream: each turn event, rendered by serializers.event_data, as Server-Sent Events or
JSON Lines, flushed event by event.

`X-Accel-Buffering: no` and `Cache-Control: no-cache` stop proxies (nginx, CDNs) from buffering the stream, the
complaint users of peer products have most about streaming.
"""

import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

from conversations.chat import TurnEvent
from conversations.serializers import event_data


def sse(events: Iterable[TurnEvent]) -> Iterator[bytes]:
    for event in events:
        name, data = event_data(event)
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def jsonl(events: Iterable[TurnEvent]) -> Iterator[bytes]:
    for event in events:
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
