"""The tool loop of a chat turn: the model calls tools, reads their results, and answers.

Each round asks the model with the turn's tools offered (the mind's own, from `tools.runtime.toolbox_for`, and the
ones an OpenAI-compatible client passed). A round that calls the mind's tools has them run here, in order, each
call and result reported as `ToolCalled` / `ToolReturned` events and saved on the conversation when the round ends
(an assistant message with `tool_calls`, then one `tool` message per call, each taking the next step of the turn).
A round that calls one of the client's tools ends the turn: the client runs it (OpenAI `finish_reason:
"tool_calls"`), after the mind's own calls of that round have run here. A round without calls is the answer,
streamed as it comes.

Bounded: at most TOOL_CALLS_PER_TURN calls within TOOL_TURN_BUDGET_SECONDS (each call also bounded by
TOOL_CALL_TIMEOUT_SECONDS and what is left of the budget). Calls past the bound are not run (their results say so,
so every call the model made has its answer) and the model is asked for its final answer without tools;
`ToolSession.limit` says which bound was hit.

A tool's failure is a result the model reads (`is_error`), never an exception out of the turn. What tools return
is quoted data (conversations/prompts.py): a knowledge search's passages are numbered after the turn's earlier
ones and any other result is one citable passage, so the answer's [n] markers still point only at what this turn
actually retrieved.
"""

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from conversations.citations import Citation
from conversations.models import Message
from conversations.prompts import BUDGET_SPENT, quoted, tool_passages, tool_result_element
from integrations.llm import ToolCall
from knowledge.search import SearchHit
from tools.runtime import Toolbox, ToolOutcome

logger = logging.getLogger(__name__)

LIMIT_CALLS = "calls"
LIMIT_TIME = "time"

# What the turn's citations can point at: a retrieved passage, or a tool's result (already a Citation).
Source = SearchHit | Citation


@dataclass(frozen=True)
class ToolCalled:
    """The model called one of the mind's tools; `message_id` is the saved assistant message with the calls."""

    call_id: str
    name: str
    arguments: str
    message_id: str


@dataclass(frozen=True)
class ToolReturned:
    """A tool's result as the model reads it; `citations` are the passages (or the result) it made citable."""

    call_id: str
    name: str
    content: str
    is_error: bool
    duration_ms: int
    message_id: str
    citations: tuple[Citation, ...] = ()


@dataclass
class TurnRecorder:
    """Saves the turn's messages after its question, each at the next step (MESSAGE_ORDER)."""

    question: Message
    model: str
    step: int = 0

    def build(self, **fields) -> Message:
        """The next message, not saved yet (its id is known at once)."""
        self.step += 1
        return Message(
            conversation_id=self.question.conversation_id,
            turn=self.question.turn,
            reply_to=self.question,
            step=self.step,
            model=self.model,
            **fields,
        )

    def save(self, **fields) -> Message:
        message = self.build(**fields)
        message.save(force_insert=True)
        return message

    @staticmethod
    def save_all(messages: list[Message]) -> None:
        if messages:
            Message.objects.bulk_create(messages)


@dataclass
class ToolSession:
    """The tools of one turn and what they have used of its bounds."""

    toolbox: Toolbox | None = None
    client_tools: list[dict] = field(default_factory=list)  # OpenAI function specs the client passed
    tool_choice: object = None
    max_calls: int = 0
    deadline: float = 0.0
    calls_made: int = 0
    limit: str | None = None  # LIMIT_CALLS or LIMIT_TIME once a bound is hit
    # This turn's tool steps as OpenAI messages (assistant tool_calls, then tool results with their names).
    exchange: list[dict] = field(default_factory=list)
    # The client's tools the model called: the turn ends with them (finish_reason "tool_calls").
    client_calls: list[ToolCall] = field(default_factory=list)

    @classmethod
    def start(cls, toolbox: Toolbox | None, *, client_tools=None, tool_choice=None) -> "ToolSession":
        return cls(
            toolbox=toolbox,
            client_tools=list(client_tools or []),
            tool_choice=tool_choice,
            max_calls=settings.TOOL_CALLS_PER_TURN,
            deadline=time.monotonic() + settings.TOOL_TURN_BUDGET_SECONDS,
        )

    @property
    def own_specs(self) -> list:
        return list(self.toolbox.specs) if self.toolbox is not None else []

    @property
    def own_names(self) -> set[str]:
        return {spec.name for spec in self.own_specs}

    @property
    def active(self) -> bool:
        return bool(self.own_specs or self.client_tools)

    def offered(self) -> list[dict]:
        """The function specs offered this round: none once a bound is hit (the model must answer)."""
        if self.limit:
            return []
        own = self.own_names
        client = [t for t in self.client_tools if _function_name(t) not in own]
        return [spec.as_openai() for spec in self.own_specs] + client

    def run(self, call: ToolCall) -> ToolOutcome:
        """One of the mind's tools, within the turn's bounds; never raises for the tool's own failure."""
        if self.calls_made >= self.max_calls:
            self.limit = self.limit or LIMIT_CALLS
            return ToolOutcome(
                f"Not run: this turn may call at most {self.max_calls} tools, and has.", is_error=True
            )
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.limit = self.limit or LIMIT_TIME
            return ToolOutcome("Not run: this turn's time for tools is spent.", is_error=True)
        self.calls_made += 1
        if call.name not in self.own_names:
            outcome = ToolOutcome(f"There is no tool named {call.name!r}.", is_error=True)
        else:
            started = time.monotonic()
            try:
                outcome = self.toolbox.call(
                    call.name, call.arguments, timeout=min(settings.TOOL_CALL_TIMEOUT_SECONDS, remaining)
                )
            except Exception as exc:  # a bug in a tool must not cost the turn: the model reads the failure
                logger.exception("Tool %s raised", call.name, exc_info=exc)
                outcome = ToolOutcome("The tool failed unexpectedly.", is_error=True)
            if not outcome.duration_ms:
                outcome.duration_ms = int((time.monotonic() - started) * 1000)
        if self.calls_made >= self.max_calls:
            self.limit = self.limit or LIMIT_CALLS
        elif time.monotonic() >= self.deadline:
            self.limit = self.limit or LIMIT_TIME
        return outcome

    def spec_id(self, name: str) -> str:
        return next((spec.id for spec in self.own_specs if spec.name == name), "")


