"""Authentication, scopes, key management and the rules of the key itself."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apikeys.models import ApiKey
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db


def test_verify_with_bearer_and_x_api_key(workspace):
    key = make_key(workspace, scopes=["minds:read"])
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-KEY": key}):
        response = KeyedClient(None).get("/api/v1/auth/verify", headers=headers)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["workspace"] == {"id": workspace.id, "name": workspace.name}
        assert body["permissions"] == ["minds:read"]


def test_missing_invalid_expired_and_revoked_keys(workspace):
    assert_error(KeyedClient(None).get("/api/v1/auth/verify"), 401, "missing_api_key")
    assert_error(KeyedClient("tr_live_" + "A" * 32).get("/api/v1/auth/verify"), 401, "invalid_api_key")
    assert_error(KeyedClient("not-a-key").get("/api/v1/auth/verify"), 401, "invalid_api_key")
    expired = make_key(workspace, expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(last4=expired[-4:]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(KeyedClient(expired).get("/api/v1/auth/verify"), 401, "api_key_expired")
    api = KeyedClient(make_key(workspace))
    key_id = api.get("/api/v1/api-keys").json()["apiKeys"][0]["id"]
    assert api.delete(f"/api/v1/api-keys/{key_id}").status_code == 200
    assert_error(api.get("/api/v1/auth/verify"), 401, "invalid_api_key")


def test_create_list_and_revoke_keys(api, workspace):
    created = api.post("/api/v1/api-keys", {"name": "CI", "scopes": ["minds:read", "knowledge:search"]})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["key"].startswith("tr_live_") and len(body["key"]) == len("tr_live_") + 32
    assert body["apiKey"]["last4"] == body["key"][-4:]
    listed = api.get("/api/v1/api-keys").json()["apiKeys"]
    assert body["key"] not in str(listed)  # shown once, at creation only
    new = KeyedClient(body["key"])
    assert sorted(new.get("/api/v1/auth/verify").json()["permissions"]) == ["knowledge:search", "minds:read"]
    assert_error(new.get("/api/v1/api-keys"), 403, "insufficient_scope")
    assert_error(api.post("/api/v1/api-keys", {"name": "x", "scopes": ["root"]}), 400, "validation_error")
    assert_error(
        api.post("/api/v1/api-keys", {"name": "x", "scopes": ["minds:read"], "admin": True}),
        400,
        "validation_error",
    )
    assert_error(api.delete("/api/v1/api-keys/key_missing"), 404, "not_found")


def test_keys_of_another_workspace_are_not_found(api, other_api):
    other_key_id = other_api.get("/api/v1/api-keys").json()["apiKeys"][0]["id"]
    assert_error(api.delete(f"/api/v1/api-keys/{other_key_id}"), 404, "not_found")
    assert other_api.get("/api/v1/auth/verify").status_code == 200


def test_at_most_ten_live_keys(api, workspace):
    for i in range(9):
        assert api.post("/api/v1/api-keys", {"name": f"k{i}", "scopes": ["minds:read"]}).status_code == 201
    assert_error(
        api.post("/api/v1/api-keys", {"name": "eleventh", "scopes": ["minds:read"]}), 400, "limit_exceeded"
    )
    # A revoked key frees its place.
    key_id = next(k["id"] for k in api.get("/api/v1/api-keys").json()["apiKeys"] if k["name"] == "k0")
    api.delete(f"/api/v1/api-keys/{key_id}")
    assert api.post("/api/v1/api-keys", {"name": "again", "scopes": ["minds:read"]}).status_code == 201


def test_last_used_is_recorded_without_a_write_per_request(workspace, django_assert_max_num_queries):
    key = make_key(workspace, scopes=["minds:read"])
    client = KeyedClient(key)
    client.get("/api/v1/auth/verify")
    assert ApiKey.objects.get(last4=key[-4:]).last_used_at is not None
    with django_assert_max_num_queries(2):  # the key lookup and its workspace, no UPDATE
        client.get("/api/v1/auth/verify")


def test_no_plaintext_key_is_stored_anywhere(api, workspace, capsys):
    created = api.post("/api/v1/api-keys", {"name": "secret", "scopes": ["minds:read"]}).json()["key"]
    call_command("create_api_key", "--workspace", workspace.name, "--scopes", "all", "--name", "cmd")
    from_command = capsys.readouterr().out.strip().splitlines()[-1]
    assert (
        from_command.startswith("tr_live_")
        and KeyedClient(from_command).get("/api/v1/auth/verify").status_code == 200
    )
    secrets = [created, from_command, created[len("tr_live_") :], from_command[len("tr_live_") :]]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        )
        columns = cursor.fetchall()
        assert len(columns) > 20
        for table, column in columns:
            for secret in secrets:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{secret}%"]
                )
                assert cursor.fetchone()[0] == 0, f"plaintext key found in {table}.{column}"


def test_create_workspace_command_prints_and_keys_command_validates(capsys):
    call_command("create_workspace", "Initech")
    assert "Initech" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "--workspace", "Nope", "--scopes", "all", "--name", "x")
