"""The native teams endpoints: members, groups and roles (scope users:manage), what a group's membership and roles
do to a key, the admin pages, and the OpenAPI document describing them truthfully."""

import json
import re

import pytest
from django.contrib.auth.models import User
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from accounts.models import AuditLog, Group, Member
from accounts.roles import ROLES
from apikeys.models import ApiKey
from minds.models import Mind
from tests.helpers import KeyedClient, admin_path, assert_error, make_key

pytestmark = pytest.mark.django_db

PROFILE = {
    "firstName": "Ann",
    "lastName": "Lee",
    "profilePicURL": "https://example.com/ann.png",
    "aboutMe": "Runs the support team.",
}
EMPTY_PROFILE = {"firstName": "", "lastName": "", "profilePicURL": "", "aboutMe": ""}
MEMBER_KEYS = {"id", "email", "name", "tags", "groups", "profile", "isApiUser", "createdAt", "updatedAt"}
GROUP_KEYS = {"id", "title", "roles", "memberIds", "createdAt", "updatedAt"}


def key_of(plaintext: str) -> ApiKey:
    return ApiKey.objects.select_related("member").get(last4=plaintext[-4:])


def keyed(workspace, scopes="all", **kwargs) -> tuple[KeyedClient, ApiKey]:
    plaintext = make_key(workspace, scopes=scopes, **kwargs)
    return KeyedClient(plaintext), key_of(plaintext)


def snapshot() -> tuple:
    """Every member, group, membership, key and the audit log's length: a refused request changes none of them."""
    return (
        list(Member.objects.order_by("pk").values()),
        list(Group.objects.order_by("pk").values()),
        sorted(Member.groups.through.objects.values_list("member_id", "group_id")),
        # last_used_at moves with every request a key makes; revocation is what matters.
        list(ApiKey.objects.order_by("pk").values("id", "member_id", "scopes", "revoked_at")),
        AuditLog.objects.count(),
    )


@pytest.fixture
def staff(workspace):
    return Group.objects.create(workspace=workspace, name="Staff", roles=["role_builder"])


@pytest.fixture
def ann(api, staff):
    response = api.post(
        "/api/v1/members",
        {
            "email": "ann@example.com",
            "name": "Ann Lee",
            "tags": ["support"],
            "groupIds": [staff.id],
            "profile": PROFILE,
        },
    )
    assert response.status_code == 201, response.json()
    return response.json()["member"]


# Members ----------------------------------------------------------------------------------------------------------


def test_create_member_returns_the_member_with_groups_and_profile(api, workspace, staff, ann):
    assert set(ann) == MEMBER_KEYS
    assert ann["id"].startswith("usr_")
    assert ann["email"] == "ann@example.com" and ann["name"] == "Ann Lee"
    assert ann["tags"] == ["support"]
    assert ann["groups"] == [{"id": staff.id, "title": "Staff"}]
    assert ann["profile"] == PROFILE
    assert ann["isApiUser"] is False
    assert ann["createdAt"].endswith("Z") and ann["updatedAt"].endswith("Z")
    member = Member.objects.get(id=ann["id"])
    assert (
        member.workspace == workspace and member.first_name == "Ann" and list(member.groups.all()) == [staff]
    )
    detail = api.get(f"/api/v1/members/{ann['id']}")
    assert detail.status_code == 200 and detail.json() == {"status": "success", "member": ann}


def test_member_list_includes_api_users_and_filters_by_email_tag_and_group(api, workspace, staff, ann):
    api.post("/api/v1/members", {"email": "bob@example.com", "tags": ["sales", "support"]})
    api.post("/api/v1/members", {"email": "cy@example.com"})
    listed = api.get("/api/v1/members").json()
    emails = [m["email"] for m in listed["members"]]
    # The key's own api-user came first (made with the key), named for it and flagged.
    api_user = listed["members"][0]
    assert (
        api_user["isApiUser"] is True
        and api_user["name"].startswith("api-user-key_")
        and api_user["email"] == ""
    )
    assert emails[1:] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 4, "totalPages": 1}

    def emails_for(**params):
        return [m["email"] for m in api.get("/api/v1/members", params).json()["members"]]

    assert emails_for(email="ANN@example.com") == ["ann@example.com"]
    assert emails_for(tag="support") == ["ann@example.com", "bob@example.com"]
    assert emails_for(tag="sales") == ["bob@example.com"]
    assert emails_for(groupId=staff.id) == ["ann@example.com"]
    assert emails_for(groupId="grp_missing") == []
    page = api.get("/api/v1/members", {"limit": 2, "page": 2}).json()
    assert [m["email"] for m in page["members"]] == ["bob@example.com", "cy@example.com"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 4, "totalPages": 2}
    assert_error(api.get("/api/v1/members", {"limit": 101}), 400, "validation_error")


