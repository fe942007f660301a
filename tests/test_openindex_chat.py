"""OpenIndex chat, `POST /api/chat` and `GET /api/chat`: one chat service on the `openindex` channel, answers in
OpenIndex's shape (JSON, or JSON Lines parsed line by line), chats with agents, collections and the general
agent, and the access rules of every surface (docs/openindex.md)."""

import json

import pytest
from django.utils import timezone

from accounts.models import Group
from apikeys.models import ApiKey
from conversations.models import Conversation, Message
from knowledge.extractors.base import Extracted, Segment
from knowledge.indexing import source_index
from knowledge.models import Source
from knowledge.services import collection_create, mind_collections_set, source_create
from knowledge.source_states import source_claim
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import KeyedClient, make_key, wait_for
from tests.test_openindex_agents import assert_openindex_error
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db

ANSWER_KEYS = {
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
TIDES = [
    "The harbour's spring tides rise 4.2 metres at the granite quay, twice a lunar month, when the sun and moon align.",
    "Neap tides at the quay rise only 1.1 metres; the harbour master posts the tide tables at the ferry office.",
]


def ready_collection_source(collection, name: str, paragraphs: list[str]) -> Source:
    """A `ready` source of a collection, indexed by the real indexing code (as tests.corpus_minds does for minds)."""
    source = Source.objects.create(
        workspace_id=collection.workspace_id,
        collection=collection,
        type="text",
        name=name,
        content="\n\n".join(paragraphs),
        queued_at=timezone.now(),
    )
    claim = source_claim(source.id)
    extracted = Extracted(segments=[Segment(p) for p in paragraphs], title=name)
    assert source_index(claim=claim, source=source, extracted=extracted)
    return source


def key_of(workspace, *, scopes="all", group=None, **kwargs) -> KeyedClient:
    plaintext = make_key(workspace, scopes=scopes, **kwargs)
    if group is not None:
        ApiKey.objects.get(last4=plaintext[-4:]).member.groups.add(group)
    return KeyedClient(plaintext)


def member_of(client: KeyedClient):
    return ApiKey.objects.get(last4=client.key[-4:]).member


def send(client, **body):
    response = client.post("/api/chat", body)
    assert response.status_code == 200, response.json()
    data = response.json()
    assert set(data) == ANSWER_KEYS and data["ok"] is True and data["error"] is None, data
    return data


def stream_lines(response) -> list[dict]:
    """The JSON Lines body, one object per line, each line parsed on its own."""
    assert response["Content-Type"].startswith("application/x-ndjson")
    raw = b"".join(response.streaming_content).decode()
    assert raw.endswith("\n")
    lines = raw.split("\n")[:-1]
    assert all(line.strip() for line in lines), raw
    return [json.loads(line) for line in lines]


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-oi")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES, url="https://volcanoes.example.com/etna")
    return mind


@pytest.fixture
def tides(workspace):
    collection = collection_create(workspace=workspace, name="Harbour tides")
    ready_collection_source(collection, "Tide tables", TIDES)
    return collection


# --- POST /api/chat ---


def test_chat_with_an_agent_answers_with_sources_context_and_a_new_chat(api, mind):
    data = send(api, chatId=None, agentId=mind.id, message="Who invented the Fresnel lens for lighthouses?")
    assert "Fresnel" in data["message"]
    assert data["sources"] == ["Lighthouses"]
    [citation] = data["context"]["citations"]
    assert citation["sourceName"] == "Lighthouses" and "Fresnel" in citation["snippet"]
    assert {"index", "sourceId", "chunkId", "snippet", "url", "page", "startSeconds"} <= set(citation)
    assert set(data["followup"]) == {"questions"}
    assert (data["agentId"], data["collectionId"]) == (mind.id, None)
    chat = Conversation.objects.get(id=data["chatId"])
    assert (chat.mind_id, chat.channel, chat.collection_id) == (mind.id, "openindex", None)
    assert chat.member == member_of(api)
    assert [m.role for m in chat.messages.order_by("created_at")] == ["user", "assistant"]


def test_sources_are_the_cited_urls_or_names(api, mind):
    data = send(api, agentId=mind.slug, message="How tall is Mount Etna?")
    assert data["sources"] == ["https://volcanoes.example.com/etna"]
    assert data["context"]["citations"][0]["url"] == "https://volcanoes.example.com/etna"


def test_a_chat_id_continues_the_chat(api, mind):
    first = send(api, agentId=mind.id, message="Who invented the Fresnel lens?")
    second = send(api, chatId=first["chatId"], message="How tall is Mount Etna?")
    assert second["chatId"] == first["chatId"] and second["agentId"] == mind.id
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().messages.count() == 4
    # The agent sent again beside its chat is fine; another one is not.
    send(api, chatId=first["chatId"], agentId=mind.id, message="And the lens rings?")
    other = Mind.objects.create(workspace=mind.workspace, name="Other", slug="other-oi-chat")
    error = assert_openindex_error(
        api.post("/api/chat", {"chatId": first["chatId"], "agentId": other.id, "message": "hi"}), 400
    )
    assert error.startswith("invalid agentId")
    assert Conversation.objects.get().messages.count() == 6


def test_unknown_and_foreign_chats_agents_and_collections_are_404_and_nothing_is_written(
    api, other_api, mind, other_workspace
):
    foreign_mind = Mind.objects.create(workspace=other_workspace, name="Theirs", slug="theirs-oi")
    foreign_collection = collection_create(workspace=other_workspace, name="Their notes")
    theirs = send(other_api, agentId=foreign_mind.id, message="Anything?")
    native = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Etna?"}).json()["conversationId"]
    before = Message.objects.count()
    for body, error in [
        ({"chatId": "conv_missing"}, "Chat not found."),
        ({"chatId": theirs["chatId"]}, "Chat not found."),
        ({"chatId": native}, "Chat not found."),  # a native API conversation is not an OpenIndex chat
        ({"agentId": "mind_missing"}, "Agent not found."),
        ({"agentId": foreign_mind.id}, "Agent not found."),
        ({"collectionId": "col_missing"}, "Collection not found."),
        ({"collectionId": foreign_collection.id}, "Collection not found."),
    ]:
        assert_openindex_error(api.post("/api/chat", {**body, "message": "hello?"}), 404, error)
    assert Message.objects.count() == before
    assert not Mind.objects.filter(workspace=mind.workspace, is_default_agent=True).exists()


def test_without_agent_or_collection_the_general_agent_answers_with_its_own_knowledge(api, workspace, mind):
    data = send(api, chatId=None, message="Who invented the Fresnel lens?")
    general = Mind.objects.get(workspace=workspace, is_default_agent=True)
    assert general.name == "Jack Of All Trades"
    assert (data["agentId"], data["collectionId"]) == (general.id, None)
    # The general agent has no knowledge of its own here: Atlas's sources are not its.
    assert data["sources"] == [] and data["context"] == {"citations": []}
    assert Conversation.objects.get(id=data["chatId"]).mind == general
    again = send(api, message="Anything else?")
    assert again["agentId"] == general.id and again["chatId"] != data["chatId"]
    assert Mind.objects.filter(workspace=workspace, is_default_agent=True).count() == 1
    assert general.id in {a["id"] for a in api.get("/api/agents").json()["agents"]}


def test_a_chat_with_a_collection_searches_only_that_collection(api, workspace, mind, tides):
    data = send(api, collectionId=tides.id, message="How high do the spring tides rise at the quay?")
    assert "4.2 metres" in data["message"]
    assert data["sources"] == ["Tide tables"]
    assert (data["agentId"], data["collectionId"]) == (None, tides.id)
    chat = Conversation.objects.get(id=data["chatId"])
    assert chat.mind.is_default_agent and chat.collection == tides
    # The chat keeps its collection: a later turn searches it again, and not Atlas's knowledge.
    later = send(api, chatId=data["chatId"], message="Who invented the Fresnel lens?")
    assert later["collectionId"] == tides.id and "Lighthouses" not in later["sources"]
    # By slug too.
    assert send(api, collectionId=tides.slug, message="neap tides quay?")["collectionId"] == tides.id


def test_an_agent_cites_a_collection_only_when_it_is_attached(api, mind, tides):
    question = "How high do the spring tides rise at the quay?"
    assert "Tide tables" not in send(api, agentId=mind.id, message=question)["sources"]
    mind_collections_set(mind=mind, collection_ids=[tides.id])
    assert send(api, agentId=mind.id, message=question)["sources"] == ["Tide tables"]


def test_agent_and_collection_together_give_the_agents_persona_over_that_collection_only(api, mind, tides):
    data = send(api, agentId=mind.id, collectionId=tides.id, message="Who invented the Fresnel lens?")
    assert (data["agentId"], data["collectionId"]) == (mind.id, tides.id)
    assert "Lighthouses" not in data["sources"]
    chat = Conversation.objects.get(id=data["chatId"])
    assert (chat.mind, chat.collection) == (mind, tides)
    tide = send(
        api, chatId=data["chatId"], agentId=mind.id, collectionId=tides.id, message="spring tides quay?"
    )
    assert tide["sources"] == ["Tide tables"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 4001}, "message"),
        ({"message": "hi", "language": "english please"}, "language"),
        ({"message": "hi", "streaming": "sometimes"}, "streaming"),
        ({"message": "hi", "tools": [{"id": "web"}]}, "tools[0].checked"),
        ({"message": "hi", "chatId": ["x"]}, "chatId"),
        ({"message": "hi", "temperature": 0.2}, "temperature"),
    ],
)
def test_invalid_input_is_400_naming_the_field_and_nothing_is_written(api, mind, body, field):
    error = assert_openindex_error(api.post("/api/chat", {"agentId": mind.id, **body}), 400)
    assert error.startswith(f"invalid {field}: "), error
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_a_group_only_agent_is_403_for_outsiders_and_its_chats_are_not_listed(workspace, mind):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    mind.visibility, mind.allowed_group_ids = "groups", [staff.id]
    mind.save()
    outsider, insider = key_of(workspace), key_of(workspace, group=staff)
    error = assert_openindex_error(
        outsider.post("/api/chat", {"agentId": mind.id, "message": "Fresnel lens?"}), 403
    )
    assert "access to this agent" in error
    assert not Conversation.objects.exists()
    chat = send(insider, agentId=mind.id, message="Who invented the Fresnel lens?")
    # Continuing the insider's chat is 404 for the outsider: the chat does not exist for them.
    assert_openindex_error(outsider.post("/api/chat", {"chatId": chat["chatId"], "message": "more?"}), 404)
    assert Conversation.objects.get().messages.count() == 2
    assert_openindex_error(outsider.get("/api/chat", {"agent_id": mind.id}), 403)
    assert [c["id"] for c in insider.get("/api/chat", {"agent_id": mind.id}).json()["chats"]] == [
        chat["chatId"]
    ]


