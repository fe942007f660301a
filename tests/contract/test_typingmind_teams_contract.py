"""Contract: the requests a TypingMind Team API client sends for users, groups, roles and the audit log, replayed
over HTTP with `X-API-KEY` against a live server.

v1 (/users) replays seeds/001 (TypingMind OpenAPI 1.1.0, server `…/api/v1`) verbatim: its request bodies, its query
example `email=email%40example.com` sent still encoded, and its path id example 123456. The seed's body example
email was obfuscated when the page was saved ("[email protected]"); the query example shows it was
`email@example.com`, which is used. v2 follows the shapes of reference/seed-apis.md §B.2 (spec 1.2.0).
"""

import httpx
import pytest

from accounts.models import Group, Member
from tests.helpers import make_key

pytestmark = pytest.mark.django_db(transaction=True)

SEED_USER_BODY = {"email": "email@example.com", "tags": ["tag1", "tag2"]}
SEED_TAGS_BODY = {"tags": ["tag1", "tag2"]}
SEED_EMAIL_QUERY = "email=email%40example.com"
SEED_USER_ID = 123456
USER_KEYS = {"id", "email", "createdAt", "tags"}
USER_V2_KEYS = {"id", "email", "createdAt", "groups"}
AUDIT_LOG_KEYS = {"id", "entity", "entityName", "action", "recordedAt", "userID"}
UNAUTHORIZED = {"userMessage": "Unauthorized (API Key is missing or invalid)"}
USER_NOT_FOUND = {"userMessage": "User Not Found"}


@pytest.fixture
def key(workspace):
    return make_key(workspace, scopes="all")


@pytest.fixture
def v1(live_server, key):
    """As the 1.1.0 spec's server: `https://api.typingmind.com/api/v1`, key in `X-API-KEY`."""
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers={"X-API-KEY": key}, timeout=60) as client:
        yield client


@pytest.fixture
def tm(live_server, key):
    """As the current spec's server: `https://api.typingmind.com/api`, with /v1 and /v2 paths."""
    with httpx.Client(base_url=f"{live_server.url}/api", headers={"x-api-key": key}, timeout=60) as client:
        yield client


def test_v1_users_as_the_seed_documents_them(v1, workspace):
    created = v1.post("/users", json=SEED_USER_BODY)
    assert created.status_code == 200, created.text
    user = created.json()
    assert set(user) == USER_KEYS and isinstance(user["id"], str)
    assert (user["email"], user["tags"]) == ("email@example.com", ["tag1", "tag2"])
    assert isinstance(user["createdAt"], str)

    listed = v1.get(f"/users?{SEED_EMAIL_QUERY}")
    assert listed.status_code == 200 and listed.json() == {"data": [user]}
    everyone = v1.get("/users").json()
    assert set(everyone) == {"data"} and all(set(u) == USER_KEYS for u in everyone["data"])

    updated = v1.patch(f"/users/{user['id']}", json=SEED_TAGS_BODY)
    assert updated.status_code == 200, updated.text
    assert v1.patch(f"/users/{user['id']}", json={"tags": ["tag3"]}).json()["tags"] == ["tag3"]
    assert Member.objects.get(id=user["id"]).tags == ["tag3"]

    removed = v1.delete(f"/users/{user['id']}")
    assert removed.status_code == 200
    assert v1.get(f"/users?{SEED_EMAIL_QUERY}").json() == {"data": []}


def test_v1_documented_errors(v1, live_server):
    for response in (
        v1.patch(f"/users/{SEED_USER_ID}", json=SEED_TAGS_BODY),
        v1.delete(f"/users/{SEED_USER_ID}"),
    ):
        assert (response.status_code, response.json()) == (404, USER_NOT_FOUND)
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=60) as anonymous:
        for response in (
            anonymous.post("/users", json=SEED_USER_BODY),
            anonymous.get(f"/users?{SEED_EMAIL_QUERY}"),
        ):
            assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert not Member.objects.filter(email="email@example.com").exists()


def test_v2_users_with_groups_and_profile(tm, workspace):
    group = Group.objects.create(workspace=workspace, name="Support")
    profile = {
        "firstName": "Jane",
        "lastName": "Doe",
        "profilePicURL": "https://example.com/jane.png",
        "aboutMe": "Hi",
    }
    created = tm.post(
        "/v2/users", json={"email": "jane@example.com", "groups": [group.id], "profile": profile}
    )
    assert created.status_code == 200, created.text
    user = created.json()
    assert set(user) >= USER_V2_KEYS and user["groups"] == [{"id": group.id, "name": "Support"}]
    assert user["profile"] == profile
    assert tm.get("/v2/users", params={"email": "jane@example.com"}).json() == {"data": [user]}
    assert tm.get(f"/v2/users/{user['id']}").json() == user
    patched = tm.patch(f"/v2/users/{user['id']}", json={"groups": []})
    assert patched.status_code == 200 and patched.json()["groups"] == []
    extra = tm.post(
        "/v2/users", json={"email": "x@example.com", "profile": {"firstName": "X", "title": "Dr"}}
    )
    assert extra.status_code == 400 and isinstance(extra.json()["userMessage"], str)
    assert tm.delete(f"/v2/users/{user['id']}").status_code == 200
    gone = tm.get(f"/v2/users/{user['id']}")
    assert (gone.status_code, gone.json()) == (404, USER_NOT_FOUND)


def test_v2_groups_and_roles(tm):
    roles = tm.get("/v2/roles")
    assert roles.status_code == 200
    assert all(set(role) == {"id", "title"} for role in roles.json()) and roles.json()
    role_id = roles.json()[-1]["id"]
    created = tm.post("/v2/groups", json={"title": "Engineering", "roles": [role_id]})
    assert created.status_code == 200, created.text
    group = created.json()
    assert set(group) == {"id", "title", "roles"} and (group["title"], group["roles"]) == (
        "Engineering",
        [role_id],
    )
    assert tm.get("/v2/groups").json() == [{"id": group["id"], "title": "Engineering"}]
    assert tm.get(f"/v2/groups/{group['id']}").json() == group
    for body, expected in (
        ({"title": "Eng"}, {"title": "Eng", "roles": [role_id]}),
        ({"roles": []}, {"title": "Eng", "roles": []}),
        ({"title": "Platform", "roles": [role_id]}, {"title": "Platform", "roles": [role_id]}),
    ):
        response = tm.patch(f"/v2/groups/{group['id']}", json=body)
        assert response.status_code == 200 and response.json() == {"id": group["id"], **expected}
    missing = tm.get("/v2/groups/grp_missing")
    assert (missing.status_code, missing.json()) == (404, USER_NOT_FOUND)


def test_v2_audit_logs(tm):
    tm.post("/v2/groups", json={"title": "Engineering"})
    tm.post("/v1/users", json=SEED_USER_BODY)
    response = tm.get("/v2/audit-logs", params={"page": 1, "limit": 25})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"logs", "hasMore", "page", "total"}
    assert (body["page"], body["hasMore"], body["total"]) == (1, False, 3)
    for entry in body["logs"]:
        assert set(entry) == AUDIT_LOG_KEYS and isinstance(entry["id"], int)
        assert entry["userID"] is None or isinstance(entry["userID"], str)
    assert [(e["entity"], e["action"]) for e in body["logs"][:2]] == [("user", "create"), ("group", "create")]
    assert tm.get("/v2/audit-logs").json() == body  # page 1, limit 25 by default
    assert tm.get("/v2/audit-logs", params={"limit": 101}).status_code == 400
