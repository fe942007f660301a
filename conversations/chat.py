"""The chat service: one turn of a conversation, as typed events ending in a result.

A turn yields `TurnStarted` → `Token`… (with a `CitationFound` the first time each passage is cited) →
`TurnDone(result)`, or `TurnFailed` (the user's message is saved either way). When the mind has tools and an LLM
is configured, the model may call them first (conversations/tool_loop.py): each call and result is a
`ToolCalled` / `ToolReturned` event, saved as messages of the turn before its answer. Closing the generator early (a client
that disconnects) saves what was produced as an `interrupted` answer, so the conversation stays consistent.

Nothing here knows a wire format: the native API (serializers.py, streaming.py), the OpenAI-compatible API
(openai_apis.py) and the public page (public/rendering.py) each render these objects their own way.
"""

import dataclasses
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.api.errors import NotFound, UpstreamUnavailable
from conversations import extractive
from conversations.citations import Citation, MarkerFilter
from conversations.models import MESSAGE_ORDER, Conversation, Message
from conversations.prompts import build_messages, history_messages
from conversations.tool_loop import Source, ToolCalled, ToolReturned, ToolSession, TurnRecorder, rounds
from integrations import llm
from knowledge.models import Collection
from knowledge.search import KnowledgeScope, SearchHit, search_chunks
from minds.models import Mind
from tools.context import dynamic_context
from tools.runtime import Toolbox, toolbox_for

RETRIEVE = 6
# A passage must be at least this similar to the question to be used at all; below it the mind says it does
# not know rather than answer from loosely related text.
MIN_SIMILARITY = 0.25
TITLE_CHARS = 80
HISTORY_TURNS = 10
FOLLOWUPS = 3
EXTRACTIVE_MODEL = "extractive"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TurnResult:
    """The answer of a completed turn, as saved."""

    conversation_id: str
    message_id: str
    turn: int
    content: str
    citations: tuple[Citation, ...]
    followups: tuple[str, ...]
    usage: Usage
    model: str
    latency_ms: int
    time_to_first_token_ms: int | None
    created_at: datetime
    # The turn's tool steps as OpenAI messages: assistant `tool_calls`, then `tool` results (with `name`).
    tool_messages: tuple[dict, ...] = ()
    # Calls of the client's own tools (OpenAI-compatible `tools`) the turn ended with, in OpenAI's shape.
    tool_calls: tuple[dict, ...] = ()
    # The bound the tool loop hit ("calls" or "time"), if any.
    tool_limit: str | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class TurnStarted:
    conversation_id: str
    message_id: str  # the user's message, saved


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class CitationFound:
    citation: Citation


@dataclass(frozen=True)
class TurnFailed:
    code: str
    message: str


@dataclass(frozen=True)
class TurnDone:
    result: TurnResult


TurnEvent = TurnStarted | Token | CitationFound | ToolCalled | ToolReturned | TurnFailed | TurnDone
PUBLIC_CHANNELS = (Conversation.Channel.PUBLIC, Conversation.Channel.WIDGET)


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
    collection: Collection | None = None,
    instructions: str = "",
    temperature: float | None = None,
    tools: list[dict] | None = None,
    client_tools: list[dict] | None = None,
    tool_choice=None,
    continuation: list[dict] | None = None,
) -> Generator[TurnEvent, None, None]:
    """One turn as events. The conversation is resolved first: an unknown one raises NotFound before any event.

    - `history`: the earlier turns, when the client keeps them (OpenAI-compatible, TypingMind's stateless agent
      chat); otherwise read from the conversation.
    - `collection`: a chat with a collection (OpenIndex): retrieval covers only it, and the conversation keeps it
      so later turns do too. Without one, retrieval covers the mind's sources and its attached collections.
    - `instructions`, `temperature`: the client's system message and sampling temperature for this turn.
    - `tools`: `[{id, checked}]` switching the mind's tools on or off for this chat (tools.runtime.toolbox_for).
    - `client_tools`, `tool_choice`: an OpenAI client's own tools, offered beside the mind's; a call to one ends
      the turn with it (TurnResult.tool_calls). `continuation`: the client's tool steps after the question (its
      assistant `tool_calls` and `tool` results), read by the model after the question.
    """
    started = time.monotonic()
    conversation = _conversation_for_turn(
        mind=mind,
        conversation_id=conversation_id,
        channel=channel,
        member=member,
        visitor_id=visitor_id,
        visitor_email=visitor_email,
        title=message,
        collection=collection,
    )
    if conversation.collection_id:
        scope = KnowledgeScope.of_collections([conversation.collection_id])
    else:
        scope = KnowledgeScope.of_mind(mind)
    return _turn(
        mind=mind,
        conversation=conversation,
        question=message,
        language=language or mind.language or "English",
        history=history,
        started=started,
        scope=scope,
        instructions=instructions,
        temperature=mind.temperature if temperature is None else temperature,
        tools=ToolRequest(
            checked=tools,
            client_tools=list(client_tools or []),
            tool_choice=tool_choice,
            continuation=list(continuation or []),
            public=channel in PUBLIC_CHANNELS,
            user_id=(member.id if member is not None else "") or visitor_id,
            # The public page shows no sources unless the mind does (showSources): a tool's result (a search's
            # passages) is not sent there either, only that the tool ran.
            hide_results=channel in PUBLIC_CHANNELS and not mind.show_sources,
        ),
    )