def test_a_group_only_agents_collection_chats_are_not_listed_for_outsiders(workspace, mind, tides):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    mind.visibility, mind.allowed_group_ids = "groups", [staff.id]
    mind.save()
    outsider, insider = key_of(workspace), key_of(workspace, group=staff)
    hidden = send(insider, agentId=mind.id, collectionId=tides.id, message="spring tides?")
    shown = send(outsider, collectionId=tides.id, message="neap tides?")
    assert {c["id"] for c in insider.get("/api/chat", {"collection_id": tides.id}).json()["chats"]} == {
        hidden["chatId"],
        shown["chatId"],
    }
    assert [c["id"] for c in outsider.get("/api/chat", {"collection_id": tides.id}).json()["chats"]] == [
        shown["chatId"]
    ]


def test_a_mind_restricted_key_chats_only_with_its_agents(workspace, mind, tides):
    restricted = key_of(workspace, allowed_mind_ids=[mind.id])
    assert send(restricted, agentId=mind.id, message="Fresnel lens?")["agentId"] == mind.id
    error = assert_openindex_error(restricted.post("/api/chat", {"message": "hello"}), 403)
    assert "agentId" in error
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-restricted-oi")
    assert_openindex_error(restricted.post("/api/chat", {"agentId": other.id, "message": "hello"}), 404)
    # A collection not attached to its minds is out of its reach.
    assert_openindex_error(
        restricted.post("/api/chat", {"agentId": mind.id, "collectionId": tides.id, "message": "tides?"}), 404
    )
    assert Conversation.objects.count() == 1


