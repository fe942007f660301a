"""Contract: the requests a TypingMind client sends for characters, chat and chat logs — the TypingMind OpenAPI's
examples verbatim (seeds/001: the chat/completions example, the chatlogs example times; reference/seed-apis.md
§B.3 for the agent chat), with the character id replaced by a real mind's — replayed with `X-API-KEY` over HTTP
against a live server, checking the documented shapes. The stream is read as Server-Sent Events, chunk by chunk."""

import json
from datetime import UTC, datetime

import httpx
import pytest

from accounts.models import Group
from conversations.models import Conversation
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import make_key
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db(transaction=True)

# seeds/001, `/chat/completions` → requestBody → example, verbatim.
SEED_COMPLETION = {
    "model": "gpt-3.5-turbo",
    "stream": True,
    "messages": [
        {"role": "system", "content": "You are a helpful AI assistant."},
        {"role": "user", "content": "hi"},
    ],
}
CHARACTER_KEYS = {"id", "title", "description", "instruction", "defaultModel", "createdAt"}
CHATLOG_KEYS = {
    "chatID",
    "chatTitle",
    "createdAt",
    "recordedAt",
    "conversationText",
    "userID",
    "model",
    "agents",
    "plugins",
}
NO_ACCESS = {
    "userMessage": "You do not have access to this agent. Please contact your admin for more information."
}


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Atlas",
        slug="atlas-contract",
        headline="Lighthouses and volcanoes",
        system_prompt="You are Atlas.",
    )
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    return mind


@pytest.fixture
def typingmind(live_server, workspace):
    """An HTTP client configured as TypingMind documents: its API host and the key in `X-API-KEY`."""
    with httpx.Client(
        base_url=f"{live_server.url}/api",
        headers={"X-API-KEY": make_key(workspace, scopes="all")},
        timeout=60,
    ) as client:
        yield client


def sse_chunks(response: httpx.Response) -> list:
    """The `data:` payloads of a Server-Sent Events stream, each parsed as it arrives; `[DONE]` kept as is."""
    chunks = []
    for line in response.iter_lines():
        if not line:
            continue
        assert line.startswith("data: "), line
        payload = line[len("data: ") :]
        chunks.append(payload if payload == "[DONE]" else json.loads(payload))
    return chunks


def test_ai_characters_lists_the_minds(typingmind, mind):
    response = typingmind.get("/v1/ai-characters")
    assert response.status_code == 200
    (character,) = response.json()["data"]
    assert set(character) == CHARACTER_KEYS
    assert (character["id"], character["title"], character["description"], character["instruction"]) == (
        mind.id,
        "Atlas",
        "Lighthouses and volcanoes",
        "You are Atlas.",
    )
    assert all(isinstance(character[key], str) for key in CHARACTER_KEYS)


