"""A key can only hand on what it has: scopes, mind restriction and lifetime of the keys it creates, and the keys it
may list and revoke (docs/security.md)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.models import ApiKey
from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def minds(workspace):
    return [
        Mind.objects.create(workspace=workspace, name=name, slug=f"{name.lower()}-reach") for name in "AB"
    ]


def key_id_of(plaintext: str) -> str:
    return KeyedClient(plaintext).get("/api/v1/auth/verify").json()["keyId"]


def test_a_key_without_every_scope_cannot_create_an_all_scopes_key(workspace, minds):
    manager = KeyedClient(make_key(workspace, scopes=["keys:manage"]))
    body = assert_error(
        manager.post("/api/v1/api-keys", {"name": "x", "scopes": ["all"]}), 403, "insufficient_scope"
    )
    assert "minds:read" in body["message"] and body["details"]["requiredScope"] == "minds:read"
    assert_error(
        manager.post("/api/v1/api-keys", {"name": "x", "scopes": ["keys:manage", "minds:chat"]}),
        403,
        "insufficient_scope",
    )
    assert ApiKey.objects.count() == 1  # nothing was written
    same = manager.post("/api/v1/api-keys", {"name": "same", "scopes": ["keys:manage"]})
    assert same.status_code == 201, same.json()


def test_a_mind_restricted_key_makes_only_keys_restricted_to_its_minds(workspace, minds):
    first, second = minds
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[first.id]))
    created = restricted.post("/api/v1/api-keys", {"name": "x", "scopes": ["all"]})
    assert created.status_code == 201, created.json()
    assert created.json()["apiKey"]["mindIds"] == [first.id]  # inherited, not widened to every mind
    child = KeyedClient(created.json()["key"])
    assert child.get(f"/api/v1/minds/{first.id}").status_code == 200
    assert_error(child.get(f"/api/v1/minds/{second.id}"), 404, "not_found")
    assert [m["id"] for m in child.get("/api/v1/minds").json()["minds"]] == [first.id]

    assert_error(
        restricted.post("/api/v1/api-keys", {"name": "y", "scopes": ["minds:read"], "mindIds": [second.id]}),
        403,
        "insufficient_scope",
    )
    assert_error(
        restricted.post(
            "/api/v1/api-keys", {"name": "y", "scopes": ["minds:read"], "mindIds": [first.id, second.id]}
        ),
        403,
        "insufficient_scope",
    )
    assert ApiKey.objects.count() == 2


def test_a_restricted_key_cannot_see_or_revoke_keys_beyond_its_reach(workspace, minds):
    first, _second = minds
    admin_key = make_key(workspace, scopes="all")
    wide_reader = make_key(workspace, scopes=["minds:read"])
    narrow_reader = make_key(workspace, scopes=["minds:read"], allowed_mind_ids=[first.id])
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[first.id]))
    scoped_manager = KeyedClient(make_key(workspace, scopes=["keys:manage", "minds:read"]))

    listed = {k["id"] for k in restricted.get("/api/v1/api-keys").json()["apiKeys"]}
    assert key_id_of(narrow_reader) in listed
    assert not {key_id_of(admin_key), key_id_of(wide_reader)} & listed
    for beyond in (admin_key, wide_reader):
        assert_error(restricted.delete(f"/api/v1/api-keys/{key_id_of(beyond)}"), 404, "not_found")
    assert KeyedClient(admin_key).get("/api/v1/auth/verify").status_code == 200  # still alive

    # A key holding fewer scopes reaches only keys whose scopes it holds too.
    listed = {k["id"] for k in scoped_manager.get("/api/v1/api-keys").json()["apiKeys"]}
    assert {key_id_of(wide_reader), key_id_of(narrow_reader)} <= listed and key_id_of(admin_key) not in listed
    assert_error(scoped_manager.delete(f"/api/v1/api-keys/{key_id_of(admin_key)}"), 404, "not_found")

    assert restricted.delete(f"/api/v1/api-keys/{key_id_of(narrow_reader)}").status_code == 200
    assert_error(KeyedClient(narrow_reader).get("/api/v1/auth/verify"), 401, "invalid_api_key")


def test_an_expiring_key_makes_keys_that_expire_no_later(workspace):
    ends = timezone.now() + timedelta(days=2)
    expiring = KeyedClient(make_key(workspace, scopes="all", expires_at=ends))
    inherited = expiring.post("/api/v1/api-keys", {"name": "x", "scopes": ["minds:read"]})
    assert inherited.status_code == 201, inherited.json()
    assert ApiKey.objects.get(id=inherited.json()["apiKey"]["id"]).expires_at == ends
    assert_error(
        expiring.post("/api/v1/api-keys", {"name": "y", "scopes": ["minds:read"], "expiresInDays": 30}),
        403,
        "insufficient_scope",
    )


def test_an_expiry_in_the_past_is_refused(api):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    body = assert_error(
        api.post("/api/v1/api-keys", {"name": "x", "scopes": ["minds:read"], "expiresAt": past}),
        400,
        "validation_error",
    )
    assert "expiresAt" in body["details"]["fields"]
    assert ApiKey.objects.count() == 1