def test_patch_member_replaces_lists_and_changes_email_and_profile(api, workspace, staff, ann):
    support = Group.objects.create(workspace=workspace, name="Support")
    response = api.patch(
        f"/api/v1/members/{ann['id']}",
        {
            "email": "ann.lee@example.com",
            "tags": ["lead"],
            "groupIds": [support.id],
            "profile": {"aboutMe": "Leads support.", "profilePicURL": None},
        },
    )
    assert response.status_code == 200, response.json()
    member = response.json()["member"]
    assert member["email"] == "ann.lee@example.com" and member["tags"] == ["lead"]
    assert member["groups"] == [{"id": support.id, "title": "Support"}]
    assert member["profile"] == {**PROFILE, "aboutMe": "Leads support.", "profilePicURL": ""}
    assert member["name"] == "Ann Lee"  # not given, kept
    stored = Member.objects.get(id=ann["id"])
    assert list(stored.groups.all()) == [support] and stored.about_me == "Leads support."
    # Nothing given, nothing changed.
    same = api.patch(f"/api/v1/members/{ann['id']}", {})
    assert same.status_code == 200 and same.json()["member"]["email"] == "ann.lee@example.com"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({}, "email"),
        ({"email": "x@example.com", "profile": {"nickname": "X"}}, "profile.nickname"),
        (
            {"email": "x@example.com", "profile": {"profilePicURL": "javascript:alert(1)"}},
            "profile.profilePicURL",
        ),
        ({"email": "x@example.com", "tags": ["t"] * 51}, "tags"),
        ({"email": "x@example.com", "tags": ["x" * 51]}, "tags.0"),
        ({"email": "x@example.com", "tags": [""]}, "tags.0"),
        ({"email": "x@example.com", "tags": "support"}, "tags"),
        ({"email": "x@example.com", "groupIds": ["grp_missing"]}, "groupIds"),
        ({"email": "x@example.com", "role": "admin"}, "role"),
    ],
)
def test_create_member_with_bad_input_gives_400_and_creates_nothing(api, workspace, body, field):
    before = Member.objects.count(), AuditLog.objects.count()
    response = assert_error(api.post("/api/v1/members", body), 400, "validation_error")
    assert field in response["details"]["fields"], response
    assert (Member.objects.count(), AuditLog.objects.count()) == before


def test_email_is_unique_in_a_workspace_whatever_its_case(api, other_api, ann):
    body = assert_error(api.post("/api/v1/members", {"email": "ANN@example.com"}), 400, "validation_error")
    assert body["details"]["fields"]["email"] == ["Already taken."]
    bob = api.post("/api/v1/members", {"email": "bob@example.com"}).json()["member"]
    assert_error(
        api.patch(f"/api/v1/members/{bob['id']}", {"email": "Ann@Example.com"}), 400, "validation_error"
    )
    assert Member.objects.get(id=bob["id"]).email == "bob@example.com"
    # Another workspace may have its own Ann.
    assert other_api.post("/api/v1/members", {"email": "ann@example.com"}).status_code == 201


def test_groups_of_another_workspace_cannot_be_given_to_a_member(api, other_workspace, ann):
    foreign = Group.objects.create(workspace=other_workspace, name="Staff")
    body = assert_error(
        api.patch(f"/api/v1/members/{ann['id']}", {"groupIds": [foreign.id]}), 400, "validation_error"
    )
    assert body["details"]["fields"]["groupIds"] == [f"Unknown group: {foreign.id}"]
    assert [g.name for g in Member.objects.get(id=ann["id"]).groups.all()] == ["Staff"]
    assert not foreign.members.exists()


