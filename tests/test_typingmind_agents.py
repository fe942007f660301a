"""TypingMind's AI characters, stateless agent chat and chat logs, with `X-API-KEY`: exact shapes, auth, workspace
isolation, the group restriction (TypingMind's exact 403 body) and offline extractive answers with citations."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Group
from apikeys.models import ApiKey
from conversations.models import Conversation, Message
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import KeyedClient, make_key
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"userMessage": "Unauthorized (API Key is missing or invalid)"}
NO_ACCESS = {
    "userMessage": "You do not have access to this agent. Please contact your admin for more information."
}
AGENT_NOT_FOUND = {"userMessage": "Agent not found"}
CHARACTER_FIELDS = {"id", "title", "description", "instruction", "defaultModel", "createdAt"}
CHATLOG_FIELDS = {
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


class TypingMindClient(KeyedClient):
    """Sends the key as TypingMind clients do, in `X-API-KEY`."""

    def _headers(self, headers):
        merged = dict(headers or {})
        if self.key:
            merged.setdefault("X-API-KEY", self.key)
        return merged


def tm_client(workspace, scopes="all", group=None, **kwargs) -> TypingMindClient:
    key = make_key(workspace, scopes=scopes, **kwargs)
    if group is not None:
        ApiKey.objects.get(last4=key[-4:]).member.groups.add(group)
    return TypingMindClient(key)


@pytest.fixture
def tm(workspace):
    return tm_client(workspace)


@pytest.fixture
def atlas(workspace):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Atlas",
        slug="atlas-agent",
        headline="Knows lighthouses and volcanoes",
        system_prompt="You are Atlas, a patient geographer.",
    )
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    return mind


@pytest.fixture
def staff(workspace):
    return Group.objects.create(workspace=workspace, name="Staff")


@pytest.fixture
def archive(workspace, staff):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Archive",
        slug="archive-agent",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    ready_source(mind, "Archive notes", ["The vault combination is kept in the keeper's red notebook."])
    return mind


def agent_chat(client, agent_id, messages):
    return client.post(f"/api/v2/agents/{agent_id}/chat", {"messages": messages})


# Characters -------------------------------------------------------------------------------------------------------


def test_characters_are_the_minds_in_typingminds_shape(tm, atlas, workspace):
    Mind.objects.create(workspace=workspace, name="Beacon", slug="beacon-agent", model="gpt-4o")
    response = tm.get("/api/v1/ai-characters")
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert set(response.json()) == {"data"}
    assert [c["title"] for c in data] == ["Atlas", "Beacon"]
    assert all(set(c) == CHARACTER_FIELDS for c in data)
    assert data[0] == {
        "id": atlas.id,
        "title": "Atlas",
        "description": "Knows lighthouses and volcanoes",
        "instruction": "You are Atlas, a patient geographer.",
        "defaultModel": "extractive",  # no LLM configured: answers come from the passages
        "createdAt": atlas.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_characters_name_the_model_that_answers_when_an_llm_is_configured(tm, atlas, workspace, settings):
    Mind.objects.create(workspace=workspace, name="Beacon", slug="beacon-agent", model="gpt-4o")
    settings.OPENAI_API_KEY = "sk-test"
    settings.LLM_MODEL = "llama-3.1-8b"
    models = {c["title"]: c["defaultModel"] for c in tm.get("/api/v1/ai-characters").json()["data"]}
    assert models == {"Atlas": "llama-3.1-8b", "Beacon": "gpt-4o"}


def test_characters_leave_out_group_only_minds_for_outsiders(workspace, staff, atlas, archive):
    outsider = tm_client(workspace)
    assert [c["id"] for c in outsider.get("/api/v1/ai-characters").json()["data"]] == [atlas.id]
    insider = tm_client(workspace, group=staff)
    assert [c["id"] for c in insider.get("/api/v1/ai-characters").json()["data"]] == [archive.id, atlas.id]


def test_characters_are_scoped_to_the_keys_workspace_and_minds(workspace, other_workspace, atlas):
    assert tm_client(other_workspace).get("/api/v1/ai-characters").json() == {"data": []}
    beacon = Mind.objects.create(workspace=workspace, name="Beacon", slug="beacon-agent")
    restricted = tm_client(workspace, allowed_mind_ids=[beacon.id])
    assert [c["id"] for c in restricted.get("/api/v1/ai-characters").json()["data"]] == [beacon.id]


def test_characters_need_a_key_and_minds_read(workspace, atlas):
    missing = TypingMindClient(None).get("/api/v1/ai-characters")
    assert (missing.status_code, missing.json()) == (401, UNAUTHORIZED)
    invalid = TypingMindClient("tr_live_" + "x" * 32).get("/api/v1/ai-characters")
    assert invalid.status_code == 401 and set(invalid.json()) == {"userMessage"}
    denied = tm_client(workspace, scopes=["minds:chat"]).get("/api/v1/ai-characters")
    assert denied.status_code == 403 and "minds:read" in denied.json()["userMessage"]


# Agent chat -------------------------------------------------------------------------------------------------------


def test_agent_chat_answers_offline_with_citations(tm, atlas):
    response = agent_chat(tm, atlas.id, [{"role": "user", "content": "Who invented the Fresnel lens?"}])
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"messages"} and len(body["messages"]) == 1
    message = body["messages"][0]
    assert set(message) == {"role", "content", "citations"} and message["role"] == "assistant"
    assert "Fresnel" in message["content"] and "[1]" in message["content"]
    assert message["citations"][0]["sourceName"] == "Lighthouses" and message["citations"][0]["index"] == 1
    conversation = Conversation.objects.get()
    assert conversation.channel == "agent" and conversation.mind_id == atlas.id
    assert conversation.member_id == ApiKey.objects.get(last4=tm.key[-4:]).member_id
    assert list(conversation.messages.values_list("role", flat=True)) == ["user", "assistant"]


def test_agent_chat_by_slug_accepts_tool_and_image_blocks_and_ignores_them(tm, atlas):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Tell me about volcanoes"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "etna"}'},
                }
            ],
        },
        {"role": "tool", "content": "Etna is tall.", "tool_call_id": "call_1", "name": "search"},
        {"role": "assistant", "content": "Etna is on Sicily.", "tool_call_id": None, "name": None},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "How tall is Mount Etna?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/etna.png", "detail": "low"}},
            ],
        },
    ]
    response = agent_chat(tm, atlas.slug, messages)
    assert response.status_code == 200, response.json()
    message = response.json()["messages"][0]
    assert "3,357" in message["content"] and message["citations"][0]["sourceName"] == "Volcanoes"
    assert Conversation.objects.get().messages.first().content == "How tall is Mount Etna?"


def test_agent_chat_sends_earlier_text_as_history_and_nothing_of_the_tools(tm, atlas, settings):
    messages = [
        {"role": "user", "content": "Tell me about lighthouses"},
        {"role": "assistant", "content": [{"type": "text", "text": "They guide ships."}]},
        {"role": "tool", "content": "SECRET TOOL OUTPUT", "tool_call_id": "call_9"},
        {"role": "user", "content": "Who invented the lens?"},
    ]
    with FakeLLM("Fresnel did [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        response = agent_chat(tm, atlas.id, messages)
        answer_request = [r for r in fake.requests if r.get("stream")][-1]
    assert response.status_code == 200, response.json()
    assert response.json()["messages"][0]["content"] == "Fresnel did [1]."
    sent = answer_request["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "Tell me about lighthouses" and sent[2]["content"] == "They guide ships."
    assert sent[0]["content"].startswith("You are Atlas, a patient geographer.")
    assert "SECRET TOOL OUTPUT" not in str(sent)


def test_agent_chat_refuses_group_only_agents_with_typingminds_body(workspace, staff, archive):
    outsider = tm_client(workspace)
    response = agent_chat(
        outsider, archive.id, [{"role": "user", "content": "Where is the vault combination?"}]
    )
    assert (response.status_code, response.json()) == (403, NO_ACCESS)
    assert "red notebook" not in response.content.decode()
    assert not Conversation.objects.exists()
    insider = tm_client(workspace, group=staff)
    allowed = agent_chat(
        insider, archive.slug, [{"role": "user", "content": "Where is the vault combination?"}]
    )
    assert allowed.status_code == 200 and "red notebook" in allowed.json()["messages"][0]["content"]


def test_agent_chat_with_an_unknown_or_foreign_agent_is_404_and_records_nothing(tm, other_workspace, atlas):
    foreign = Mind.objects.create(workspace=other_workspace, name="Foreign", slug="foreign-agent")
    for agent_id in ("mind_unknown", foreign.id, foreign.slug):
        response = agent_chat(tm, agent_id, [{"role": "user", "content": "hi"}])
        assert (response.status_code, response.json()) == (404, AGENT_NOT_FOUND)
    beacon = Mind.objects.create(workspace=atlas.workspace, name="Beacon", slug="beacon-agent")
    restricted = tm_client(atlas.workspace, allowed_mind_ids=[beacon.id])
    assert agent_chat(restricted, atlas.id, [{"role": "user", "content": "hi"}]).json() == AGENT_NOT_FOUND
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": "hi"},
        {"messages": [{"role": "system", "content": "hi"}]},
        {"messages": [{"content": "hi"}]},
        {"messages": [{"role": "assistant", "content": "no question"}]},
        {"messages": [{"role": "user", "content": "   "}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}
            ]
        },
        {"messages": [{"role": "user", "content": 42}]},
        {"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
        {"messages": [{"role": "user", "content": "hi", "tool_calls": "call"}]},
        {"messages": [{"role": "user", "content": "hi", "tool_call_id": 5}]},
        {"messages": [{"role": "user", "content": "x" * 4001}]},
        {"messages": [{"role": "user", "content": "x" * 32_001}]},
        {
            "messages": [{"role": "assistant", "content": "x" * 30_000}] * 4
            + [{"role": "user", "content": "hi"}]
        },
        {"messages": [{"role": "user", "content": "hi"}] * 201},
    ],
)
def test_agent_chat_bad_bodies_are_400_invalid_request(tm, atlas, body):
    response = tm.post(f"/api/v2/agents/{atlas.id}/chat", body)
    assert response.status_code == 400, response.json()
    assert response.json()["userMessage"] == "Invalid request"
    assert response.json()["details"]["fields"]
    assert not Conversation.objects.exists()


def test_agent_chat_that_is_not_json_is_400_invalid_request(tm, atlas):
    for raw in ("{not json", "[1, 2]"):
        response = tm.post(f"/api/v2/agents/{atlas.id}/chat", raw)
        assert response.status_code == 400 and response.json()["userMessage"] == "Invalid request"


def test_agent_chat_needs_a_key_and_minds_chat(workspace, atlas):
    missing = agent_chat(TypingMindClient(None), atlas.id, [{"role": "user", "content": "hi"}])
    assert (missing.status_code, missing.json()) == (401, UNAUTHORIZED)
    read_only = tm_client(workspace, scopes=["minds:read"])
    denied = agent_chat(read_only, atlas.id, [{"role": "user", "content": "hi"}])
    assert denied.status_code == 403 and "minds:chat" in denied.json()["userMessage"]
    assert not Conversation.objects.exists()


def test_agent_chat_llm_failure_is_a_clean_error(tm, atlas, settings):
    with FakeLLM(fail_with=503) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        response = agent_chat(tm, atlas.id, [{"role": "user", "content": "Who invented the lens?"}])
    assert response.status_code == 502 and set(response.json()) == {"userMessage"}
    assert "Traceback" not in response.content.decode()


# Chat logs --------------------------------------------------------------------------------------------------------


def _conversation(mind, *, created_at, member=None, visitor_id="", text="Hello"):
    conversation = Conversation.objects.create(
        workspace_id=mind.workspace_id,
        mind=mind,
        member=member,
        visitor_id=visitor_id,
        title=text,
        channel="agent",
    )
    Message.objects.create(conversation=conversation, role="user", content=text, turn=1)
    Message.objects.create(
        conversation=conversation, role="assistant", content="Hi there!", model="extractive", turn=1
    )
    Conversation.objects.filter(id=conversation.id).update(created_at=created_at)
    return conversation


def test_chatlogs_accept_float_unix_times(tm, atlas):
    at = datetime(2022, 1, 1, tzinfo=UTC)  # 1640995200, the seed's example time
    early = _conversation(atlas, created_at=at + timedelta(milliseconds=200), text="early")
    late = _conversation(atlas, created_at=at + timedelta(milliseconds=800), text="late")
    window = tm.get("/api/v1/chatlogs", {"startUnixTime": "1640995200.5"}).json()["data"]
    assert [log["chatID"] for log in window] == [late.id]
    before = tm.get("/api/v1/chatlogs", {"startUnixTime": 1640995200, "endUnixTime": 1640995200.5}).json()
    assert [log["chatID"] for log in before["data"]] == [early.id]
    both = tm.get("/api/v1/chatlogs", {"startUnixTime": 1640995200, "endUnixTime": 1640995201}).json()["data"]
    assert [log["chatID"] for log in both] == [late.id, early.id]
    for bad in ("nan", "inf", "-1", "1e400", "yesterday"):
        assert tm.get("/api/v1/chatlogs", {"startUnixTime": bad}).status_code == 400, bad


def test_chatlog_shape_and_defaults(tm, atlas, workspace):
    member = ApiKey.objects.get(last4=tm.key[-4:]).member
    start = datetime(2024, 8, 14, 4, 18, 53, tzinfo=UTC)
    rows = [_conversation(atlas, created_at=start + timedelta(seconds=i), member=member) for i in range(101)]
    visitor = _conversation(atlas, created_at=start - timedelta(days=1), visitor_id="visitor-7")
    logs = tm.get("/api/v1/chatlogs").json()["data"]
    assert len(logs) == 100  # the last 100 by default, newest first
    assert logs[0]["chatID"] == rows[-1].id and logs[-1]["chatID"] == rows[1].id
    log = logs[0]
    assert CHATLOG_FIELDS <= set(log)
    assert log == {
        "chatID": rows[-1].id,
        "chatTitle": "Hello",
        "createdAt": "2024-08-14T04:20:33Z",
        "recordedAt": log["recordedAt"],
        "conversationText": "User: Hello\n\nAssistant: Hi there!",
        "userID": member.id,
        "model": "extractive",
        "agents": ["Atlas"],
        "plugins": [],
        "channel": "agent",
    }
    assert datetime.fromisoformat(log["recordedAt"]) > datetime.fromisoformat(log["createdAt"])
    paged = tm.get("/api/v1/chatlogs", {"limit": 2, "offset": 100}).json()["data"]
    assert [p["chatID"] for p in paged] == [rows[0].id, visitor.id]
    by_visitor = tm.get("/api/v1/chatlogs", {"userID": "visitor-7"}).json()["data"]
    assert [p["chatID"] for p in by_visitor] == [visitor.id] and by_visitor[0]["userID"] == "visitor-7"


def test_chatlogs_leave_out_group_only_minds_and_other_workspaces(
    workspace, other_workspace, staff, atlas, archive
):
    now = datetime.now(tz=UTC)
    open_chat = _conversation(atlas, created_at=now)
    _conversation(archive, created_at=now)
    outsider = tm_client(workspace)
    assert [log["chatID"] for log in outsider.get("/api/v1/chatlogs").json()["data"]] == [open_chat.id]
    assert len(tm_client(workspace, group=staff).get("/api/v1/chatlogs").json()["data"]) == 2
    assert tm_client(other_workspace).get("/api/v1/chatlogs").json()["data"] == []
    assert tm_client(workspace, scopes=["minds:chat"]).get("/api/v1/chatlogs").status_code == 403
    assert TypingMindClient(None).get("/api/v1/chatlogs").status_code == 401