@dataclass(frozen=True)
class ToolRequest:
    """What a turn was asked about tools (see chat_stream)."""

    checked: list[dict] | None = None
    client_tools: list[dict] = field(default_factory=list)
    tool_choice: object = None
    continuation: list[dict] = field(default_factory=list)
    public: bool = False
    user_id: str = ""
    hide_results: bool = False


def chat_complete(**kwargs) -> TurnResult:
    """The whole turn at once (same arguments as chat_stream); a provider failure raises 502 llm_unavailable."""
    conversation_id = None
    for event in chat_stream(**kwargs):
        if isinstance(event, TurnStarted):
            conversation_id = event.conversation_id
        elif isinstance(event, TurnFailed):
            raise UpstreamUnavailable(event.message, details={"conversationId": conversation_id})
        elif isinstance(event, TurnDone):
            return event.result
    raise AssertionError("a turn ends with TurnDone or TurnFailed")


@dataclass
class _Draft:
    """The answer while it is produced: saved whole at the end, or as `interrupted` when the turn stops early."""

    hits: list[SearchHit]  # the first retrieval's
    model: str
    started: float
    usage: llm.Usage = field(default_factory=llm.Usage)
    parts: list[str] = field(default_factory=list)
    cited: dict[int, Citation] = field(default_factory=dict)
    first_token_ms: int | None = None
    # What [n] may cite: the first retrieval's passages, then what tools returned (tool_loop numbers them).
    sources: list[Source] = field(default_factory=list)
    session: ToolSession = field(default_factory=ToolSession)

    def __post_init__(self):
        self.sources = list(self.hits)

    @property
    def content(self) -> str:
        return "".join(self.parts).strip()

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(self.cited[n] for n in sorted(self.cited))


def _turn(
    *,
    mind: Mind,
    conversation: Conversation,
    question: str,
    language: str,
    history: list[dict] | None,
    started: float,
    scope: KnowledgeScope,
    instructions: str,
    temperature: float,
    tools: ToolRequest,
) -> Generator[TurnEvent, None, None]:
    asked = _save_question(conversation, question)
    yield TurnStarted(conversation_id=conversation.id, message_id=asked.id)
    if history is None:
        history = _history(conversation, before_turn=asked.turn)
    configured = llm.is_configured()
    query = _search_query(question, history, configured=configured)
    model = (mind.model or settings.LLM_MODEL) if configured else EXTRACTIVE_MODEL
    draft = _Draft(hits=_retrieve(scope, query), model=model, started=started)
    recorder = TurnRecorder(question=asked, model=model)
    try:
        if configured:
            # Offline (no LLM), no tool is ever called: the answer stays extractive.
            draft.session = ToolSession.start(
                _toolbox(mind, conversation.id, scope, tools),
                client_tools=tools.client_tools,
                tool_choice=tools.tool_choice,
            )
        pieces = _answer_pieces(
            draft,
            mind=mind,
            question=question,
            query=query,
            history=history,
            language=language,
            configured=configured,
            instructions=instructions,
            temperature=temperature,
            recorder=recorder,
            context=_dynamic_context(mind, conversation.id, question, tools.user_id) if configured else "",
            continuation=tools.continuation,
        )
        for event in _stream_answer(draft, pieces):
            if tools.hide_results and isinstance(event, ToolReturned):
                event = dataclasses.replace(event, content="", citations=())
            yield event
        followups = (
            ()
            if draft.session.client_calls
            else _followups(mind, conversation, question, draft.content, language, configured=configured)
        )
        result = _save_answer(asked, draft, followups, recorder)
    except llm.LlmUnavailable:
        # The user's message stays, so a retry continues the conversation. A provider that stalled or dropped
        # mid-answer leaves what it said, kept as `interrupted`.
        if draft.parts:
            _save_interrupted(asked, draft, recorder)
        yield TurnFailed(code="llm_unavailable", message=UpstreamUnavailable.default_message)
        return
    except BaseException:
        # The client went away mid-answer (GeneratorExit) or something failed: keep what was said.
        _save_interrupted(asked, draft, recorder)
        raise
    yield TurnDone(result)