def test_delete_member_removes_it(api, ann):
    response = api.delete(f"/api/v1/members/{ann['id']}")
    assert response.status_code == 200 and response.json() == {
        "status": "success",
        "deleted": True,
        "id": ann["id"],
    }
    assert not Member.objects.filter(id=ann["id"]).exists()
    assert_error(api.get(f"/api/v1/members/{ann['id']}"), 404, "not_found")
    assert_error(api.delete(f"/api/v1/members/{ann['id']}"), 404, "not_found")


def test_an_api_user_keeps_its_name_email_and_profile_but_its_tags_and_groups_change(api, workspace, staff):
    _, other_key = keyed(workspace)
    path = f"/api/v1/members/{other_key.member_id}"
    for change in ({"email": "ceo@example.com"}, {"name": "The CEO"}, {"profile": {"firstName": "Jane"}}):
        body = assert_error(api.patch(path, change), 400, "validation_error")
        assert "api-user" in body["message"]
    member = Member.objects.get(id=other_key.member_id)
    assert (member.email, member.first_name, member.name) == ("", "", f"api-user-{other_key.id}")
    changed = api.patch(path, {"tags": ["bot"], "groupIds": [staff.id]})
    assert changed.status_code == 200, changed.json()
    assert changed.json()["member"]["tags"] == ["bot"] and changed.json()["member"]["isApiUser"] is True


def test_deleting_an_api_user_revokes_its_key(api, workspace):
    other, other_key = keyed(workspace, scopes=["minds:read"])
    assert other.get("/api/v1/auth/verify").status_code == 200
    response = api.delete(f"/api/v1/members/{other_key.member_id}")
    assert response.status_code == 200, response.json()
    assert_error(other.get("/api/v1/auth/verify"), 401, "invalid_api_key")
    assert not Member.objects.filter(id=other_key.member_id).exists()
    entries = list(AuditLog.objects.filter(entity_id__in=[other_key.id, other_key.member_id]).order_by("id"))
    assert [(e.entity, e.action) for e in entries][-2:] == [("api_key", "revoke"), ("member", "delete")]


def test_an_api_user_whose_key_is_out_of_reach_is_not_found_and_kept(workspace):
    narrow, _ = keyed(workspace, scopes=["users:manage"])
    wide, wide_key = keyed(workspace, scopes="all")
    restricted_mind = Mind.objects.create(workspace=workspace, name="M", slug="m-reach")
    restricted, restricted_key = keyed(workspace, scopes="all", allowed_mind_ids=[restricted_mind.id])
    before = snapshot()
    assert_error(narrow.delete(f"/api/v1/members/{wide_key.member_id}"), 404, "not_found")
    # A key restricted to some minds reaches no unrestricted key either.
    assert_error(restricted.delete(f"/api/v1/members/{wide_key.member_id}"), 404, "not_found")
    assert snapshot() == before
    assert wide.get("/api/v1/auth/verify").status_code == 200
    # Within reach: the wide key may retire the restricted one.
    assert wide.delete(f"/api/v1/members/{restricted_key.member_id}").status_code == 200
    assert_error(restricted.get("/api/v1/auth/verify"), 401, "invalid_api_key")


# Groups -----------------------------------------------------------------------------------------------------------


def test_create_group_with_roles_and_members_and_read_it(api, workspace, ann):
    response = api.post(
        "/api/v1/groups",
        {
            "title": "Analysts",
            "roles": ["role_member", "role_analyst", "role_member"],
            "memberIds": [ann["id"]],
        },
    )
    assert response.status_code == 201, response.json()
    group = response.json()["group"]
    assert set(group) == GROUP_KEYS and group["id"].startswith("grp_")
    # Roles are kept in the fixed order of the roles list, once each.
    assert group["title"] == "Analysts" and group["roles"] == ["role_analyst", "role_member"]
    assert group["memberIds"] == [ann["id"]]
    assert api.get(f"/api/v1/groups/{group['id']}").json() == {"status": "success", "group": group}
    listed = api.get("/api/v1/groups").json()
    assert [g["title"] for g in listed["groups"]] == ["Staff", "Analysts"]
    assert listed["pagination"]["total"] == 2
    assert [g["title"] for g in api.get(f"/api/v1/members/{ann['id']}").json()["member"]["groups"]] == [
        "Analysts",
        "Staff",
    ]