def _function_name(spec: dict) -> str:
    return ((spec or {}).get("function") or {}).get("name") or ""


# (messages, tools or None, tool_choice or None, calls out) -> the round's text pieces
Ask = Callable[[list[dict], list[dict] | None, object, list[ToolCall]], Iterator[str]]


def rounds(
    session: ToolSession,
    *,
    messages: list[dict],
    ask: Ask,
    sources: list[Source],
    recorder: TurnRecorder,
) -> Iterator[str | ToolCalled | ToolReturned]:
    """The model's text pieces across the rounds, and an event for each tool call and result. `messages` (the
    prompt) grows with the tool steps; `sources` with what tools made citable."""
    first = True
    while True:
        offered = session.offered()
        calls: list[ToolCall] = []
        choice = session.tool_choice if first and offered and session.client_tools else None
        yield from ask(messages, offered or None, choice, calls)
        first = False
        if not calls:
            return
        if not offered:
            return  # a model that calls tools it was not offered: its text is the answer
        own = session.own_names
        client_calls = [c for c in calls if c.name not in own and c.name in _client_names(session)]
        if client_calls:
            # A round that also calls the mind's own tools runs those first (their steps are the turn's, listed
            # server-side); the client's calls then end the turn, for the client to run.
            own_calls = [c for c in calls if c.name in own]
            if own_calls:
                yield from _run_calls(
                    session, own_calls, messages=messages, sources=sources, recorder=recorder
                )
            session.client_calls = client_calls
            return
        yield from _run_calls(session, calls, messages=messages, sources=sources, recorder=recorder)
        if session.limit:
            messages.append({"role": "system", "content": BUDGET_SPENT.format(reason=_limit_words(session))})


def _client_names(session: ToolSession) -> set[str]:
    return {_function_name(t) for t in session.client_tools}


def _limit_words(session: ToolSession) -> str:
    if session.limit == LIMIT_CALLS:
        return f"at most {session.max_calls} tool calls"
    return "the time for tools is up"


def _run_calls(
    session: ToolSession,
    calls: list[ToolCall],
    *,
    messages: list[dict],
    sources: list[Source],
    recorder: TurnRecorder,
) -> Iterator[ToolCalled | ToolReturned]:
    """The round's calls in order. The assistant's message and the results are saved together when the round
    ends (one insert), or with what was done when the turn stops early (a client gone: GeneratorExit)."""
    openai_calls = [call.as_openai() for call in calls]
    asked = recorder.build(role=Message.Role.ASSISTANT, content="", tool_calls=openai_calls)
    done = [asked]
    step = {"role": "assistant", "content": None, "tool_calls": openai_calls}
    messages.append(step)
    session.exchange.append(step)
    try:
        for call in calls:
            yield ToolCalled(call_id=call.id, name=call.name, arguments=call.arguments, message_id=asked.id)
            outcome = session.run(call)
            content, citations = model_view(session, call, outcome, sources)
            result = recorder.build(
                role=Message.Role.TOOL,
                tool_call_id=call.id[:64],
                tool_name=call.name[:64],
                content=content,
                citations=[c.as_json() for c in citations],
                status=Message.Status.ERROR if outcome.is_error else Message.Status.COMPLETE,
                error_code="tool_error" if outcome.is_error else "",
                latency_ms=outcome.duration_ms,
            )
            done.append(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
            session.exchange.append(
                {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}
            )
            yield ToolReturned(
                call_id=call.id,
                name=call.name,
                content=content,
                is_error=outcome.is_error,
                duration_ms=outcome.duration_ms,
                message_id=result.id,
                citations=tuple(citations),
            )
    finally:
        recorder.save_all(done)


def model_view(
    session: ToolSession, call: ToolCall, outcome: ToolOutcome, sources: list[Source]
) -> tuple[str, list[Citation]]:
    """What the model reads of a result, and the citations it made possible. A knowledge search's hits take the
    next numbers (a passage already in the turn keeps its own); any other result is one passage of its own."""
    if outcome.is_error:
        return f"The tool failed: {quoted(outcome.content)}", []
    if outcome.hits:
        numbered: list[tuple[int, SearchHit]] = []
        known = {s.chunk.id: n for n, s in enumerate(sources, start=1) if isinstance(s, SearchHit)}
        for hit in outcome.hits:
            number = known.get(hit.chunk.id)
            if number is None:
                sources.append(hit)
                number = known[hit.chunk.id] = len(sources)
            if all(number != n for n, _ in numbered):
                numbered.append((number, hit))
        return tool_passages(numbered), [Citation.of_hit(n, hit) for n, hit in numbered]
    number = len(sources) + 1
    citation = Citation.of_tool(
        number,
        tool_id=session.spec_id(call.name),
        name=call.name,
        arguments=call.arguments,
        content=outcome.content,
    )
    sources.append(citation)
    return tool_result_element(number, call.name, outcome.content), [citation]
