"""The audit log: every kind of change is recorded with its actor (key and member), entity, name, action and
changed fields, in the same transaction (a refused change leaves nothing), never with a secret; read through
GET /api/v1/audit-logs (filters, cursor) and the admin (read-only)."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import AuditLog, Group
from apikeys.models import ApiKey
from minds.models import Mind
from tests.helpers import KeyedClient, admin_path, assert_error, make_key

pytestmark = pytest.mark.django_db

ENTRY_FIELDS = {"id", "entity", "entityId", "entityName", "action", "actor", "changes", "recordedAt"}


def key_of(client: KeyedClient) -> ApiKey:
    return ApiKey.objects.select_related("member").get(last4=client.key[-4:])


def log(api, **params) -> list[dict]:
    response = api.get("/api/v1/audit-logs", {"limit": 100, **params})
    assert response.status_code == 200, response.json()
    return response.json()["entries"]


def assert_actor(entry: dict, client: KeyedClient) -> None:
    key = key_of(client)
    assert entry["actor"] == {"keyId": key.id, "memberId": key.member_id, "label": key.member.name}


def changes_of(api, entity: str, action: str, entity_id: str) -> dict:
    [entry] = [e for e in log(api, entity=entity, action=action) if e["entityId"] == entity_id]
    assert_actor(entry, api)
    return entry["changes"]


# One test per kind of change ---------------------------------------------------------------------------------------


def test_mind_create_update_publish_and_delete_are_recorded(api):
    mind = api.post("/api/v1/minds", {"name": "Atlas", "systemPrompt": "Answer briefly."}).json()["mind"]
    api.patch(f"/api/v1/minds/{mind['id']}", {"name": "Atlas II", "temperature": 0.2})
    api.post(f"/api/v1/minds/{mind['id']}/publish", {"isPublished": True})
    api.post(f"/api/v1/minds/{mind['id']}/publish", {"isPublished": False})
    api.delete(f"/api/v1/minds/{mind['id']}")
    entries = log(api, entity="mind")
    assert [(e["action"], e["entityName"]) for e in entries] == [
        ("delete", "Atlas II"),
        ("unpublish", "Atlas II"),
        ("publish", "Atlas II"),
        ("update", "Atlas II"),
        ("create", "Atlas"),
    ]
    for entry in entries:
        assert set(entry) == ENTRY_FIELDS and entry["entityId"] == mind["id"]
        assert_actor(entry, api)
    created = entries[-1]["changes"]
    assert created["name"] == "Atlas" and created["system_prompt"] == "Answer briefly."
    assert entries[-2]["changes"] == {
        "name": {"from": "Atlas", "to": "Atlas II"},
        "temperature": {"from": 0.7, "to": 0.2},
    }


def test_key_create_and_revoke_are_recorded_without_the_key(api):
    created = api.post("/api/v1/api-keys", {"name": "Reporting", "scopes": ["minds:read"]}).json()
    key_id = created["apiKey"]["id"]
    assert api.delete(f"/api/v1/api-keys/{key_id}").status_code == 200
    changes = changes_of(api, "api_key", "create", key_id)
    assert changes == {
        "scopes": ["minds:read"],
        "mindIds": [],
        "expiresAt": None,
        "last4": created["key"][-4:],
    }
    assert changes_of(api, "api_key", "revoke", key_id) == {}
    everything = json.dumps(list(AuditLog.objects.values("changes", "entity_name")))
    stored = ApiKey.objects.get(id=key_id)
    assert created["key"] not in everything and stored.key_hash not in everything


def test_source_create_reprocess_and_delete_are_recorded(api):
    mind = api.post("/api/v1/minds", {"name": "Atlas"}).json()["mind"]
    base = f"/api/v1/minds/{mind['id']}/knowledge"
    source = api.post(
        base, {"name": "Notes", "type": "text", "content": "Maps of the northern coast."}
    ).json()
    source = source["source"]
    assert api.post(f"{base}/{source['id']}/reprocess").status_code == 200
    assert api.delete(f"{base}/{source['id']}").status_code == 200
    entries = log(api, entity="source")
    assert [(e["action"], e["entityName"], e["entityId"]) for e in entries] == [
        ("delete", "Notes", source["id"]),
        ("reprocess", "Notes", source["id"]),
        ("create", "Notes", source["id"]),
    ]
    for entry in entries:
        assert_actor(entry, api)
    assert entries[-1]["changes"]["type"] == "text" and entries[-1]["changes"]["mindId"] == mind["id"]


def test_member_create_update_and_delete_are_recorded(api, workspace):
    member = api.post(
        "/api/v1/members",
        {"email": "ann@example.com", "tags": ["support"], "profile": {"firstName": "Ann"}},
    ).json()["member"]
    created = changes_of(api, "member", "create", member["id"])
    assert created["email"] == "ann@example.com" and created["tags"] == ["support"]
    assert created["firstName"] == "Ann" and created["groupIds"] == []
    api.patch(
        f"/api/v1/members/{member['id']}", {"email": "ann.lee@example.com", "profile": {"lastName": "Lee"}}
    )
    assert changes_of(api, "member", "update", member["id"]) == {
        "email": {"from": "ann@example.com", "to": "ann.lee@example.com"},
        "lastName": {"from": "", "to": "Lee"},
    }
    api.delete(f"/api/v1/members/{member['id']}")
    deleted = changes_of(api, "member", "delete", member["id"])
    assert deleted["email"] == "ann.lee@example.com" and deleted["isApiUser"] is False
    names = {e["entityName"] for e in log(api, entity="member")}
    assert names == {"ann@example.com", "ann.lee@example.com"}


def test_membership_changes_are_recorded_on_the_side_that_was_changed(api, workspace):
    staff = api.post("/api/v1/groups", {"title": "Staff"}).json()["group"]
    member = api.post("/api/v1/members", {"email": "ann@example.com"}).json()["member"]
    api.patch(f"/api/v1/members/{member['id']}", {"groupIds": [staff["id"]]})
    assert changes_of(api, "member", "update", member["id"]) == {
        "groupIds": {"from": [], "to": [staff["id"]]}
    }
    api.patch(f"/api/v1/groups/{staff['id']}", {"memberIds": []})
    assert changes_of(api, "group", "update", staff["id"]) == {
        "memberIds": {"from": [member["id"]], "to": []}
    }
    # Setting the same membership again changes nothing and records nothing.
    count = AuditLog.objects.count()
    api.patch(f"/api/v1/groups/{staff['id']}", {"memberIds": []})
    api.patch(f"/api/v1/members/{member['id']}", {"groupIds": []})
    assert AuditLog.objects.count() == count


def test_group_create_update_and_delete_are_recorded(api, workspace):
    group = api.post("/api/v1/groups", {"title": "Analysts", "roles": ["role_analyst"]}).json()["group"]
    assert changes_of(api, "group", "create", group["id"]) == {
        "title": "Analysts",
        "roles": ["role_analyst"],
        "memberIds": [],
    }
    api.patch(f"/api/v1/groups/{group['id']}", {"title": "Readers", "roles": ["role_member"]})
    assert changes_of(api, "group", "update", group["id"]) == {
        "title": {"from": "Analysts", "to": "Readers"},
        "roles": {"from": ["role_analyst"], "to": ["role_member"]},
    }
    api.delete(f"/api/v1/groups/{group['id']}")
    assert changes_of(api, "group", "delete", group["id"])["title"] == "Readers"
    assert [e["entityName"] for e in log(api, entity="group")] == ["Readers", "Readers", "Analysts"]


def test_collection_create_update_delete_and_attach_are_recorded(api, workspace):
    collection = api.post("/api/v1/collections", {"name": "Handbook"}).json()["collection"]
    api.patch(f"/api/v1/collections/{collection['id']}", {"description": "The staff handbook."})
    mind = api.post("/api/v1/minds", {"name": "Atlas"}).json()["mind"]
    attached = api.put(f"/api/v1/minds/{mind['id']}/collections", {"collectionIds": [collection["id"]]})
    assert attached.status_code == 200, attached.json()
    api.delete(f"/api/v1/collections/{collection['id']}")
    entries = log(api, entity="collection")
    assert [(e["action"], e["entityName"]) for e in entries] == [
        ("delete", "Handbook"),
        ("update", "Handbook"),
        ("create", "Handbook"),
    ]
    for entry in entries:
        assert_actor(entry, api)
    assert entries[1]["changes"] == {"description": {"from": "", "to": "The staff handbook."}}
    assert changes_of(api, "mind", "update", mind["id"]) == {
        "collectionIds": {"from": [], "to": [collection["id"]]}
    }


def test_workspace_settings_changed_in_the_admin_are_recorded_without_the_webhook_secret(client, workspace):
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    response = client.post(
        admin_path("accounts/workspace", workspace.id),
        {
            "name": "Acme Inc",
            "minds_limit": "5",
            "sources_limit": "",
            "source_limit_per_mind": "",
            "api_keys_limit": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditLog.objects.get(entity="workspace")
    assert (entry.workspace_id, entry.entity_id, entry.entity_name, entry.action) == (
        workspace.id,
        workspace.id,
        "Acme Inc",
        "update",
    )
    assert entry.changes == {
        "name": {"from": "Acme", "to": "Acme Inc"},
        "mindsLimit": {"from": None, "to": 5},
    }
    assert (entry.actor_label, entry.actor_key_id, entry.actor_member_id) == ("admin:admin", "", None)
    workspace.refresh_from_db()
    assert workspace.webhook_secret not in json.dumps(list(AuditLog.objects.values("changes")))
    # Saving without a change records nothing.
    client.post(
        admin_path("accounts/workspace", workspace.id),
        {
            "name": "Acme Inc",
            "minds_limit": "5",
            "sources_limit": "",
            "source_limit_per_mind": "",
            "api_keys_limit": "",
        },
    )
    assert AuditLog.objects.filter(entity="workspace").count() == 1


def test_members_and_groups_changed_in_the_admin_are_recorded(client, workspace):
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    group = Group.objects.create(workspace=workspace, name="Staff")
    client.post(admin_path("accounts/group", group.id), {"name": "Staff", "roles": ["role_member"]})
    entry = AuditLog.objects.get(entity="group", action="update")
    assert (
        entry.changes == {"roles": {"from": [], "to": ["role_member"]}} and entry.actor_label == "admin:admin"
    )
    added = client.post(
        "/admin/accounts/member/add/",
        {
            "workspace": workspace.id,
            "email": "ann@example.com",
            "name": "Ann",
            "tags": "[]",
            "groups": [group.id],
        },
    )
    assert added.status_code == 302, added.content.decode()[:3000]
    created = AuditLog.objects.get(entity="member", action="create")
    assert created.entity_name == "ann@example.com" and created.changes["groupIds"] == [group.id]
    client.post(admin_path("accounts/group", group.id, "delete"), {"post": "yes"})
    assert AuditLog.objects.get(entity="group", action="delete").changes["memberIds"] == [created.entity_id]


# What is not recorded ----------------------------------------------------------------------------------------------


def test_refused_changes_leave_no_entry(api, workspace, other_workspace):
    narrow = KeyedClient(make_key(workspace, scopes=["minds:read", "keys:manage"]))
    api.post("/api/v1/members", {"email": "ann@example.com"})
    mind = api.post("/api/v1/minds", {"name": "Atlas"}).json()["mind"]
    foreign_group = Group.objects.create(workspace=other_workspace, name="Foreign")
    count = AuditLog.objects.count()
    assert_error(api.post("/api/v1/members", {"email": "ANN@example.com"}), 400, "validation_error")
    assert_error(api.post("/api/v1/groups", {"title": "G", "roles": ["role_god"]}), 400, "validation_error")
    assert_error(
        api.post("/api/v1/groups", {"title": "G", "memberIds": ["usr_nope"]}), 400, "validation_error"
    )
    assert_error(
        api.patch(
            f"/api/v1/minds/{mind['id']}", {"visibility": "groups", "allowedGroupIds": [foreign_group.id]}
        ),
        400,
        "validation_error",
    )
    assert_error(api.post("/api/v1/minds", {"name": ""}), 400, "validation_error")
    assert_error(
        narrow.post("/api/v1/api-keys", {"name": "k", "scopes": ["minds:write"]}), 403, "insufficient_scope"
    )
    assert_error(api.delete("/api/v1/api-keys/key_missing"), 404, "not_found")
    assert_error(api.delete("/api/v1/groups/grp_missing"), 404, "not_found")
    assert AuditLog.objects.count() == count
    assert Mind.objects.get(id=mind["id"]).visibility == "workspace"


def test_no_secret_appears_in_any_entry(api, workspace):
    old_secret = workspace.webhook_secret
    new_secret = api.post("/api/v1/webhooks/secret/rotate").json()["secret"]
    rotation = changes_of(api, "workspace", "rotate_webhook_secret", workspace.id)
    assert old_secret not in json.dumps(rotation) and new_secret not in json.dumps(rotation)
    created = api.post("/api/v1/api-keys", {"name": "Second", "scopes": ["all"]}).json()
    api.delete(f"/api/v1/api-keys/{created['apiKey']['id']}")
    api.post("/api/v1/members", {"email": "ann@example.com"})
    api.delete(f"/api/v1/members/{key_of(api).member_id}")  # the key retires itself: a revoke and a delete
    dumped = json.dumps(list(AuditLog.objects.values()), default=str)
    workspace.refresh_from_db()
    secrets = [
        workspace.webhook_secret,
        api.key,
        created["key"],
        *ApiKey.objects.values_list("key_hash", flat=True),
    ]
    assert all(secret not in dumped for secret in secrets)
    assert AuditLog.objects.filter(entity="api_key", action="revoke").count() == 2


# Reading the log ----------------------------------------------------------------------------------------------------


@pytest.fixture
def history(api, workspace):
    """Five groups made by `api`, then one by a second key."""
    for n in range(5):
        api.post("/api/v1/groups", {"title": f"G{n}"})
    second = KeyedClient(make_key(workspace, scopes="all"))
    second.post("/api/v1/members", {"email": "ann@example.com"})
    return second


def test_entries_are_newest_first_and_filtered_by_entity_action_and_actor(api, history):
    everything = log(api)
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert len(everything) == 8  # two key creations, five groups, one member
    assert [e["entityName"] for e in log(api, entity="group")] == ["G4", "G3", "G2", "G1", "G0"]
    assert [e["entity"] for e in log(api, action="create", entity="member")] == ["member"]
    assert log(api, entity="mind") == [] and log(api, action="publish") == []
    second = key_of(history)
    by_key = log(api, actorId=second.id)
    by_member = log(api, actorId=second.member_id)
    assert by_key == by_member and [e["entityName"] for e in by_key] == ["ann@example.com"]
    assert len(log(api, actorId=key_of(api).id)) == 5


def test_entries_are_filtered_by_time(api, history):
    everything = log(api)
    AuditLog.objects.filter(entity="group").update(recorded_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = log(api, **{"from": since})
    assert {e["entity"] for e in recent} == {"member", "api_key"}
    old = log(api, to=since)
    assert [e["entity"] for e in old] == ["group"] * 5
    window = log(api, **{"from": (timezone.now() - timedelta(days=4)).isoformat(), "to": since})
    assert window == old and len(recent) + len(old) == len(everything)
    assert_error(
        api.get("/api/v1/audit-logs", {"from": since, "to": "2000-01-01T00:00:00Z"}), 400, "validation_error"
    )
    assert_error(api.get("/api/v1/audit-logs", {"from": "yesterday"}), 400, "validation_error")


def test_the_cursor_walks_every_entry_once(api, history):
    everything = [e["id"] for e in log(api)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"startAfter": cursor} if cursor else {})}
        page = api.get("/api/v1/audit-logs", params).json()
        seen += [e["id"] for e in page["entries"]]
        if not page["hasMore"]:
            assert page["nextStartAfter"] is None
            break
        cursor = page["nextStartAfter"]
        assert cursor == page["entries"][-1]["id"]
    assert seen == everything
    for params in ({"limit": 0}, {"limit": 101}, {"startAfter": "abc"}, {"startAfter": 0}):
        assert_error(api.get("/api/v1/audit-logs", params), 400, "validation_error")


def test_another_workspaces_entries_are_never_shown(api, other_api, history):
    other_api.post("/api/v1/groups", {"title": "Elsewhere"})
    other_entry = AuditLog.objects.get(entity_name="Elsewhere")
    assert "Elsewhere" not in json.dumps(log(api))
    assert all(e["entityName"] != "Elsewhere" for e in log(api, startAfter=other_entry.id + 1))
    assert [e["entityName"] for e in log(other_api, entity="group")] == ["Elsewhere"]


def test_a_key_restricted_to_some_minds_cannot_read_the_log(workspace, api):
    mind = Mind.objects.create(workspace=workspace, name="M", slug="m-audit")
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[mind.id]))
    body = assert_error(restricted.get("/api/v1/audit-logs"), 403, "insufficient_scope")
    assert "restricted" in body["message"]


def test_the_audit_log_admin_is_read_only_with_filters_and_search(client, api, history):
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    entry = AuditLog.objects.filter(entity="group").first()

    def names(**params) -> list[str]:
        page = client.get("/admin/accounts/auditlog/", params)
        assert page.status_code == 200
        return re.findall(r'<td class="field-entity_name">([^<]*)</td>', page.content.decode())

    assert names() == [e.entity_name for e in AuditLog.objects.order_by("-id")]
    assert names(entity="member") == ["ann@example.com"]
    assert names(entity="group", action="create") == ["G4", "G3", "G2", "G1", "G0"]
    assert names(q="G3") == ["G3"]
    assert client.get(admin_path("accounts/auditlog", entry.id)).status_code == 200
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert client.post(admin_path("accounts/auditlog", entry.id), {"entity": "x"}).status_code == 403
    assert (
        client.post(admin_path("accounts/auditlog", entry.id, "delete"), {"post": "yes"}).status_code == 403
    )
    entry.refresh_from_db()
    assert entry.entity == "group"
