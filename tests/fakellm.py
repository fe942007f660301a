"""A fake OpenAI-compatible LLM server at the HTTP boundary: the real `openai` client talks to it over a socket.

    with FakeLLM(answer="Paris is the capital [1]. Made up [7].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        …
        fake.requests  # the JSON bodies received

`answer` may be a callable(request_json) -> str; `fail_with` an HTTP status to answer every call with.
Streaming requests get OpenAI chunk SSE (a few characters per chunk, ending with usage and [DONE]).
`stall_after=N`: a stream sends its first N chunks and then nothing (its Content-Length promises the rest), as a
provider that hangs mid-answer.
"""

import json

from tests.fakesite import FakeSite


class FakeLLM:
    def __init__(
        self,
        answer="",
        *,
        fail_with: int | None = None,
        followups=("What else?", "Tell me more"),
        stall_after: int | None = None,
    ):
        self.answer = answer
        self.stall_after = stall_after
        self.fail_with = fail_with
        self.followups = list(followups)
        self.requests: list[dict] = []
        self.site = FakeSite()
        self.site.route("/v1/chat/completions", handler=self._handle)

    @property
    def base_url(self) -> str:
        return self.site.url("/v1")

    def _text_for(self, body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        if "follow-up questions" in prompt:
            return json.dumps(self.followups)
        if "rewrite the last user question" in prompt.lower():
            return "standalone: " + prompt.rsplit("Last question:", 1)[-1].strip()
        return self.answer(body) if callable(self.answer) else self.answer

    def _handle(self, request):
        body = json.loads(request.body)
        self.requests.append(body)
        if self.fail_with:
            error = {"error": {"message": "upstream failure", "type": "server_error", "code": None}}
            return self.fail_with, {"Content-Type": "application/json"}, json.dumps(error).encode()
        text = self._text_for(body)
        if not body.get("stream"):
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": 42,
                    "completion_tokens": len(text.split()),
                    "total_tokens": 42 + len(text.split()),
                },
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()
        events = []
        for start in range(0, len(text), 5):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "delta": {"content": text[start : start + 5]}, "finish_reason": None}
                ],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        final = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
            "choices": [],
            "usage": {
                "prompt_tokens": 42,
                "completion_tokens": len(text.split()),
                "total_tokens": 42 + len(text.split()),
            },
        }
        events.append(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n")
        whole = "".join(events).encode()
        if self.stall_after is not None:
            sent = "".join(events[: self.stall_after]).encode()
            return 200, {"Content-Type": "text/event-stream", "Content-Length": str(len(whole))}, sent
        return 200, {"Content-Type": "text/event-stream"}, whole

    def __enter__(self) -> "FakeLLM":
        self.site.__enter__()
        return self

    def __exit__(self, *exc):
        self.site.__exit__(*exc)
