"""The Django admin: every model's pages load; a key created there is shown once and works; revoke works."""

import re

import pytest
from django.contrib.auth.models import User

from apikeys.models import ApiKey
from knowledge.models import Source
from minds.models import Mind
from tests.helpers import KeyedClient, admin_path, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    return client


PAGES = [
    "accounts/workspace",
    "accounts/member",
    "accounts/group",
    "apikeys/apikey",
    "minds/mind",
    "knowledge/source",
    "knowledge/chunk",
    "knowledge/uploadedfile",
    "knowledge/webhookdelivery",
    "conversations/conversation",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_admin_list_loads(admin_client, workspace, page):
    assert admin_client.get(f"/admin/{page}/").status_code == 200


def test_workspace_page_shows_the_webhook_secret(admin_client, workspace):
    page = admin_client.get(admin_path("accounts/workspace", workspace.id)).content.decode()
    assert workspace.webhook_secret in page


def test_key_created_in_admin_is_shown_once_and_revocable(admin_client, workspace):
    response = admin_client.post(
        "/admin/apikeys/apikey/add/",
        {
            "workspace": workspace.id,
            "name": "from admin",
            "scopes": ["minds:read"],
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = re.findall(r"tr_live_[A-Za-z0-9_-]{32}", response.content.decode())
    assert len(set(shown)) == 1
    key = shown[0]
    assert KeyedClient(key).get("/api/v1/auth/verify").status_code == 200
    api_key = ApiKey.objects.get(name="from admin")
    assert api_key.last4 == key[-4:] and api_key.key_hash != key
    detail = admin_client.get(admin_path("apikeys/apikey", api_key.id)).content.decode()
    assert key not in detail
    admin_client.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [api_key.id]})
    assert_error(KeyedClient(key).get("/api/v1/auth/verify"), 401, "invalid_api_key")


def test_reprocess_action_on_sources(admin_client, workspace):
    mind = Mind.objects.create(workspace=workspace, name="M", slug="m-admin")
    source = Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="text",
        name="t",
        content="c",
        status="failed",
        error_code="fetch_failed",
    )
    admin_client.post("/admin/knowledge/source/", {"action": "reprocess", "_selected_action": [source.id]})
    source.refresh_from_db()
    assert source.status == "pending" and source.error_code == ""