def _toolbox(mind: Mind, conversation_id: str, scope: KnowledgeScope, tools: ToolRequest) -> Toolbox:
    """The mind's tools for this turn (only those marked public on the public page and the widget)."""
    return toolbox_for(
        mind, conversation_id=conversation_id, scope=scope, public=tools.public, checked=tools.checked
    )


def _dynamic_context(mind: Mind, conversation_id: str, question: str, user_id: str) -> str:
    """The mind's dynamic context endpoint's answer for this turn ("" when it has none or it failed; never
    raises), once per turn whatever the number of tool rounds."""
    return dynamic_context(
        mind, conversation_id=conversation_id, last_user_message=question, user_id=user_id or ""
    )


def _conversation_for_turn(
    *, mind: Mind, conversation_id, channel, member, visitor_id, visitor_email, title, collection
) -> Conversation:
    """The conversation to continue (this mind's, and this visitor's when there is one) or a new one."""
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
        collection=collection,
    )


def _save_question(conversation: Conversation, text: str) -> Message:
    """The question, in the conversation's next turn. Concurrent questions queue on the conversation's row lock,
    held only for this short transaction (never while an answer streams), so each takes its own turn."""
    with transaction.atomic():
        turn = (
            Conversation.objects.select_for_update()
            .values_list("turn_count", flat=True)
            .get(id=conversation.id)
        ) + 1
        Conversation.objects.filter(id=conversation.id).update(turn_count=turn, updated_at=timezone.now())
        return Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=text, turn=turn
        )


def _history(conversation: Conversation, *, before_turn: int) -> list[dict]:
    """The last completed turns before this one, oldest first, each question followed by its tool steps (the
    assistant's `tool_calls` and the results, as the model read them) and its own answer. Turns still being
    answered (concurrent ones), failed or interrupted are left out."""
    answers = list(
        Message.objects.filter(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.COMPLETE,
            turn__lt=before_turn,
            reply_to__isnull=False,
            tool_calls=[],
        )
        .select_related("reply_to")
        # One answer a turn, the latest (rows older than turns could hold two).
        .order_by("-turn", "-step", "-created_at")
        .distinct("turn")[:HISTORY_TURNS]
    )
    steps: dict[int, list[Message]] = {}
    if any(answer.step > 1 for answer in answers):
        for message in Message.objects.filter(
            Q(role=Message.Role.TOOL) | ~Q(tool_calls=[]),
            conversation=conversation,
            turn__in=[answer.turn for answer in answers if answer.step > 1],
            step__gt=0,
        ).order_by(*MESSAGE_ORDER):
            steps.setdefault(message.turn, []).append(message)
    history = []
    for answer in reversed(answers):
        history.append({"role": Message.Role.USER, "content": answer.reply_to.content})
        for message in steps.get(answer.turn, []):
            if message.step >= answer.step:
                continue
            if message.role == Message.Role.TOOL:
                history.append(
                    {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
                )
            else:
                history.append(
                    {"role": "assistant", "content": message.content, "tool_calls": message.tool_calls}
                )
        history.append({"role": Message.Role.ASSISTANT, "content": answer.content})
    return history


def _search_query(question: str, history: list[dict], *, configured: bool) -> str:
    """What retrieval looks for: a follow-up rewritten to stand alone, or at least joined to the last question."""
    if history and configured:
        return llm.standalone_question(question, history)
    if history and len(question.split()) <= 4:
        # No LLM to rewrite a terse follow-up ("and in 1990?"): give retrieval the previous question too.
        last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
        return f"{last_user} {question}".strip()
    return question


def _retrieve(scope: KnowledgeScope, query: str) -> list[SearchHit]:
    hits = search_chunks(scope=scope, query=query, limit=RETRIEVE, threshold=0.0, mode="hybrid")
    return [h for h in hits if h.vector_score >= MIN_SIMILARITY]


def _answer_pieces(
    draft: _Draft,
    *,
    mind: Mind,
    question: str,
    query: str,
    history: list[dict],
    language: str,
    configured: bool,
    instructions: str,
    temperature: float,
    recorder: TurnRecorder,
    context: str,
    continuation: list[dict],
) -> Iterator[str | ToolCalled | ToolReturned]:
    """The raw answer: the LLM's, prompted with the persona, the conversation and the numbered passages (after
    the tool rounds, when the turn has tools); or, with no LLM configured, the best sentences of the passages."""
    if not configured:
        return _words(extractive.compose(query, draft.hits))
    session = draft.session
    prompt = build_messages(
        mind=mind,
        question=question,
        history=history,
        hits=draft.hits,
        language=language,
        instructions=instructions,
        tools_offered=session.active,
        context=context,
    )
    prompt += history_messages(continuation)

    def ask(messages, tools, tool_choice, calls) -> Iterator[str]:
        """One round; its usage adds to the turn's (a turn with tools asks the model more than once)."""
        used = llm.Usage()
        yield from llm.stream_chat(
            messages,
            model=draft.model,
            temperature=temperature,
            usage=used,
            top_p=mind.top_p,
            frequency_penalty=mind.frequency_penalty,
            presence_penalty=mind.presence_penalty,
            tools=tools,
            tool_choice=tool_choice,
            tool_calls=calls,
        )
        draft.usage.prompt_tokens += used.prompt_tokens
        draft.usage.completion_tokens += used.completion_tokens

    if not session.active:
        return ask(prompt, None, None, [])
    return rounds(session, messages=prompt, ask=ask, sources=draft.sources, recorder=recorder)


def _words(text: str) -> Iterator[str]:
    """The extractive answer, streamed a few words at a time like a model's tokens."""
    words = text.split(" ")
    for i in range(0, len(words), 3):
        yield " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")


