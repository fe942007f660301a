"""TypingMind's users (v1 tags, v2 groups and profile), groups, roles and audit log with `X-API-KEY`: exact shapes,
TypingMind's error bodies, auth, scope, workspace isolation, and one implementation shared with the native API."""

import pytest

from accounts.models import AuditLog, Group, Member
from accounts.roles import ROLES
from apikeys.models import ApiKey
from minds.models import Mind
from tests.helpers import KeyedClient, make_key

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"userMessage": "Unauthorized (API Key is missing or invalid)"}
USER_NOT_FOUND = {"userMessage": "User Not Found"}
USER_FIELDS = {"id", "email", "createdAt", "tags"}
USER_V2_FIELDS = {"id", "email", "createdAt", "groups"}
LOG_FIELDS = {"id", "entity", "entityName", "action", "recordedAt", "userID"}


class TypingMindClient(KeyedClient):
    """Sends the key as TypingMind clients do, in `X-API-KEY`."""

    def _headers(self, headers):
        merged = dict(headers or {})
        if self.key:
            merged.setdefault("X-API-KEY", self.key)
        return merged


def tm_client(workspace, scopes="all", **kwargs) -> tuple[TypingMindClient, ApiKey]:
    plaintext = make_key(workspace, scopes=scopes, **kwargs)
    return TypingMindClient(plaintext), ApiKey.objects.get(last4=plaintext[-4:])


@pytest.fixture
def tm(workspace):
    return tm_client(workspace)[0]


@pytest.fixture
def other_tm(other_workspace):
    return tm_client(other_workspace)[0]


@pytest.fixture
def staff(workspace):
    return Group.objects.create(workspace=workspace, name="Staff", roles=["role_member"])


def snapshot() -> tuple:
    return (
        list(Member.objects.order_by("pk").values()),
        list(Group.objects.order_by("pk").values()),
        sorted(Member.groups.through.objects.values_list("member_id", "group_id")),
        list(ApiKey.objects.order_by("pk").values("id", "revoked_at")),
        AuditLog.objects.count(),
    )


def invalid(response) -> dict:
    body = response.json()
    assert response.status_code == 400, body
    assert isinstance(body["userMessage"], str) and body["userMessage"], body
    assert set(body) <= {"userMessage", "details"}
    return body


# v1: tag-based users ----------------------------------------------------------------------------------------------


def test_v1_user_lifecycle_with_the_documented_shapes(tm, workspace):
    created = tm.post("/api/v1/users", {"email": "email@example.com", "tags": ["tag1", "tag2"]})
    assert created.status_code == 200, created.json()
    user = created.json()
    assert set(user) == USER_FIELDS
    assert user["id"].startswith("usr_") and user["email"] == "email@example.com"
    assert user["tags"] == ["tag1", "tag2"] and user["createdAt"].endswith("Z")
    assert Member.objects.get(id=user["id"]).workspace == workspace

    listed = tm.get("/api/v1/users", {"email": "email@example.com"})
    assert listed.status_code == 200 and listed.json() == {"data": [user]}
    everyone = tm.get("/api/v1/users").json()["data"]
    assert [u["email"] for u in everyone] == ["", "email@example.com"]  # the key's api-user is a user too
    assert tm.get(f"/api/v1/users/{user['id']}").json() == user

    patched = tm.patch(f"/api/v1/users/{user['id']}", {"tags": ["tag3"]})
    assert patched.status_code == 200 and patched.json() == {**user, "tags": ["tag3"]}
    assert Member.objects.get(id=user["id"]).tags == ["tag3"]

    deleted = tm.delete(f"/api/v1/users/{user['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert not Member.objects.filter(id=user["id"]).exists()
    missing = tm.get(f"/api/v1/users/{user['id']}")
    assert (missing.status_code, missing.json()) == (404, USER_NOT_FOUND)


def test_v1_tags_are_the_only_field_a_user_changes(tm):
    user = tm.post("/api/v1/users", {"email": "a@example.com"}).json()
    assert user["tags"] == []
    before = snapshot()
    for body in ({"email": "b@example.com"}, {"tags": ["t"], "email": "b@example.com"}, {}, {"tags": "t"}):
        invalid(tm.patch(f"/api/v1/users/{user['id']}", body))
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"tags": ["t"]},
        {"email": "nope"},
        {"email": "a@example.com", "tags": ["x" * 51]},
        {"email": "a@example.com", "tags": ["t"] * 51},
        {"email": "a@example.com", "groups": []},
        [{"email": "a@example.com"}],
    ],
)
def test_v1_create_with_bad_input_is_400_and_creates_nothing(tm, body):
    before = snapshot()
    invalid(tm.post("/api/v1/users", body))
    assert snapshot() == before


