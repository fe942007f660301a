"""A fake OpenAI-compatible LLM server at the HTTP boundary: the real `openai` client talks to it over a socket.

    with FakeLLM(answer="Paris is the capital [1]. Made up [7].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        …
        fake.requests  # the JSON bodies received

`answer` may be a callable(request_json) -> str; `fail_with` an HTTP status to answer every call with.
Streaming requests get OpenAI chunk SSE (a few characters per chunk, ending with usage and [DONE]).
`stall_after=N`: a stream sends its first N chunks and then nothing (its Content-Length promises the rest), as a
provider that hangs mid-answer.

Tool calls: an answer (a scripted step, or what the callable returns) may be `tool_call(name, arguments)` or
`tool_calls(call, call…)` (several in one message, possibly with text said before calling):

    FakeLLM(script=[tool_call("search_knowledge", {"query": "lens"}), "Fresnel made it [2]."])

`script` answers the chat requests (not the follow-up or rewrite prompts) step by step; once it is spent the last
step repeats. A step may be a callable(request_json) like `answer`, or an int: that HTTP status (a failure). A tool call scripted for a request that offers no `tools` is answered 400, as a real provider
refuses a call to a tool it was not given. Streamed tool calls come as OpenAI's deltas: the id and name first,
then the arguments a few characters at a time, ending with finish_reason "tool_calls".
"""

import itertools
import json
from dataclasses import dataclass, field

from tests.fakesite import FakeSite

_call_ids = itertools.count(1)


@dataclass
class ToolCalls:
    calls: list[dict]  # [{id, name, arguments (a JSON string)}]
    content: str = ""  # text the model says before calling
    finish_reason: str = field(default="tool_calls")

    def openai_calls(self) -> list[dict]:
        return [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in self.calls
        ]


def tool_call(name: str, arguments: dict | str | None = None, *, id: str | None = None) -> ToolCalls:
    """One call of `name`; `arguments` a dict (sent as JSON) or a raw string (e.g. invalid JSON)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCalls([{"id": id or f"call_fake_{next(_call_ids)}", "name": name, "arguments": raw}])


def tool_calls(*calls: ToolCalls, content: str = "") -> ToolCalls:
    """Several calls in one assistant message."""
    return ToolCalls([c for call in calls for c in call.calls], content=content)


class FakeLLM:
    def __init__(
        self,
        answer="",
        *,
        fail_with: int | None = None,
        followups=("What else?", "Tell me more"),
        stall_after: int | None = None,
        script: list | None = None,
    ):
        self.answer = answer
        self.script = list(script or [])
        self.step = 0
        self.stall_after = stall_after
        self.fail_with = fail_with
        self.followups = list(followups)
        self.requests: list[dict] = []
        self.site = FakeSite()
        self.site.route("/v1/chat/completions", handler=self._handle)

    @property
    def base_url(self) -> str:
        return self.site.url("/v1")

    def _text_for(self, body: dict):
        prompt = body["messages"][-1].get("content") or ""
        if isinstance(prompt, str) and "follow-up questions" in prompt:
            return json.dumps(self.followups)
        if isinstance(prompt, str) and "rewrite the last user question" in prompt.lower():
            return "standalone: " + prompt.rsplit("Last question:", 1)[-1].strip()
        if self.script:
            step = self.script[min(self.step, len(self.script) - 1)]
            self.step += 1
            return step(body) if callable(step) else step
        return self.answer(body) if callable(self.answer) else self.answer

    @property
    def chat_requests(self) -> list[dict]:
        """The requests for answers (not the follow-up or rewrite prompts)."""
        return [r for r in self.requests if r.get("stream") or r.get("tools")]

    def _handle(self, request):
        body = json.loads(request.body)
        self.requests.append(body)
        if self.fail_with:
            error = {"error": {"message": "upstream failure", "type": "server_error", "code": None}}
            return self.fail_with, {"Content-Type": "application/json"}, json.dumps(error).encode()
        text = self._text_for(body)
        if isinstance(text, int) and not isinstance(text, bool):  # a scripted failure: this HTTP status
            error = {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
            return text, {"Content-Type": "application/json"}, json.dumps(error).encode()
        if isinstance(text, ToolCalls):
            if not body.get("tools"):
                error = {"error": {"message": "no tools were offered", "type": "invalid_request_error"}}
                return 400, {"Content-Type": "application/json"}, json.dumps(error).encode()
            return self._tool_calls(body, text)
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

    def _tool_calls(self, body: dict, calls: ToolCalls):
        usage = {"prompt_tokens": 42, "completion_tokens": 5, "total_tokens": 47}
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": calls.content or None,
                "tool_calls": calls.openai_calls(),
            }
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": calls.finish_reason}],
                "usage": usage,
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

        def chunk(delta: dict, finish=None) -> str:
            body_ = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(body_)}\n\n"

        events = [chunk({"role": "assistant", "content": None})]
        for start in range(0, len(calls.content), 5):
            events.append(chunk({"content": calls.content[start : start + 5]}))
        for index, call in enumerate(calls.calls):
            head = {"index": index, "id": call["id"], "type": "function", "function": {"name": call["name"]}}
            events.append(
                chunk({"tool_calls": [{**head, "function": {**head["function"], "arguments": ""}}]})
            )
            for start in range(0, len(call["arguments"]), 7):
                piece = call["arguments"][start : start + 7]
                events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        events.append(chunk({}, calls.finish_reason))
        final = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        events.append(f"data: {json.dumps({**final, 'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n")
        return 200, {"Content-Type": "text/event-stream"}, "".join(events).encode()

    def __enter__(self) -> "FakeLLM":
        self.site.__enter__()
        return self

    def __exit__(self, *exc):
        self.site.__exit__(*exc)
