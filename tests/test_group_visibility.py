"""A mind with visibility "groups" is open only to keys whose member is in one of its groups, on every
key-authenticated surface; its public page (when published) is not affected (docs/security.md)."""

import pytest

from accounts.models import Group
from apikeys.models import ApiKey
from conversations.models import Conversation
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import KeyedClient, assert_error, make_key
from tests.test_public_page import post_chat

pytestmark = pytest.mark.django_db

SECRET = ["The vault combination for the lighthouse archive is kept in the keeper's red notebook."]


@pytest.fixture
def staff(workspace):
    return Group.objects.create(workspace=workspace, name="Staff")


@pytest.fixture
def group_mind(workspace, staff):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Archive",
        slug="archive-groups",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    ready_source(mind, "Archive notes", SECRET)
    return mind


def member_key(workspace, group=None) -> KeyedClient:
    plaintext = make_key(workspace, scopes="all")
    if group is not None:
        ApiKey.objects.get(last4=plaintext[-4:]).member.groups.add(group)
    return KeyedClient(plaintext)


def test_outsiders_get_403_on_every_surface_and_see_no_group_text(workspace, group_mind):
    outsider = member_key(workspace)
    mind_path = f"/api/v1/minds/{group_mind.id}"
    body = assert_error(outsider.get(mind_path), 403, "mind_access_denied")
    assert "group" in body["message"]
    search = outsider.post(f"{mind_path}/search", {"query": "vault combination"})
    assert_error(search, 403, "mind_access_denied")
    assert "red notebook" not in search.content.decode()
    assert_error(
        outsider.post(f"{mind_path}/chat", {"message": "Where is the vault combination?"}),
        403,
        "mind_access_denied",
    )
    assert_error(outsider.get(f"{mind_path}/knowledge"), 403, "mind_access_denied")
    assert_error(outsider.patch(mind_path, {"name": "Mine now"}), 403, "mind_access_denied")

    completion = outsider.post(
        "/api/v1/chat/completions",
        {"model": group_mind.slug, "messages": [{"role": "user", "content": "vault combination?"}]},
    )
    assert completion.status_code == 403, completion.json()
    assert completion.json()["error"]["type"] == "permission_error"
    assert completion.json()["error"]["code"] == "mind_access_denied"
    assert group_mind.slug not in {m["id"] for m in outsider.get("/api/v1/models").json()["data"]}
    assert group_mind.id not in {m["id"] for m in outsider.get("/api/v1/minds").json()["minds"]}
    assert not Conversation.objects.exists()
    assert Mind.objects.get(id=group_mind.id).name == "Archive"


def test_members_of_an_allowed_group_use_the_mind_everywhere(workspace, staff, group_mind):
    insider = member_key(workspace, staff)
    mind_path = f"/api/v1/minds/{group_mind.id}"
    assert insider.get(mind_path).status_code == 200
    results = insider.post(f"{mind_path}/search", {"query": "vault combination"}).json()["results"]
    assert "red notebook" in results[0]["content"]
    chat = insider.post(f"{mind_path}/chat", {"message": "Where is the vault combination?"})
    assert chat.status_code == 200, chat.json()
    completion = insider.post(
        "/api/v1/chat/completions",
        {
            "model": group_mind.id,
            "messages": [{"role": "user", "content": "Where is the vault combination?"}],
        },
    )
    assert completion.status_code == 200, completion.json()
    assert group_mind.slug in {m["id"] for m in insider.get("/api/v1/models").json()["data"]}
    conversation_id = chat.json()["conversationId"]
    assert insider.get(f"/api/v1/conversations/{conversation_id}").status_code == 200
    # The conversation of a group-only mind is not readable by an outsider either.
    assert_error(member_key(workspace).get(f"/api/v1/conversations/{conversation_id}"), 404, "not_found")


def test_a_published_group_mind_keeps_its_public_page(client, workspace, group_mind):
    Mind.objects.filter(id=group_mind.id).update(is_published=True)
    assert client.get(f"/m/{group_mind.slug}").status_code == 200
    answer = post_chat(client, group_mind.slug, {"message": "Where is the vault combination?"})
    assert answer.status_code == 200


def test_allowed_group_ids_must_name_groups_of_the_workspace(api, workspace, other_workspace, staff):
    foreign = Group.objects.create(workspace=other_workspace, name="Staff")
    for groups in (["grp_missing"], [foreign.id], [staff.id, foreign.id]):
        body = assert_error(
            api.post("/api/v1/minds", {"name": "M", "visibility": "groups", "allowedGroupIds": groups}),
            400,
            "validation_error",
        )
        assert "allowedGroupIds" in body["details"]["fields"]
    assert_error(api.post("/api/v1/minds", {"name": "M", "visibility": "groups"}), 400, "validation_error")
    assert not Mind.objects.exists()

    mind = api.post("/api/v1/minds", {"name": "M"}).json()["mind"]
    assert_error(
        api.patch(f"/api/v1/minds/{mind['id']}", {"visibility": "groups", "allowedGroupIds": [foreign.id]}),
        400,
        "validation_error",
    )
    assert Mind.objects.get(id=mind["id"]).visibility == "workspace"
    updated = api.patch(
        f"/api/v1/minds/{mind['id']}", {"visibility": "groups", "allowedGroupIds": [staff.id]}
    )
    assert updated.status_code == 200 and updated.json()["mind"]["allowedGroupIds"] == [staff.id]