def test_v1_duplicate_email_is_400(tm):
    tm.post("/api/v1/users", {"email": "a@example.com"})
    body = invalid(tm.post("/api/v1/users", {"email": "A@example.com"}))
    assert body["details"]["fields"]["email"] == ["Already taken."]
    assert Member.objects.filter(email__iexact="a@example.com").count() == 1


# v2: users with groups and profile -------------------------------------------------------------------------------


def test_v2_user_lifecycle_with_groups_and_profile(tm, workspace, staff):
    support = Group.objects.create(workspace=workspace, name="Support")
    profile = {
        "firstName": "Ann",
        "lastName": "Lee",
        "profilePicURL": "https://example.com/a.png",
        "aboutMe": "Hi",
    }
    created = tm.post("/api/v2/users", {"email": "ann@example.com", "groups": [staff.id], "profile": profile})
    assert created.status_code == 200, created.json()
    user = created.json()
    assert set(user) == USER_V2_FIELDS | {"profile"}
    assert user["email"] == "ann@example.com" and user["groups"] == [{"id": staff.id, "name": "Staff"}]
    assert user["profile"] == profile
    assert tm.get("/api/v2/users", {"email": "ann@example.com"}).json() == {"data": [user]}
    assert tm.get(f"/api/v2/users/{user['id']}").json() == user

    patched = tm.patch(f"/api/v2/users/{user['id']}", {"groups": [support.id, staff.id]})
    assert patched.status_code == 200, patched.json()
    assert patched.json()["groups"] == [
        {"id": staff.id, "name": "Staff"},
        {"id": support.id, "name": "Support"},
    ]
    assert set(Member.objects.get(id=user["id"]).groups.all()) == {staff, support}

    assert tm.delete(f"/api/v2/users/{user['id']}").json() == {"success": True}
    missing = tm.delete(f"/api/v2/users/{user['id']}")
    assert (missing.status_code, missing.json()) == (404, USER_NOT_FOUND)


def test_v2_user_without_a_profile_has_no_profile_key(tm):
    user = tm.post("/api/v2/users", {"email": "bob@example.com"}).json()
    assert set(user) == USER_V2_FIELDS and user["groups"] == []
    api_user = tm.get("/api/v2/users").json()["data"][0]
    assert set(api_user) == USER_V2_FIELDS and api_user["email"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "profile": {"firstName": "A", "nickname": "x"}},
        {"email": "a@example.com", "profile": "Ann"},
        {"email": "a@example.com", "groups": ["grp_missing"]},
        {"email": "a@example.com", "groups": "grp_x"},
        {"email": "a@example.com", "tags": ["t"]},
        {"groups": []},
    ],
)
def test_v2_create_with_bad_input_is_400_and_creates_nothing(tm, staff, body):
    before = snapshot()
    invalid(tm.post("/api/v2/users", body))
    assert snapshot() == before


def test_v2_patch_takes_only_groups_of_the_workspace(tm, other_workspace, staff):
    user = tm.post("/api/v2/users", {"email": "a@example.com", "groups": [staff.id]}).json()
    foreign = Group.objects.create(workspace=other_workspace, name="Foreign")
    before = snapshot()
    for body in (
        {"groups": [foreign.id]},
        {"groups": [staff.id], "email": "x@example.com"},
        {},
        {"tags": ["t"]},
    ):
        invalid(tm.patch(f"/api/v2/users/{user['id']}", body))
    assert snapshot() == before


