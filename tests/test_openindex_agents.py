"""OpenIndex agents, `GET/POST /api/agents`: agents are minds, created or updated through the minds services, with
OpenIndex's `{ok: …}` envelope and errors (docs/openindex.md)."""

import pytest

from accounts.models import AuditLog, Group
from apikeys.models import ApiKey
from knowledge.services import collection_create
from minds.models import Mind
from minds.services import mind_default_agent
from tests.helpers import KeyedClient, make_key

pytestmark = pytest.mark.django_db

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

FULL_AGENT = {
    "name": "Harbour Guide",
    "description": "Knows the harbour's lighthouses",
    "image": "https://img.example.com/guide.png",
    "privacy": "public",
    "isAutonomous": True,
    "prompt": "You are the harbour guide.",
    "welcome": "Ahoy! Ask me about lighthouses.",
    "model": "gpt-3.5-turbo",
    "params": {"temperature": 0.3, "topP": 0.9, "frequencePenalty": 0.5, "presencePenalty": -0.5},
    "tools": [{"id": "web-search", "checked": True}, {"id": "calculator", "checked": False}],
}


def assert_openindex_error(response, status: int, error: str | None = None) -> str:
    body = response.json()
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"ok", "error"} and body["ok"] is False, body
    assert isinstance(body["error"], str) and body["error"] and "Traceback" not in body["error"]
    if error is not None:
        assert body["error"] == error, body
    return body["error"]


def key_in_group(workspace, group=None, scopes="all") -> KeyedClient:
    plaintext = make_key(workspace, scopes=scopes)
    if group is not None:
        ApiKey.objects.get(last4=plaintext[-4:]).member.groups.add(group)
    return KeyedClient(plaintext)


def save(api, body) -> str:
    response = api.post("/api/agents", body)
    assert response.status_code == 200, response.json()
    assert set(response.json()) == {"ok", "agentId"} and response.json()["ok"] is True
    return response.json()["agentId"]


@pytest.fixture
def collection(workspace):
    return collection_create(workspace=workspace, name="Harbour archive")


def test_create_maps_every_field_onto_the_mind(api, workspace, collection):
    agent_id = save(api, {**FULL_AGENT, "collections": [collection.id]})
    mind = Mind.objects.get(id=agent_id)
    assert mind.workspace == workspace
    assert (mind.name, mind.headline, mind.avatar_url) == (
        "Harbour Guide",
        "Knows the harbour's lighthouses",
        "https://img.example.com/guide.png",
    )
    assert mind.is_published is True and mind.published_at is not None
    assert (mind.system_prompt, mind.welcome_message, mind.model) == (
        "You are the harbour guide.",
        "Ahoy! Ask me about lighthouses.",
        "gpt-3.5-turbo",
    )
    assert (mind.temperature, mind.top_p, mind.frequency_penalty, mind.presence_penalty) == (
        0.3,
        0.9,
        0.5,
        -0.5,
    )
    assert mind.agent_tools == FULL_AGENT["tools"]
    assert mind.is_autonomous is True
    assert list(mind.collections.values_list("id", flat=True)) == [collection.id]
    # Written through the services: audited as done by this key, with the collections.
    logs = AuditLog.objects.filter(entity="mind", entity_id=agent_id).order_by("id")
    assert [log.action for log in logs] == ["create", "update"]
    assert logs[1].changes == {"collectionIds": {"from": [], "to": [collection.id]}}
    assert all(log.actor_key_id for log in logs)


def test_a_new_agent_is_private_by_default_and_needs_only_a_name(api):
    mind = Mind.objects.get(id=save(api, {"name": "Minimal"}))
    assert mind.is_published is False and mind.headline == "" and mind.temperature == 0.7
    assert mind.agent_tools == [] and mind.is_autonomous is False


def test_list_gives_the_documented_agent_shape(api, workspace, collection):
    agent_id = save(api, {**FULL_AGENT, "collections": [collection.id]})
    response = api.get("/api/agents")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "agents"} and body["ok"] is True
    [agent] = body["agents"]
    assert set(agent) == AGENT_KEYS
    mind = Mind.objects.get(id=agent_id)
    assert agent == {
        "id": agent_id,
        "slug": mind.slug,
        "name": "Harbour Guide",
        "description": "Knows the harbour's lighthouses",
        "image": "https://img.example.com/guide.png",
        "privacy": "public",
        "namespace": workspace.id,
        "prompt": "You are the harbour guide.",
        "isAutonomous": True,
        "welcome": "Ahoy! Ask me about lighthouses.",
        "model": "gpt-3.5-turbo",
        "params": {"temperature": 0.3, "topP": 0.9, "frequencePenalty": 0.5, "presencePenalty": -0.5},
        "tools": FULL_AGENT["tools"],
        "userId": workspace.id,
        "createdAt": int(mind.created_at.timestamp() * 1000),
        "updatedAt": int(mind.updated_at.timestamp() * 1000),
        "status": "active",
        "collections": [collection.id],
    }
    assert isinstance(agent["createdAt"], int) and agent["createdAt"] > 1_600_000_000_000