def test_patch_group_changes_title_roles_and_members(api, workspace, staff, ann):
    bob = api.post("/api/v1/members", {"email": "bob@example.com"}).json()["member"]
    response = api.patch(
        f"/api/v1/groups/{staff.id}", {"title": "Team", "roles": [], "memberIds": [bob["id"]]}
    )
    assert response.status_code == 200, response.json()
    group = response.json()["group"]
    assert (group["title"], group["roles"], group["memberIds"]) == ("Team", [], [bob["id"]])
    staff.refresh_from_db()
    assert staff.name == "Team" and staff.roles == [] and [m.id for m in staff.members.all()] == [bob["id"]]
    assert api.get(f"/api/v1/members/{ann['id']}").json()["member"]["groups"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": "Ops", "roles": ["role_superuser"]}, "roles"),
        ({"title": "Ops", "roles": "role_admin"}, "roles"),
        ({"title": "staff"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 101}, "title"),
        ({"title": "Ops", "memberIds": ["usr_missing"]}, "memberIds"),
        ({"roles": ["role_admin"]}, "title"),
        ({"title": "Ops", "members": []}, "members"),
    ],
)
def test_create_group_with_bad_input_gives_400_and_creates_nothing(api, staff, body, field):
    before = snapshot()
    response = assert_error(api.post("/api/v1/groups", body), 400, "validation_error")
    assert field in response["details"]["fields"], response
    assert snapshot() == before


def test_a_group_cannot_take_members_of_another_workspace(api, other_api, staff):
    foreign = other_api.post("/api/v1/members", {"email": "eve@example.com"}).json()["member"]
    before = snapshot()
    assert_error(
        api.patch(f"/api/v1/groups/{staff.id}", {"memberIds": [foreign["id"]]}), 400, "validation_error"
    )
    assert_error(api.patch(f"/api/v1/groups/{staff.id}", {"roles": ["nope"]}), 400, "validation_error")
    assert snapshot() == before and not Member.objects.get(id=foreign["id"]).groups.exists()