def test_v2_patching_the_api_users_groups_opens_and_closes_a_group_only_mind(tm, workspace, staff):
    member_client, member_key = tm_client(workspace)
    mind = Mind.objects.create(
        workspace=workspace,
        name="Archive",
        slug="archive-tm",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    assert member_client.get(f"/api/v1/minds/{mind.id}").status_code == 403
    assert tm.patch(f"/api/v2/users/{member_key.member_id}", {"groups": [staff.id]}).status_code == 200
    assert member_client.get(f"/api/v1/minds/{mind.id}").status_code == 200
    assert tm.patch(f"/api/v2/users/{member_key.member_id}", {"groups": []}).status_code == 200
    assert member_client.get(f"/api/v1/minds/{mind.id}").status_code == 403


def test_removing_an_api_user_retires_its_key(tm, workspace):
    member_client, member_key = tm_client(workspace, scopes=["minds:read"])
    assert member_client.get("/api/v1/ai-characters").status_code == 200
    assert tm.delete(f"/api/v2/users/{member_key.member_id}").status_code == 200
    assert member_client.get("/api/v1/ai-characters").status_code == 401
    assert ApiKey.objects.filter(id=member_key.id).count() == 0


def test_a_key_cannot_remove_the_api_user_of_a_wider_key(workspace):
    narrow, _ = tm_client(workspace, scopes=["users:manage"])
    _, wide_key = tm_client(workspace)
    before = snapshot()
    for path in (f"/api/v1/users/{wide_key.member_id}", f"/api/v2/users/{wide_key.member_id}"):
        response = narrow.delete(path)
        assert (response.status_code, response.json()) == (404, USER_NOT_FOUND)
    assert snapshot() == before


def test_users_made_through_typingmind_are_the_native_members(tm, workspace, staff):
    user = tm.post("/api/v2/users", {"email": "ann@example.com", "groups": [staff.id]}).json()
    native = KeyedClient(tm.key).get(f"/api/v1/members/{user['id']}").json()["member"]
    assert native["email"] == "ann@example.com" and native["groups"] == [{"id": staff.id, "title": "Staff"}]
    v1 = tm.get(f"/api/v1/users/{user['id']}").json()
    assert v1["id"] == user["id"] and v1["createdAt"] == user["createdAt"] == native["createdAt"]


# Groups and roles -------------------------------------------------------------------------------------------------


def test_groups_list_is_a_bare_array_and_a_group_carries_roles(tm, workspace, staff):
    listed = tm.get("/api/v2/groups")
    assert listed.status_code == 200 and listed.json() == [{"id": staff.id, "title": "Staff"}]
    created = tm.post("/api/v2/groups", {"title": "Analysts", "roles": ["role_analyst"]})
    assert created.status_code == 200, created.json()
    group = created.json()
    assert set(group) == {"id", "title", "roles"} and group["id"].startswith("grp_")
    assert (group["title"], group["roles"]) == ("Analysts", ["role_analyst"])
    assert tm.get(f"/api/v2/groups/{group['id']}").json() == group
    assert [g["title"] for g in tm.get("/api/v2/groups").json()] == ["Staff", "Analysts"]
    assert tm.post("/api/v2/groups", {"title": "Plain"}).json()["roles"] == []


def test_patch_group_takes_title_roles_or_both(tm, staff):
    path = f"/api/v2/groups/{staff.id}"
    assert tm.patch(path, {"title": "Team"}).json() == {
        "id": staff.id,
        "title": "Team",
        "roles": ["role_member"],
    }
    assert tm.patch(path, {"roles": ["role_admin"]}).json() == {
        "id": staff.id,
        "title": "Team",
        "roles": ["role_admin"],
    }
    both = tm.patch(path, {"title": "Crew", "roles": []})
    assert both.status_code == 200 and both.json() == {"id": staff.id, "title": "Crew", "roles": []}
    staff.refresh_from_db()
    assert (staff.name, staff.roles) == ("Crew", [])


@pytest.mark.parametrize(
    "method, body",
    [
        ("post", {"roles": ["role_admin"]}),
        ("post", {"title": "Ops", "roles": ["role_root"]}),
        ("post", {"title": "staff"}),
        ("post", {"title": "Ops", "memberIds": []}),
        ("patch", {}),
        ("patch", {"roles": ["role_root"]}),
        ("patch", {"title": ""}),
        ("patch", {"title": "Ops", "extra": 1}),
    ],
)
def test_bad_group_input_is_400_and_changes_nothing(tm, staff, method, body):
    path = "/api/v2/groups" if method == "post" else f"/api/v2/groups/{staff.id}"
    before = snapshot()
    invalid(getattr(tm, method)(path, body))
    assert snapshot() == before


def test_a_missing_group_is_user_not_found_as_typingmind_answers(tm, other_workspace):
    foreign = Group.objects.create(workspace=other_workspace, name="Foreign")
    for group_id in ("grp_missing", foreign.id):
        for response in (
            tm.get(f"/api/v2/groups/{group_id}"),
            tm.patch(f"/api/v2/groups/{group_id}", {"title": "X"}),
        ):
            assert (response.status_code, response.json()) == (404, USER_NOT_FOUND)
    foreign.refresh_from_db()
    assert foreign.name == "Foreign"


def test_roles_are_the_fixed_set_as_id_and_title(tm):
    response = tm.get("/api/v2/roles")
    assert response.status_code == 200
    assert response.json() == [{"id": role.id, "title": role.title} for role in ROLES]


def test_a_group_role_given_through_typingmind_narrows_the_members_key(tm, workspace):
    member_client, member_key = tm_client(workspace)
    group = tm.post("/api/v2/groups", {"title": "Chatters", "roles": ["role_member"]}).json()
    tm.patch(f"/api/v2/users/{member_key.member_id}", {"groups": [group["id"]]})
    assert KeyedClient(member_client.key).post("/api/v1/minds", {"name": "M"}).status_code == 403
    assert member_client.get("/api/v2/users").status_code == 403
    tm.patch(f"/api/v2/groups/{group['id']}", {"roles": ["role_admin"]})
    assert member_client.get("/api/v2/users").status_code == 200


# Audit log --------------------------------------------------------------------------------------------------------


def test_audit_logs_page_with_the_documented_shape(tm, workspace):
    tm.post("/api/v1/users", {"email": "a@example.com"})
    tm.post("/api/v2/groups", {"title": "G"})
    KeyedClient(tm.key).post("/api/v1/minds", {"name": "Atlas"})
    response = tm.get("/api/v2/audit-logs")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"logs", "hasMore", "page", "total"}
    assert (body["page"], body["total"], body["hasMore"]) == (1, 4, False)
    assert all(set(log) == LOG_FIELDS for log in body["logs"])
    newest = body["logs"][0]
    acting = ApiKey.objects.get(last4=tm.key[-4:])
    assert isinstance(newest["id"], int) and newest["recordedAt"].endswith("Z")
    # Entities as TypingMind names them: a mind is an agent, a member a user.
    assert [(log["entity"], log["action"], log["entityName"]) for log in body["logs"]] == [
        ("agent", "create", "Atlas"),
        ("group", "create", "G"),
        ("user", "create", "a@example.com"),
        ("api_key", "create", "test"),
    ]
    assert [log["userID"] for log in body["logs"][:3]] == [acting.member_id] * 3
    assert body["logs"][3]["userID"] is None  # the key was made by the test, not by a member