def _stream_answer(
    draft: _Draft, pieces: Iterator[str | ToolCalled | ToolReturned]
) -> Iterator[Token | CitationFound | ToolCalled | ToolReturned]:
    """The answer's text as tokens, its [n] markers checked against the passages (the first retrieval's and
    those tools returned so far); each passage's citation follows the token that first cites it. Tool events
    pass through in their place. Everything sent is recorded in the draft."""
    found: list[Citation] = []

    def on_cited(number: int) -> None:
        if number not in draft.cited:
            source = draft.sources[number - 1]
            draft.cited[number] = source if isinstance(source, Citation) else Citation.of_hit(number, source)
            found.append(draft.cited[number])

    markers = MarkerFilter(valid=lambda n: 1 <= n <= len(draft.sources), on_cited=on_cited)

    def cleaned() -> Iterator[str | ToolCalled | ToolReturned]:
        for piece in pieces:
            if isinstance(piece, str):
                yield from markers.feed(piece)
            else:
                yield piece
        yield from markers.flush()

    for text in cleaned():
        if not isinstance(text, str):
            yield text
            continue
        draft.parts.append(text)
        if draft.first_token_ms is None:
            draft.first_token_ms = _elapsed_ms(draft.started)
        yield Token(text)
        while found:
            yield CitationFound(found.pop(0))


def _followups(
    mind: Mind, conversation: Conversation, question: str, answer: str, language: str, *, configured: bool
) -> tuple[str, ...]:
    """The LLM's suggestions, else the mind's suggested questions the visitor has not asked yet."""
    if configured:
        suggested = llm.suggest_followups(question, answer, language)
        if suggested:
            return tuple(suggested[:FOLLOWUPS])
    asked = {
        text.lower()
        for text in conversation.messages.filter(role=Message.Role.USER).values_list("content", flat=True)
    }
    return tuple(q for q in mind.suggested_questions if q.strip().lower() not in asked)[:FOLLOWUPS]


def _save_answer(
    question: Message, draft: _Draft, followups: tuple[str, ...], recorder: TurnRecorder
) -> TurnResult:
    content = draft.content
    citations = draft.citations
    # Without a provider's count (extractive answers, servers that omit usage), words stand in for tokens.
    usage = Usage(draft.usage.prompt_tokens, draft.usage.completion_tokens or len(content.split()))
    latency_ms = _elapsed_ms(draft.started)
    client_calls = tuple(call.as_openai() for call in draft.session.client_calls)
    # The answer takes the turn's last step, after its tool calls and results.
    answer = recorder.save(
        role=Message.Role.ASSISTANT,
        content=content,
        citations=[c.as_json() for c in citations],
        followups=list(followups),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_ms=latency_ms,
        tool_calls=list(client_calls),
    )
    return TurnResult(
        conversation_id=question.conversation_id,
        message_id=answer.id,
        turn=answer.turn,
        content=content,
        citations=citations,
        followups=followups,
        usage=usage,
        model=draft.model,
        latency_ms=latency_ms,
        time_to_first_token_ms=draft.first_token_ms,
        created_at=answer.created_at,
        tool_messages=tuple(draft.session.exchange),
        tool_calls=client_calls,
        tool_limit=draft.session.limit,
    )


def _save_interrupted(question: Message, draft: _Draft, recorder: TurnRecorder) -> None:
    recorder.save(
        role=Message.Role.ASSISTANT,
        content=draft.content,
        citations=[c.as_json() for c in draft.citations],
        status=Message.Status.INTERRUPTED,
        latency_ms=_elapsed_ms(draft.started),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