def test_the_seed_chat_completion_streams_openai_chunks(typingmind, mind):
    body = {**SEED_COMPLETION, "activatedCharacterID": mind.id}
    with typingmind.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = sse_chunks(response)
    assert chunks[-1] == "[DONE]"
    events = chunks[:-1]
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == mind.slug for e in events)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text.strip()
    final = events[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and isinstance(final["citations"], list)
    assert final["usage"]["total_tokens"] >= final["usage"]["completion_tokens"] > 0
    assert len({e["id"] for e in events}) == 1 and events[0]["id"].startswith("chatcmpl-")


def test_the_seed_chat_completion_reaches_the_llm_with_its_system_message(typingmind, mind, settings):
    body = {**SEED_COMPLETION, "activatedCharacterID": mind.slug}
    body["messages"] = [*body["messages"][:1], {"role": "user", "content": "Who invented the Fresnel lens?"}]
    with FakeLLM("Augustin Fresnel [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        with typingmind.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            chunks = sse_chunks(response)
        answer_request = [r for r in fake.requests if r.get("stream")][-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == "Augustin Fresnel [1]."
    assert [c["index"] for c in chunks[-2]["citations"]] == [1]
    assert chunks[-2]["citations"][0]["sourceName"] == "Lighthouses"
    system = answer_request["messages"][0]["content"]
    assert system.startswith("You are Atlas.") and "You are a helpful AI assistant." in system


def test_agent_chat_is_stateless_and_continues_with_the_returned_messages(typingmind, mind):
    first = typingmind.post(
        f"/v2/agents/{mind.id}/chat",
        json={"messages": [{"role": "user", "content": "Who invented the Fresnel lens?"}]},
    )
    assert first.status_code == 200
    (answer,) = first.json()["messages"]
    assert answer["role"] == "assistant" and "Fresnel" in answer["content"]
    assert answer["citations"][0]["sourceName"] == "Lighthouses"
    # As documented: append the returned messages to the next request's messages.
    second = typingmind.post(
        f"/v2/agents/{mind.id}/chat",
        json={
            "messages": [
                {"role": "user", "content": "Who invented the Fresnel lens?"},
                *first.json()["messages"],
                {"role": "user", "content": [{"type": "text", "text": "How tall is Mount Etna?"}]},
            ]
        },
    )
    assert second.status_code == 200
    assert "3,357" in second.json()["messages"][0]["content"]
    assert Conversation.objects.filter(channel="agent").count() == 2


def test_agent_chat_errors_are_typingminds(live_server, typingmind, workspace, mind):
    hi = {"messages": [{"role": "user", "content": "hi"}]}
    invalid = typingmind.post(f"/v2/agents/{mind.id}/chat", json={"messages": []})
    assert invalid.status_code == 400 and invalid.json()["userMessage"] == "Invalid request"
    missing = typingmind.post("/v2/agents/mind_missing/chat", json=hi)
    assert (missing.status_code, missing.json()) == (404, {"userMessage": "Agent not found"})
    staff = Group.objects.create(workspace=workspace, name="Staff")
    Mind.objects.filter(id=mind.id).update(visibility="groups", allowed_group_ids=[staff.id])
    denied = typingmind.post(f"/v2/agents/{mind.id}/chat", json=hi)
    assert (denied.status_code, denied.json()) == (403, NO_ACCESS)
    assert typingmind.get("/v1/ai-characters").json() == {"data": []}
    anonymous = httpx.post(f"{live_server.url}/api/v2/agents/{mind.id}/chat", json=hi)
    assert (anonymous.status_code, anonymous.json()) == (
        401,
        {"userMessage": "Unauthorized (API Key is missing or invalid)"},
    )


def test_chatlogs_with_the_seeds_example_times(typingmind, mind):
    asked = typingmind.post(
        f"/v2/agents/{mind.id}/chat",
        json={"messages": [{"role": "user", "content": "Who invented the lens?"}]},
    )
    assert asked.status_code == 200
    # Recorded exactly at the seed's example time, 1640995200 (2022-01-01T00:00:00Z).
    Conversation.objects.update(created_at=datetime(2022, 1, 1, tzinfo=UTC))
    response = typingmind.get("/v1/chatlogs", params={"startUnixTime": 1640995200, "endUnixTime": 1640995200})
    assert response.status_code == 200
    (log,) = response.json()["data"]
    assert CHATLOG_KEYS <= set(log)
    assert log["createdAt"] == "2022-01-01T00:00:00Z" and log["agents"] == ["Atlas"] and log["plugins"] == []
    assert log["conversationText"].startswith("User: Who invented the lens?\n\nAssistant: ")
    assert log["model"] == "extractive" and isinstance(log["userID"], str)
    # `number`, as the spec types it: a fractional start after the chat leaves it out.
    later = typingmind.get("/v1/chatlogs", params={"startUnixTime": 1640995200.5})
    assert later.status_code == 200 and later.json()["data"] == []
    assert len(typingmind.get("/v1/chatlogs").json()["data"]) == 1
