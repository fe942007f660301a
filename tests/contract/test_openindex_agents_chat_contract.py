"""Contract: the requests an OpenIndex client sends to /api/agents and /api/chat — the OpenIndex documentation's
examples verbatim (its chat page, seeds/003, and the agent fields of its agents page), with the placeholder ids
replaced by real ones — replayed over HTTP against a live server, checking the documented response keys."""

import json

import httpx
import pytest

from knowledge.services import collection_create
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import make_key
from tests.test_openindex_chat import TIDES, ready_collection_source
from tests.test_search import LIGHTHOUSES

pytestmark = pytest.mark.django_db(transaction=True)

# The documented response objects (seeds/003 and the agents reference).
CHAT_ANSWER_KEYS = {
    "ok",
    "message",
    "error",
    "sources",
    "followup",
    "context",
    "chatId",
    "agentId",
    "collectionId",
}
CHAT_KEYS = {
    "id",
    "userId",
    "createdAt",
    "updatedAt",
    "agentId",
    "collectionId",
    "status",
    "current",
    "auto",
    "tools",
}
AGENT_KEYS = {
    "id",
    "slug",
    "name",
    "description",
    "image",
    "privacy",
    "namespace",
    "prompt",
    "isAutonomous",
    "welcome",
    "model",
    "params",
    "tools",
    "userId",
    "createdAt",
    "updatedAt",
    "status",
    "collections",
}
PARAMS_KEYS = {"temperature", "topP", "frequencePenalty", "presencePenalty"}

# seeds/003, "Send a message to an AI agent or collection": the request body as documented.
SEED_CHAT_BODY = {
    "chatId": "text",
    "agentId": "text",
    "collectionId": "text",
    "message": "text",
    "streaming": True,
    "tools": [{"id": "text", "checked": True}],
    "model": "gpt-3.5-turbo",
    "lastUploadedFile": "text",
    "language": "en",
}