def test_auth_scopes_and_rate_limit(workspace, mind, anon, settings):
    assert_openindex_error(anon.post("/api/chat", {"message": "hi"}, content_type="application/json"), 401)
    assert_openindex_error(anon.get("/api/chat"), 401)
    reader = key_of(workspace, scopes=["conversations:read"])
    assert_openindex_error(reader.post("/api/chat", {"agentId": mind.id, "message": "hi"}), 403)
    chatter = key_of(workspace, scopes=["minds:chat"])
    assert_openindex_error(chatter.get("/api/chat"), 403)
    assert reader.get("/api/chat").status_code == 200
    assert not Conversation.objects.exists()
    settings.RATE_LIMIT_PER_MINUTE = 1
    send(chatter, agentId=mind.id, message="Fresnel lens?")
    limited = chatter.post("/api/chat", {"agentId": mind.id, "message": "again"})
    assert_openindex_error(limited, 403)
    assert int(limited["Retry-After"]) >= 1
    assert Message.objects.count() == 2


# --- Streaming: JSON Lines ---


def test_streaming_gives_json_lines_start_tokens_sources_and_done(api, mind):
    response = api.post(
        "/api/chat", {"agentId": mind.id, "message": "Who invented the Fresnel lens?", "streaming": True}
    )
    assert response.status_code == 200 and response["X-Accel-Buffering"] == "no"
    lines = stream_lines(response)
    start, *middle, done = lines
    chat = Conversation.objects.get()
    assert start == {"type": "start", "chatId": chat.id, "agentId": mind.id, "collectionId": None}
    tokens = [line for line in middle if line["type"] == "token"]
    sources = [line for line in middle if line["type"] == "source"]
    assert {line["type"] for line in middle} == {"token", "source"}
    assert all(set(line) == {"type", "token"} for line in tokens) and len(tokens) > 1
    assert [s["source"] for s in sources] == ["Lighthouses"]
    assert (
        set(sources[0]) == {"type", "source", "citation"} and "Fresnel" in sources[0]["citation"]["snippet"]
    )
    # A source line follows the token that first cites it.
    assert lines.index(sources[0]) > lines.index(tokens[0])
    assert done["type"] == "done" and set(done) == ANSWER_KEYS | {"type"}
    assert done["ok"] is True and done["error"] is None and done["chatId"] == chat.id
    assert "".join(t["token"] for t in tokens).strip() == done["message"]
    assert done["sources"] == ["Lighthouses"] and done["context"]["citations"] == [sources[0]["citation"]]
    assert chat.messages.get(role="assistant").content == done["message"]


