"""Chat events on the wire: Server-Sent Events or JSON Lines, flushed event by event.

`X-Accel-Buffering: no` and `Cache-Control: no-cache` stop proxies (nginx, CDNs) from buffering the stream, the
complaint users of peer products have most about streaming.
"""

import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

from conversations.chat import ChatEvent


def sse(events: Iterable[ChatEvent]) -> Iterator[bytes]:
    for event in events:
        yield f"event: {event.type}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n".encode()


def jsonl(events: Iterable[ChatEvent]) -> Iterator[bytes]:
    for event in events:
        yield (json.dumps({"event": event.type, **event.data}, ensure_ascii=False) + "\n").encode()


def stream_response(events: Iterable[ChatEvent], fmt: str) -> StreamingHttpResponse:
    if fmt == "jsonl":
        response = StreamingHttpResponse(jsonl(events), content_type="application/x-ndjson; charset=utf-8")
    else:
        response = StreamingHttpResponse(sse(events), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