def test_deleting_a_group_takes_it_out_of_minds_and_a_group_only_mind_stays_closed(api, workspace, staff):
    insider, insider_key = keyed(workspace)
    insider_key.member.groups.add(staff)
    support = Group.objects.create(workspace=workspace, name="Support")
    only_staff = Mind.objects.create(
        workspace=workspace,
        name="Staff only",
        slug="staff-only",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    both = Mind.objects.create(
        workspace=workspace,
        name="Both",
        slug="both-groups",
        visibility="groups",
        allowed_group_ids=[staff.id, support.id],
    )
    assert insider.get(f"/api/v1/minds/{only_staff.id}").status_code == 200
    response = api.delete(f"/api/v1/groups/{staff.id}")
    assert response.status_code == 200 and response.json() == {
        "status": "success",
        "deleted": True,
        "id": staff.id,
    }
    assert not Group.objects.filter(id=staff.id).exists()
    only_staff.refresh_from_db()
    both.refresh_from_db()
    assert (only_staff.visibility, only_staff.allowed_group_ids) == ("groups", [])
    assert (both.visibility, both.allowed_group_ids) == ("groups", [support.id])
    # Closed to every key, never opened to the workspace.
    for client in (insider, api):
        assert_error(client.get(f"/api/v1/minds/{only_staff.id}"), 403, "mind_access_denied")
        assert only_staff.id not in {m["id"] for m in client.get("/api/v1/minds").json()["minds"]}
    entries = AuditLog.objects.filter(entity="mind", action="update", entity_id=only_staff.id)
    assert entries.get().changes == {"allowed_group_ids": {"from": [staff.id], "to": []}}


# Roles and what groups do to keys --------------------------------------------------------------------------------


def test_roles_lists_the_fixed_set_with_their_scopes(api):
    response = api.get("/api/v1/roles")
    assert response.status_code == 200
    roles = response.json()["roles"]
    assert [r["id"] for r in roles] == ["role_admin", "role_builder", "role_analyst", "role_member"]
    by_id = {r["id"]: r for r in roles}
    assert set(by_id["role_analyst"]) == {"id", "title", "description", "scopes"}
    assert by_id["role_analyst"]["scopes"] == ["conversations:read", "knowledge:search", "minds:read"]
    assert by_id["role_admin"]["title"] == "Admin" and "users:manage" in by_id["role_admin"]["scopes"]
    assert {r["id"]: set(r["scopes"]) for r in roles} == {role.id: set(role.scopes) for role in ROLES}


def test_a_role_narrows_the_keys_of_the_groups_members_and_removing_it_restores_them(api, workspace):
    analyst, analyst_key = keyed(workspace)
    group = api.post(
        "/api/v1/groups",
        {"title": "Analysts", "roles": ["role_analyst"], "memberIds": [analyst_key.member_id]},
    ).json()["group"]
    permissions = analyst.get("/api/v1/auth/verify").json()["permissions"]
    assert permissions == ["minds:read", "knowledge:search", "conversations:read"]
    assert analyst.get("/api/v1/minds").status_code == 200
    body = assert_error(analyst.post("/api/v1/minds", {"name": "Nope"}), 403, "insufficient_scope")
    assert body["details"]["requiredScope"] == "minds:write"
    assert_error(analyst.get("/api/v1/members"), 403, "insufficient_scope")
    assert not Mind.objects.exists()
    # A role never adds a scope the key lacks: role_admin on a read-only key leaves it read-only.
    reader, reader_key = keyed(workspace, scopes=["minds:read"])
    api.post(
        "/api/v1/groups", {"title": "Admins", "roles": ["role_admin"], "memberIds": [reader_key.member_id]}
    )
    assert reader.get("/api/v1/auth/verify").json()["permissions"] == ["minds:read"]
    # Out of the group (through the member), the key has its own scopes again.
    api.patch(f"/api/v1/members/{analyst_key.member_id}", {"groupIds": []})
    assert analyst.post("/api/v1/minds", {"name": "Now"}).status_code == 201
    assert group["id"] in {g["id"] for g in api.get("/api/v1/groups").json()["groups"]}


def test_membership_changed_through_the_api_opens_and_closes_a_group_only_mind(api, workspace, staff):
    member_client, member_key = keyed(workspace)
    mind = Mind.objects.create(
        workspace=workspace,
        name="Archive",
        slug="archive-api",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    path = f"/api/v1/minds/{mind.id}"
    assert_error(member_client.get(path), 403, "mind_access_denied")
    # Through the member's groups ...
    assert api.patch(f"/api/v1/members/{member_key.member_id}", {"groupIds": [staff.id]}).status_code == 200
    assert member_client.get(path).status_code == 200
    assert mind.id in {m["id"] for m in member_client.get("/api/v1/minds").json()["minds"]}
    assert api.patch(f"/api/v1/members/{member_key.member_id}", {"groupIds": []}).status_code == 200
    assert_error(member_client.get(path), 403, "mind_access_denied")
    # ... and through the group's members.
    assert api.patch(f"/api/v1/groups/{staff.id}", {"memberIds": [member_key.member_id]}).status_code == 200
    assert member_client.get(path).status_code == 200
    assert api.patch(f"/api/v1/groups/{staff.id}", {"memberIds": []}).status_code == 200
    assert_error(member_client.get(path), 403, "mind_access_denied")


# Authentication, scope and workspaces, for every endpoint ---------------------------------------------------------

ENDPOINTS = [
    ("get", "/api/v1/members"),
    ("post", "/api/v1/members"),
    ("get", "/api/v1/members/{member}"),
    ("patch", "/api/v1/members/{member}"),
    ("delete", "/api/v1/members/{member}"),
    ("get", "/api/v1/groups"),
    ("post", "/api/v1/groups"),
    ("get", "/api/v1/groups/{group}"),
    ("patch", "/api/v1/groups/{group}"),
    ("delete", "/api/v1/groups/{group}"),
    ("get", "/api/v1/roles"),
    ("get", "/api/v1/audit-logs"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_endpoint_needs_a_valid_key_with_users_manage(workspace, staff, ann, method, path):
    path = path.format(member=ann["id"], group=staff.id)
    no_scope, _ = keyed(workspace, scopes=["minds:read", "minds:write", "keys:manage"])
    before = snapshot()
    assert_error(getattr(KeyedClient(None), method)(path), 401, "missing_api_key")
    assert_error(getattr(KeyedClient("tr_live_" + "x" * 32), method)(path), 401, "invalid_api_key")
    body = assert_error(getattr(no_scope, method)(path), 403, "insufficient_scope")
    assert body["details"]["requiredScope"] == "users:manage"
    assert snapshot() == before


@pytest.mark.parametrize(
    "method, path, data",
    [
        ("get", "/api/v1/members/{member}", None),
        ("patch", "/api/v1/members/{member}", {"tags": ["stolen"], "groupIds": []}),
        ("delete", "/api/v1/members/{member}", None),
        ("get", "/api/v1/groups/{group}", None),
        ("patch", "/api/v1/groups/{group}", {"title": "Mine", "memberIds": []}),
        ("delete", "/api/v1/groups/{group}", None),
    ],
)
def test_another_workspaces_members_and_groups_are_not_found_and_unchanged(
    other_api, staff, ann, method, path, data
):
    before = snapshot()
    call = getattr(other_api, method)
    response = (
        call(path.format(member=ann["id"], group=staff.id), data)
        if data
        else call(path.format(member=ann["id"], group=staff.id))
    )
    assert_error(response, 404, "not_found")
    assert snapshot() == before
    assert ann["email"] not in json.dumps(other_api.get("/api/v1/members").json())
    assert staff.id not in json.dumps(other_api.get("/api/v1/groups").json())


def test_another_workspaces_api_user_cannot_be_deleted(other_api, workspace):
    victim, victim_key = keyed(workspace)
    assert_error(other_api.delete(f"/api/v1/members/{victim_key.member_id}"), 404, "not_found")
    assert victim.get("/api/v1/auth/verify").status_code == 200


# The admin --------------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    return client


def test_admin_shows_members_with_groups_and_profile_and_groups_with_roles(admin_client, staff, ann):
    listing = admin_client.get("/admin/accounts/member/").content.decode()
    assert "ann@example.com" in listing and "Staff" in listing
    page = admin_client.get(admin_path("accounts/member", ann["id"])).content.decode()
    assert "Runs the support team." in page and "https://example.com/ann.png" in page
    group_page = admin_client.get(admin_path("accounts/group", staff.id)).content.decode()
    for role in ROLES:
        assert f'value="{role.id}"' in group_page
    checked = re.findall(r'value="(role_\w+)" id="id_roles_\d" checked', group_page)
    assert checked == ["role_builder"]
    assert admin_client.get("/admin/accounts/auditlog/").status_code == 200


def test_admin_group_roles_are_a_choice_of_the_fixed_roles(admin_client, workspace, staff):
    response = admin_client.post(
        admin_path("accounts/group", staff.id),
        {"name": "Staff", "roles": ["role_analyst", "role_member"]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    staff.refresh_from_db()
    assert staff.roles == ["role_analyst", "role_member"]
    refused = admin_client.post(
        admin_path("accounts/group", staff.id), {"name": "Staff", "roles": ["role_god"]}
    )
    assert refused.status_code == 200 and "role_god" in refused.content.decode()
    staff.refresh_from_db()
    assert staff.roles == ["role_analyst", "role_member"]


def test_admin_member_cannot_join_another_workspaces_group(admin_client, workspace, other_workspace, ann):
    foreign = Group.objects.create(workspace=other_workspace, name="Foreign")
    response = admin_client.post(
        admin_path("accounts/member", ann["id"]),
        {"email": "ann@example.com", "name": "Ann Lee", "tags": '["support"]', "groups": [foreign.id]},
    )
    assert response.status_code == 200 and "another workspace" in response.content.decode()
    assert not foreign.members.exists()


def test_admin_keeps_an_api_users_identity_and_its_deletion_goes_through_the_key(admin_client, workspace):
    _, other_key = keyed(workspace)
    page = admin_client.get(admin_path("accounts/member", other_key.member_id)).content.decode()
    assert 'name="email"' not in page and 'name="first_name"' not in page
    assert admin_client.get(admin_path("accounts/member", other_key.member_id, "delete")).status_code == 403
    admin_client.post(
        "/admin/accounts/member/",
        {"action": "delete_selected", "_selected_action": [other_key.member_id], "post": "yes"},
    )
    assert Member.objects.filter(id=other_key.member_id).exists()


# OpenAPI ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


def check(document, response, path: str, method: str):
    operation = document["paths"][path][method]
    spec = operation["responses"][str(response.status_code)]
    schema = next(iter(spec["content"].values()))["schema"]
    registry = Registry().with_resource(
        "urn:doc",
        Resource.from_contents({**document, "$schema": "https://json-schema.org/draft/2020-12/schema"}),
    )
    rooted = {"$ref": "urn:doc#" + schema["$ref"][1:]} if "$ref" in schema else schema
    errors = sorted(Draft202012Validator(rooted, registry=registry).iter_errors(response.json()), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_real_responses_match_the_openapi_document(document, api, staff, ann):
    for path in (
        "/api/v1/members",
        "/api/v1/members/{member_id}",
        "/api/v1/groups",
        "/api/v1/groups/{group_id}",
        "/api/v1/roles",
        "/api/v1/audit-logs",
    ):
        assert {"get"} <= set(document["paths"][path]), path
    check(document, api.get("/api/v1/members"), "/api/v1/members", "get")
    check(document, api.get(f"/api/v1/members/{ann['id']}"), "/api/v1/members/{member_id}", "get")
    check(document, api.post("/api/v1/members", {"email": "z@example.com"}), "/api/v1/members", "post")
    check(
        document,
        api.patch(f"/api/v1/members/{ann['id']}", {"tags": []}),
        "/api/v1/members/{member_id}",
        "patch",
    )
    check(document, api.get("/api/v1/groups"), "/api/v1/groups", "get")
    check(document, api.post("/api/v1/groups", {"title": "New"}), "/api/v1/groups", "post")
    check(document, api.get(f"/api/v1/groups/{staff.id}"), "/api/v1/groups/{group_id}", "get")
    check(document, api.get("/api/v1/roles"), "/api/v1/roles", "get")
    check(document, api.get("/api/v1/audit-logs"), "/api/v1/audit-logs", "get")
    check(document, api.get("/api/v1/members/usr_missing"), "/api/v1/members/{member_id}", "get")
    check(document, api.delete(f"/api/v1/members/{ann['id']}"), "/api/v1/members/{member_id}", "delete")
    check(document, api.delete(f"/api/v1/groups/{staff.id}"), "/api/v1/groups/{group_id}", "delete")


def test_deleting_a_group_in_the_admin_takes_it_out_of_minds(admin_client, workspace, staff):
    support = Group.objects.create(workspace=workspace, name="Support")
    mind = Mind.objects.create(
        workspace=workspace,
        name="M",
        slug="m-admin-groups",
        visibility="groups",
        allowed_group_ids=[staff.id, support.id],
    )
    assert (
        admin_client.post(admin_path("accounts/group", staff.id, "delete"), {"post": "yes"}).status_code
        == 302
    )
    mind.refresh_from_db()
    assert mind.allowed_group_ids == [support.id]
    admin_client.post(
        "/admin/accounts/group/",
        {"action": "delete_selected", "_selected_action": [support.id], "post": "yes"},
    )
    mind.refresh_from_db()
    assert not Group.objects.exists() and (mind.visibility, mind.allowed_group_ids) == ("groups", [])
    updates = AuditLog.objects.filter(entity="mind", entity_id=mind.id, action="update").order_by("id")
    assert [e.actor_label for e in updates] == ["admin:admin", "admin:admin"]