def test_audit_logs_page_and_limit(tm, workspace):
    for n in range(29):
        tm.post("/api/v2/groups", {"title": f"G{n}"})
    first = tm.get("/api/v2/audit-logs").json()
    assert (len(first["logs"]), first["page"], first["total"], first["hasMore"]) == (25, 1, 30, True)
    second = tm.get("/api/v2/audit-logs", {"page": 2}).json()
    assert (len(second["logs"]), second["page"], second["hasMore"]) == (5, 2, False)
    assert {log["id"] for log in first["logs"]}.isdisjoint(log["id"] for log in second["logs"])
    small = tm.get("/api/v2/audit-logs", {"limit": 10, "page": 3}).json()
    assert (len(small["logs"]), small["hasMore"]) == (10, False)
    assert [log["id"] for log in small["logs"]] == [log["id"] for log in first["logs"]][20:25] + [
        log["id"] for log in second["logs"]
    ]
    for params in ({"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}):
        invalid(tm.get("/api/v2/audit-logs", params))


def test_audit_log_user_id_is_null_once_that_user_is_deleted(tm, workspace):
    actor_client, actor_key = tm_client(workspace)
    actor_client.post("/api/v2/groups", {"title": "Made by the actor"})
    assert tm.delete(f"/api/v2/users/{actor_key.member_id}").status_code == 200
    logs = tm.get("/api/v2/audit-logs").json()["logs"]
    made = next(log for log in logs if log["entityName"] == "Made by the actor")
    assert made["userID"] is None
    assert AuditLog.objects.get(id=made["id"]).actor_key_id == actor_key.id


def test_audit_logs_need_a_key_that_reaches_the_whole_workspace(workspace):
    mind = Mind.objects.create(workspace=workspace, name="M", slug="m-tm-audit")
    restricted, _ = tm_client(workspace, allowed_mind_ids=[mind.id])
    response = restricted.get("/api/v2/audit-logs")
    assert response.status_code == 403 and "restricted" in response.json()["userMessage"]


def test_audit_logs_of_another_workspace_are_not_shown(tm, other_tm):
    other_tm.post("/api/v2/groups", {"title": "Elsewhere"})
    names = {log["entityName"] for log in tm.get("/api/v2/audit-logs").json()["logs"]}
    assert "Elsewhere" not in names


# Authentication, scope, workspaces --------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{user}"),
    ("patch", "/api/v1/users/{user}"),
    ("delete", "/api/v1/users/{user}"),
    ("get", "/api/v2/users"),
    ("post", "/api/v2/users"),
    ("get", "/api/v2/users/{user}"),
    ("patch", "/api/v2/users/{user}"),
    ("delete", "/api/v2/users/{user}"),
    ("get", "/api/v2/groups"),
    ("post", "/api/v2/groups"),
    ("get", "/api/v2/groups/{group}"),
    ("patch", "/api/v2/groups/{group}"),
    ("get", "/api/v2/roles"),
    ("get", "/api/v2/audit-logs"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_endpoint_answers_typingmind_errors_for_auth_and_scope(tm, workspace, staff, method, path):
    user = tm.post("/api/v1/users", {"email": "a@example.com"}).json()
    path = path.format(user=user["id"], group=staff.id)
    no_scope, _ = tm_client(workspace, scopes=["minds:read", "minds:chat", "keys:manage"])
    before = snapshot()
    missing = getattr(TypingMindClient(None), method)(path)
    assert (missing.status_code, missing.json()) == (401, UNAUTHORIZED)
    bad = getattr(TypingMindClient("tr_live_" + "x" * 32), method)(path)
    assert bad.status_code == 401 and set(bad.json()) == {"userMessage"}
    refused = getattr(no_scope, method)(path)
    assert refused.status_code == 403 and "users:manage" in refused.json()["userMessage"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "method, path, data",
    [
        ("get", "/api/v1/users/{user}", None),
        ("patch", "/api/v1/users/{user}", {"tags": ["x"]}),
        ("delete", "/api/v1/users/{user}", None),
        ("get", "/api/v2/users/{user}", None),
        ("patch", "/api/v2/users/{user}", {"groups": []}),
        ("delete", "/api/v2/users/{user}", None),
        ("get", "/api/v2/users/123456", None),
        ("patch", "/api/v1/users/123456", {"tags": []}),
    ],
)
def test_another_workspaces_users_are_user_not_found_and_unchanged(tm, other_tm, staff, method, path, data):
    user = tm.post("/api/v2/users", {"email": "a@example.com", "groups": [staff.id]}).json()
    path = path.format(user=user["id"])
    before = snapshot()
    call = getattr(other_tm, method)
    response = call(path, data) if data is not None else call(path)
    assert (response.status_code, response.json()) == (404, USER_NOT_FOUND)
    assert snapshot() == before
    assert other_tm.get("/api/v2/users", {"email": "a@example.com"}).json() == {"data": []}
    assert other_tm.get("/api/v2/groups").json() == []


def test_typingmind_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path, methods in {
        "/api/v1/users": {"get", "post"},
        "/api/v1/users/{user_id}": {"get", "patch", "delete"},
        "/api/v2/users": {"get", "post"},
        "/api/v2/users/{user_id}": {"get", "patch", "delete"},
        "/api/v2/groups": {"get", "post"},
        "/api/v2/groups/{group_id}": {"get", "patch"},
        "/api/v2/roles": {"get"},
        "/api/v2/audit-logs": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    assert (
        paths["/api/v2/groups"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"]
        == "array"
    )
