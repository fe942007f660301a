"""The webhook signing secret through the API (`keys:manage`): read it, rotate it (audited, never the secret), and
the deliveries after a rotation verify with the new secret only."""

import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from accounts.models import AuditLog, Workspace
from apikeys.models import ApiKey
from knowledge.models import WebhookDelivery
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, assert_error, make_key, wait_for

SECRET = "/api/v1/webhooks/secret"
ROTATE = "/api/v1/webhooks/secret/rotate"


@pytest.mark.django_db
def test_the_secret_is_readable_with_keys_manage(workspace):
    key = make_key(workspace, scopes=["keys:manage"])
    response = KeyedClient(key).get(SECRET)
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "success", "secret": workspace.webhook_secret}
    assert response.json()["secret"].startswith("whsec_")


@pytest.mark.django_db
def test_rotation_replaces_the_secret_and_is_audited_without_it(workspace, other_workspace):
    key = make_key(workspace, scopes=["keys:manage"])
    client = KeyedClient(key)
    old = workspace.webhook_secret
    others = other_workspace.webhook_secret
    response = client.post(ROTATE)
    assert response.status_code == 200, response.json()
    new = response.json()["secret"]
    assert set(response.json()) == {"status", "secret"}
    assert new.startswith("whsec_") and new != old
    assert Workspace.objects.get(pk=workspace.pk).webhook_secret == new
    assert client.get(SECRET).json()["secret"] == new
    assert Workspace.objects.get(pk=other_workspace.pk).webhook_secret == others
    entry = AuditLog.objects.get(action="rotate_webhook_secret")
    api_key = ApiKey.objects.get(last4=key[-4:])
    assert (entry.workspace_id, entry.entity, entry.entity_id, entry.entity_name) == (
        workspace.id,
        "workspace",
        workspace.id,
        "Acme",
    )
    assert entry.actor_key_id == api_key.id and entry.actor_member_id == api_key.member_id
    recorded = json.dumps([entry.changes, entry.entity_name, entry.actor_label])
    assert old not in recorded and new not in recorded and "whsec_" not in recorded


@pytest.mark.django_db
def test_the_secret_needs_a_key_keys_manage_and_the_whole_workspace(workspace):
    before = workspace.webhook_secret
    for method in ("get", "post"):
        path = SECRET if method == "get" else ROTATE
        assert_error(getattr(KeyedClient(None), method)(path), 401, "missing_api_key")
        no_scope = KeyedClient(make_key(workspace, scopes=["minds:read", "minds:write"]))
        body = assert_error(getattr(no_scope, method)(path), 403, "insufficient_scope")
        assert "keys:manage" in body["message"]
    mind = Mind.objects.create(workspace=workspace, name="One", slug="one-secret")
    restricted = KeyedClient(make_key(workspace, scopes=["keys:manage"], allowed_mind_ids=[mind.id]))
    assert_error(restricted.get(SECRET), 403, "forbidden")
    assert_error(restricted.post(ROTATE), 403, "forbidden")
    assert Workspace.objects.get(pk=workspace.pk).webhook_secret == before
    assert not AuditLog.objects.filter(action="rotate_webhook_secret").exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_deliveries_after_a_rotation_are_signed_with_the_new_secret(workspace, celery_worker, settings):
    settings.SSRF_ALLOW_LOOPBACK = (
        True  # the API checks the callback URL too; the test worker allows loopback
    )
    client = KeyedClient(make_key(workspace, scopes="all"))
    old = client.get(SECRET).json()["secret"]
    new = client.post(ROTATE).json()["secret"]
    mind = Mind.objects.create(workspace=workspace, name="Signer", slug="signer-secret")
    with FakeSite() as site:
        site.route("/hook", "ok")
        created = client.post(
            f"/api/v1/minds/{mind.id}/knowledge",
            {
                "type": "text",
                "content": "Rotated secrets sign new deliveries.",
                "callbackUrl": site.url("/hook"),
            },
        )
        assert created.status_code == 201, created.json()
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").exists(),
            timeout=90,
            what="the webhook to be delivered",
        )
        hook = [r for r in site.requests if r.path == "/hook"][-1]
    payload = Webhook(new).verify(hook.body, hook.headers)
    assert payload["type"] == "source.ready"
    assert payload["data"]["source"]["id"] == created.json()["source"]["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(hook.body, hook.headers)