def test_streaming_a_collection_chat_reports_the_collection_on_every_line_that_names_it(api, tides):
    lines = stream_lines(
        api.post(
            "/api/chat", {"collectionId": tides.id, "message": "spring tides at the quay?", "streaming": True}
        )
    )
    assert (lines[0]["agentId"], lines[0]["collectionId"]) == (None, tides.id)
    assert (lines[-1]["agentId"], lines[-1]["collectionId"]) == (None, tides.id)
    assert lines[-1]["sources"] == ["Tide tables"]


def test_a_failing_model_gives_an_error_line_when_streaming_and_500_otherwise(api, mind, settings):
    with FakeLLM(fail_with=503) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        lines = stream_lines(
            api.post("/api/chat", {"agentId": mind.id, "message": "Fresnel lens?", "streaming": True})
        )
        assert lines[0]["type"] == "start"
        assert lines[-1] == {"type": "error", "ok": False, "error": "Error running the language model."}
        response = api.post("/api/chat", {"agentId": mind.id, "message": "Fresnel lens?"})
        assert_openindex_error(response, 500, "Error running the language model.")
    # The questions are kept: sending again continues the chat.
    assert Message.objects.filter(role="user").count() == 2
    assert not Message.objects.filter(role="assistant").exists()


# --- With an LLM: the agent's settings are honoured, the client's model is not ---