def test_list_is_newest_first_and_shows_the_general_agent_only_once_it_exists(api, workspace):
    first = save(api, {"name": "First"})
    second = save(api, {"name": "Second"})
    assert [a["id"] for a in api.get("/api/agents").json()["agents"]] == [second, first]
    general = mind_default_agent(workspace=workspace)
    agents = api.get("/api/agents").json()["agents"]
    assert [a["id"] for a in agents] == [general.id, second, first]
    assert agents[0]["name"] == "Jack Of All Trades" and agents[0]["params"]["topP"] is None


def test_update_by_id_changes_only_what_is_given(api, collection, workspace):
    agent_id = save(api, {**FULL_AGENT, "collections": [collection.id]})
    before = Mind.objects.get(id=agent_id)
    save(api, {"id": agent_id, "description": "Now also the tides", "params": {"topP": 0.5}})
    mind = Mind.objects.get(id=agent_id)
    assert mind.headline == "Now also the tides" and mind.top_p == 0.5
    # Everything not given is as it was, collections included.
    for field in (
        "name",
        "avatar_url",
        "is_published",
        "system_prompt",
        "welcome_message",
        "model",
        "agent_tools",
    ):
        assert getattr(mind, field) == getattr(before, field), field
    assert (mind.temperature, mind.frequency_penalty, mind.presence_penalty) == (0.3, 0.5, -0.5)
    assert list(mind.collections.values_list("id", flat=True)) == [collection.id]
    assert Mind.objects.filter(workspace=workspace).count() == 1

    second = collection_create(workspace=workspace, name="Tide tables")
    save(api, {"id": agent_id, "privacy": "private", "collections": [second.slug]})
    mind.refresh_from_db()
    assert mind.is_published is False
    assert list(mind.collections.values_list("id", flat=True)) == [second.id]
    save(api, {"id": agent_id, "collections": []})
    assert not mind.collections.exists()


def test_an_agent_sent_back_as_listed_saves_unchanged(api):
    agent_id = save(api, FULL_AGENT)
    [listed] = api.get("/api/agents").json()["agents"]
    assert save(api, {**listed, "name": "Renamed"}) == agent_id
    [again] = api.get("/api/agents").json()["agents"]
    assert again["name"] == "Renamed"
    assert {k: v for k, v in again.items() if k not in ("name", "updatedAt")} == {
        k: v for k, v in listed.items() if k not in ("name", "updatedAt")
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "invalid name"),
        ({"name": ""}, "invalid name"),
        ({"name": "   "}, "invalid name"),
        ({"name": "x" * 101}, "invalid name"),
        ({"name": "Ok", "description": "d" * 201}, "invalid description"),
        ({"name": "Ok", "privacy": "unlisted"}, None),
        ({"name": "Ok", "image": "javascript:alert(1)"}, None),
        ({"name": "Ok", "params": {"temperature": 2.5}}, None),
        ({"name": "Ok", "params": {"topP": 1.5}}, None),
        ({"name": "Ok", "params": {"frequencePenalty": -3}}, None),
        ({"name": "Ok", "params": {"frequencyPenalty": 1}}, None),
        ({"name": "Ok", "tools": [{"id": "x"}]}, None),
        ({"name": "Ok", "tools": [{"id": "x", "checked": True, "extra": 1}]}, None),
        ({"name": "Ok", "tools": "web"}, None),
        ({"name": "Ok", "isAutonomous": "maybe"}, None),
        ({"name": "Ok", "collections": "abc"}, None),
        ({"name": "Ok", "colour": "red"}, None),
    ],
)
def test_invalid_input_is_400_and_creates_nothing(api, workspace, body, error):
    message = assert_openindex_error(api.post("/api/agents", body), 400, error)
    assert message.startswith("invalid ")
    assert not Mind.objects.filter(workspace=workspace).exists()


def test_invalid_field_errors_name_the_field_and_the_reason(api):
    message = assert_openindex_error(api.post("/api/agents", {"name": "Ok", "params": {"topP": 1.5}}), 400)
    assert message.startswith("invalid params.topP: ") and "1" in message
    message = assert_openindex_error(api.post("/api/agents", {"name": "Ok", "tools": [{"id": "x"}]}), 400)
    assert message.startswith("invalid tools[0].checked: ")
    assert assert_openindex_error(api.post("/api/agents", "[1, 2]"), 400).startswith("invalid request")