@pytest.fixture
def server(live_server, workspace):
    """An httpx client as an OpenIndex client: `Authorization: Bearer <token>`, `Accept: */*`."""
    with httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {make_key(workspace, scopes='all')}", "Accept": "*/*"},
        timeout=120,
    ) as client:
        yield client


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-contract")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


@pytest.fixture
def collection(workspace):
    collection = collection_create(workspace=workspace, name="Harbour tides")
    ready_collection_source(collection, "Tide tables", TIDES)
    return collection


def assert_chat_answer(answer: dict) -> None:
    assert set(answer) == CHAT_ANSWER_KEYS, answer
    assert answer["ok"] is True and answer["error"] is None
    assert isinstance(answer["message"], str) and answer["message"]
    assert isinstance(answer["sources"], list) and all(isinstance(s, str) for s in answer["sources"])
    assert isinstance(answer["followup"], dict) and isinstance(answer["context"], dict)
    assert isinstance(answer["chatId"], str)


def test_agents_create_update_and_list_as_documented(server, workspace, collection):
    created = server.post(
        "/api/agents",
        json={
            "name": "Harbour Guide",
            "description": "Knows the harbour",
            "image": "https://img.example.com/guide.png",
            "privacy": "public",
            "isAutonomous": False,
            "prompt": "You are the harbour guide.",
            "welcome": "Ask me about the harbour.",
            "model": "gpt-3.5-turbo",
            "params": {"temperature": 0.5, "topP": 1, "frequencePenalty": 0, "presencePenalty": 0},
            "tools": [{"id": "text", "checked": True}],
            "collections": [collection.id],
        },
    )
    assert created.status_code == 200, created.text
    assert set(created.json()) == {"ok", "agentId"} and created.json()["ok"] is True
    agent_id = created.json()["agentId"]

    updated = server.post(
        "/api/agents", json={"id": agent_id, "description": "Knows the harbour and its tides"}
    )
    assert updated.status_code == 200 and updated.json() == {"ok": True, "agentId": agent_id}

    listed = server.get("/api/agents")
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
    body = listed.json()
    assert set(body) == {"ok", "agents"} and body["ok"] is True
    [agent] = body["agents"]
    assert set(agent) == AGENT_KEYS and set(agent["params"]) == PARAMS_KEYS
    assert agent["id"] == agent_id and agent["description"] == "Knows the harbour and its tides"
    assert agent["privacy"] == "public" and agent["collections"] == [collection.id]
    assert agent["tools"] == [{"id": "text", "checked": True}]
    assert isinstance(agent["createdAt"], int) and isinstance(agent["updatedAt"], int)


def test_agent_errors_as_documented(server, workspace):
    invalid = server.post("/api/agents", json={"name": "Ok", "description": "x" * 201})
    assert invalid.status_code == 400 and invalid.json() == {"ok": False, "error": "invalid description"}
    nameless = server.post("/api/agents", json={"description": "No name"})
    assert nameless.status_code == 400 and nameless.json() == {"ok": False, "error": "invalid name"}
    workspace.minds_limit = 0
    workspace.save()
    over = server.post("/api/agents", json={"name": "One too many"})
    assert over.status_code == 403 and over.json() == {"ok": False, "error": "exceeded agent allowance"}


def test_the_documented_chat_requests(server, mind, collection):
    # A new chat: "Enter null to create a new conversation".
    started = server.post(
        "/api/chat",
        json={
            **SEED_CHAT_BODY,
            "chatId": None,
            "agentId": mind.id,
            "collectionId": collection.id,
            "message": "How high do the spring tides rise at the quay?",
            "streaming": False,
        },
    )
    assert started.status_code == 200, started.text
    answer = started.json()
    assert_chat_answer(answer)
    assert (answer["agentId"], answer["collectionId"]) == (mind.id, collection.id)
    assert answer["sources"] == ["Tide tables"]

    # The documented example itself (streaming: true), its placeholder ids replaced by that chat's.
    replay = {**SEED_CHAT_BODY, "chatId": answer["chatId"], "agentId": mind.id, "collectionId": collection.id}
    with server.stream("POST", "/api/chat", json=replay) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[0] == {
        "type": "start",
        "chatId": answer["chatId"],
        "agentId": mind.id,
        "collectionId": collection.id,
    }
    assert {line["type"] for line in lines[1:-1]} <= {"token", "source"}
    done = lines[-1]
    assert done["type"] == "done"
    assert_chat_answer({k: v for k, v in done.items() if k != "type"})
    assert done["chatId"] == answer["chatId"]

    # "Retrieve user chats", as documented (no query parameters), then filtered by the agent.
    general = server.get("/api/chat")
    assert general.status_code == 200 and general.json() == {"ok": True, "chats": []}
    listed = server.get("/api/chat", params={"agent_id": mind.id, "limit": 10})
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) == {"ok", "chats"} and body["ok"] is True
    [chat] = body["chats"]
    assert set(chat) == CHAT_KEYS
    assert chat["id"] == answer["chatId"] and (chat["agentId"], chat["collectionId"]) == (
        mind.id,
        collection.id,
    )
    assert isinstance(chat["createdAt"], int) and isinstance(chat["updatedAt"], int)
    assert isinstance(chat["status"], str) and chat["auto"] == {} and isinstance(chat["tools"], list)
    assert [m["role"] for m in chat["current"]] == ["user", "assistant", "user", "assistant"]


def test_a_general_chat_and_the_documented_errors(server, live_server, collection):
    general = server.post("/api/chat", json={"chatId": None, "message": "Hello, who are you?"})
    assert general.status_code == 200
    assert_chat_answer(general.json())
    [chat] = server.get("/api/chat").json()["chats"]
    assert chat["id"] == general.json()["chatId"]

    missing = server.post("/api/chat", json={"chatId": "conv_nope", "message": "hi"})
    assert missing.status_code == 404 and missing.json() == {"ok": False, "error": "Chat not found."}
    invalid = server.post("/api/chat", json={"collectionId": collection.id})
    assert invalid.status_code == 400 and invalid.json()["ok"] is False
    unauthenticated = httpx.post(f"{live_server.url}/api/chat", json={"message": "hi"}, timeout=30)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["ok"] is False