def test_the_agents_model_and_params_reach_the_llm_and_the_clients_model_is_ignored(api, workspace, settings):
    agent_id = api.post(
        "/api/agents",
        {
            "name": "Tuned",
            "model": "agent-model-7b",
            "prompt": "You are Tuned, a terse harbour pilot.",
            "params": {"temperature": 0.2, "topP": 0.8, "frequencePenalty": 0.4, "presencePenalty": -0.3},
        },
    ).json()["agentId"]
    ready_source(Mind.objects.get(id=agent_id), "Lighthouses", LIGHTHOUSES)
    with FakeLLM("Fresnel invented it [1]. Made up [9].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        data = send(
            api,
            agentId=agent_id,
            message="Who invented the Fresnel lens?",
            model="gpt-3.5-turbo",
            language="fr",
        )
    assert data["message"] == "Fresnel invented it [1]. Made up."
    assert data["sources"] == ["Lighthouses"] and len(data["context"]["citations"]) == 1
    assert data["followup"] == {"questions": ["What else?", "Tell me more"]}
    [answer] = [r for r in fake.requests if r.get("stream")]
    assert answer["model"] == "agent-model-7b"
    assert (
        answer["temperature"],
        answer["top_p"],
        answer["frequency_penalty"],
        answer["presence_penalty"],
    ) == (
        0.2,
        0.8,
        0.4,
        -0.3,
    )
    system = answer["messages"][0]["content"]
    assert system.startswith("You are Tuned, a terse harbour pilot.") and "Answer in fr." in system


def test_tools_and_last_uploaded_file_are_accepted(api, mind):
    data = send(
        api,
        agentId=mind.id,
        message="Who invented the Fresnel lens?",
        tools=[{"id": "web-search", "checked": True}],
        lastUploadedFile="https://files.example.com/photo.png",
        language="en",
    )
    assert data["sources"] == ["Lighthouses"]


# --- GET /api/chat ---


def test_chat_list_gives_the_documented_chat_shape(api, mind):
    data = send(api, agentId=mind.id, message="Who invented the Fresnel lens?")
    response = api.get("/api/chat", {"agent_id": mind.id})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "chats"} and body["ok"] is True
    [chat] = body["chats"]
    assert set(chat) == CHAT_KEYS
    row = Conversation.objects.get(id=data["chatId"])
    assert chat["id"] == row.id and chat["userId"] == member_of(api).id
    assert (chat["createdAt"], chat["updatedAt"]) == (
        int(row.created_at.timestamp() * 1000),
        int(row.updated_at.timestamp() * 1000),
    )
    assert (chat["agentId"], chat["collectionId"], chat["status"]) == (mind.id, None, "answered")
    assert (chat["auto"], chat["tools"]) == ({}, [])
    question, answer = chat["current"]
    assert question == {
        "id": question["id"],
        "role": "user",
        "content": "Who invented the Fresnel lens?",
        "status": "complete",
        "createdAt": question["createdAt"],
    }
    assert isinstance(question["createdAt"], int)
    assert answer["role"] == "assistant" and answer["content"] == data["message"]
    assert (answer["sources"], answer["context"], answer["followup"]) == (
        data["sources"],
        data["context"],
        data["followup"],
    )


def test_chat_list_filters_by_agent_and_collection_and_defaults_to_the_general_agent(api, mind, tides):
    with_agent = send(api, agentId=mind.id, message="Fresnel lens?")["chatId"]
    general = send(api, message="Hello there")["chatId"]
    with_collection = send(api, collectionId=tides.id, message="spring tides?")["chatId"]
    both = send(api, agentId=mind.id, collectionId=tides.id, message="neap tides?")["chatId"]
    api.post(
        f"/api/v1/minds/{mind.id}/chat", {"message": "Etna?"}
    )  # native API chats are not OpenIndex chats

    def ids(**params):
        response = api.get("/api/chat", params)
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["chats"]]

    assert ids() == [general]
    assert ids(agent_id=mind.id) == [both, with_agent]
    assert ids(collection_id=tides.id) == [both, with_collection]
    assert ids(agent_id=mind.id, collection_id=tides.id) == [both]
    general_agent = Mind.objects.get(is_default_agent=True)
    assert ids(agent_id=general_agent.id) == [general]
    assert ids(agent_id=general_agent.id, collection_id=tides.id) == [with_collection]
    assert_openindex_error(api.get("/api/chat", {"agent_id": "mind_missing"}), 404, "Agent not found.")
    assert_openindex_error(
        api.get("/api/chat", {"collection_id": "col_missing"}), 404, "Collection not found."
    )