def test_an_unknown_collection_is_400_and_nothing_is_saved(api, workspace, other_workspace):
    foreign = collection_create(workspace=other_workspace, name="Theirs")
    for collections in (["col_missing"], [foreign.id]):
        message = assert_openindex_error(
            api.post("/api/agents", {"name": "Ok", "collections": collections}), 400
        )
        assert message.startswith("invalid collections")
    assert not Mind.objects.filter(workspace=workspace).exists()
    agent_id = save(api, {"name": "Kept"})
    assert_openindex_error(
        api.post("/api/agents", {"id": agent_id, "name": "Lost", "collections": [foreign.id]}), 400
    )
    assert Mind.objects.get(id=agent_id).name == "Kept"
    assert not foreign.minds.exists()


def test_updating_an_unknown_or_foreign_agent_is_404_and_changes_nothing(api, other_api, other_workspace):
    assert_openindex_error(api.post("/api/agents", {"id": "mind_nope", "name": "X"}), 404, "Agent not found.")
    theirs = save(other_api, {"name": "Theirs"})
    assert_openindex_error(
        api.post("/api/agents", {"id": theirs, "name": "Mine now"}), 404, "Agent not found."
    )
    assert Mind.objects.get(id=theirs).name == "Theirs"
    assert Mind.objects.filter(workspace=other_workspace).count() == 1
    assert theirs not in {a["id"] for a in api.get("/api/agents").json()["agents"]}


def test_the_minds_limit_is_403_exceeded_agent_allowance(api, workspace):
    workspace.minds_limit = 1
    workspace.save()
    mind_default_agent(workspace=workspace)  # the general agent does not count
    first = save(api, {"name": "One"})
    assert_openindex_error(api.post("/api/agents", {"name": "Two"}), 403, "exceeded agent allowance")
    assert Mind.objects.filter(workspace=workspace, is_default_agent=False).count() == 1
    # Updating within the limit still works.
    save(api, {"id": first, "name": "One, renamed"})


def test_a_group_only_agent_is_hidden_from_outsiders_and_403_on_update(workspace):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    mind = Mind.objects.create(
        workspace=workspace,
        name="Archive",
        slug="archive-oi",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    outsider, insider = key_in_group(workspace), key_in_group(workspace, staff)
    assert mind.id not in {a["id"] for a in outsider.get("/api/agents").json()["agents"]}
    assert mind.id in {a["id"] for a in insider.get("/api/agents").json()["agents"]}
    error = assert_openindex_error(outsider.post("/api/agents", {"id": mind.id, "name": "Mine"}), 403)
    assert "access to this agent" in error
    assert Mind.objects.get(id=mind.id).name == "Archive"
    assert insider.post("/api/agents", {"id": mind.id, "name": "Archive 2"}).status_code == 200
    assert Mind.objects.get(id=mind.id).name == "Archive 2"


def test_a_mind_restricted_key_sees_and_attaches_only_within_its_reach(workspace):
    mine = Mind.objects.create(workspace=workspace, name="Mine", slug="mine-oi")
    Mind.objects.create(workspace=workspace, name="Other", slug="other-oi")
    unattached = collection_create(workspace=workspace, name="Elsewhere")
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[mine.id]))
    assert [a["id"] for a in restricted.get("/api/agents").json()["agents"]] == [mine.id]
    response = restricted.post("/api/agents", {"id": mine.id, "collections": [unattached.id]})
    assert_openindex_error(response, 400)
    assert not mine.collections.exists()


def test_auth_and_scopes(workspace, anon):
    assert_openindex_error(anon.get("/api/agents"), 401)
    assert_openindex_error(anon.post("/api/agents", {"name": "X"}, content_type="application/json"), 401)
    assert_openindex_error(KeyedClient("tr_live_" + "x" * 32).get("/api/agents"), 401)
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get("/api/agents").status_code == 200
    assert_openindex_error(reader.post("/api/agents", {"name": "X"}), 403)
    writer = KeyedClient(make_key(workspace, scopes=["minds:write"]))
    assert_openindex_error(writer.get("/api/agents"), 403)
    assert writer.post("/api/agents", {"name": "X"}).status_code == 200
    assert Mind.objects.filter(workspace=workspace).count() == 1


def test_the_rate_limit_is_403_with_retry_after(api, settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    assert api.get("/api/agents").status_code == 200
    limited = api.get("/api/agents")
    assert_openindex_error(limited, 403)
    assert int(limited["Retry-After"]) >= 1