def test_chat_list_pages_with_limit_and_start_after(api, mind):
    sent = [send(api, agentId=mind.id, message=f"Fresnel lens, question {n}?")["chatId"] for n in range(5)]
    first = api.get("/api/chat", {"agent_id": mind.id, "limit": 2}).json()["chats"]
    assert [c["id"] for c in first] == sent[::-1][:2]
    second = api.get(
        "/api/chat", {"agent_id": mind.id, "limit": 2, "start_after": first[-1]["updatedAt"]}
    ).json()["chats"]
    assert [c["id"] for c in second] == sent[::-1][2:4]
    # A continued chat moves to the top: the list is by last activity.
    send(api, chatId=sent[0], message="And the rings?")
    assert api.get("/api/chat", {"agent_id": mind.id, "limit": 1}).json()["chats"][0]["id"] == sent[0]
    for params in ({"limit": 0}, {"limit": 101}, {"start_after": "yesterday"}, {"start_after": -1}):
        assert assert_openindex_error(api.get("/api/chat", params), 400).startswith("invalid ")


def test_include_empty_lists_chats_without_messages(api, workspace, mind):
    answered = send(api, agentId=mind.id, message="Fresnel lens?")["chatId"]
    empty = Conversation.objects.create(workspace=workspace, mind=mind, channel="openindex")
    assert [c["id"] for c in api.get("/api/chat", {"agent_id": mind.id}).json()["chats"]] == [answered]
    chats = api.get("/api/chat", {"agent_id": mind.id, "include_empty": "true"}).json()["chats"]
    assert [c["id"] for c in chats] == [empty.id, answered]
    assert (chats[0]["status"], chats[0]["current"], chats[0]["userId"]) == ("empty", [], None)


def test_chat_list_shows_an_unanswered_question(api, mind, settings):
    with FakeLLM(fail_with=500) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        api.post("/api/chat", {"agentId": mind.id, "message": "Fresnel lens?"})
    [chat] = api.get("/api/chat", {"agent_id": mind.id}).json()["chats"]
    assert chat["status"] == "unanswered" and [m["role"] for m in chat["current"]] == ["user"]


def test_chat_list_never_shows_another_workspaces_chats(api, other_api, mind, other_workspace):
    theirs = Mind.objects.create(workspace=other_workspace, name="Theirs", slug="theirs-list-oi")
    send(other_api, agentId=theirs.id, message="Anything?")
    send(other_api, message="Hello")
    send(api, agentId=mind.id, message="Fresnel lens?")
    assert api.get("/api/chat").json()["chats"] == []
    assert_openindex_error(api.get("/api/chat", {"agent_id": theirs.id}), 404)
    assert [c["agentId"] for c in api.get("/api/chat", {"agent_id": mind.id}).json()["chats"]] == [mind.id]


# --- End to end: a collection's source processed by the real worker ---


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_collection_source_processed_by_the_worker_is_cited_in_a_collection_chat(
    api, workspace, celery_worker
):
    collection = collection_create(workspace=workspace, name="Quay notes")
    source = source_create(collection=collection, kind="text", name="Quay notes", content="\n\n".join(TIDES))
    wait_for(
        lambda: Source.objects.get(id=source.id).status in ("ready", "failed"),
        timeout=120,
        what="the collection's source to be processed",
    )
    source.refresh_from_db()
    assert source.status == "ready", (source.error_code, celery_worker.log_text())
    assert source.chunks.filter(collection=collection).exists()

    data = send(api, collectionId=collection.id, message="How high do the spring tides rise at the quay?")
    assert "4.2 metres" in data["message"] and data["sources"] == ["Quay notes"]
    assert data["context"]["citations"][0]["sourceId"] == source.id

    without = Mind.objects.create(workspace=workspace, name="Without", slug="without-quay-oi")
    plain = send(api, agentId=without.id, message="How high do the spring tides rise at the quay?")
    assert plain["sources"] == [] and plain["context"]["citations"] == []
