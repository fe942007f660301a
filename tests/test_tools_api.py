"""The native API of a mind's tools: create, list, read, update, delete; validation; scopes and tenancy; secret
header values never returned (API, audit log, errors)."""

import json

import pytest

from accounts.models import AuditLog
from minds.models import Mind
from tests.helpers import KeyedClient, admin_path, assert_error, make_key
from tools.models import Tool
from tools.secrets import headers_decrypt

pytestmark = pytest.mark.django_db

SECRET = "sk-live-4c0ffee5ecret99"
SCHEMA = {
    "type": "object",
    "properties": {"orderId": {"type": "string"}, "status": {"type": "string", "enum": ["open", "closed"]}},
    "required": ["orderId"],
}


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-tools-api")


def tools_url(mind, tool_id=None):
    return f"/api/v1/minds/{mind.id}/tools" + (f"/{tool_id}" if tool_id else "")


def http_body(**overrides):
    return {
        "kind": "http",
        "name": "lookup_order",
        "description": "Look an order up by its id.",
        "parameters": SCHEMA,
        "config": {
            "method": "GET",
            "urlTemplate": "https://api.example.com/orders/{orderId}?status={status}",
        },
        "headers": {"Authorization": f"Bearer {SECRET}"},
        **overrides,
    }


def create(api, mind, body):
    response = api.post(tools_url(mind), body)
    assert response.status_code == 201, response.json()
    return response.json()["tool"]


def test_built_ins_get_their_defaults_and_start_off(api, mind):
    search = create(api, mind, {"kind": "search_knowledge"})
    assert search["name"] == "search_knowledge" and search["kind"] == "search_knowledge"
    assert search["enabled"] is False and search["isPublic"] is False
    assert search["parameters"]["required"] == ["query"] and search["description"] == ""
    assert (
        search["id"].startswith("tool_") and search["secretHeaders"] == [] and search["mcpServerId"] is None
    )
    assert search["createdAt"].endswith("Z")
    fetch = create(
        api, mind, {"kind": "fetch_url", "enabled": True, "config": {"allowedHosts": ["Docs.Example.com."]}}
    )
    assert fetch["config"] == {"allowedHosts": ["docs.example.com"]} and fetch["enabled"] is True
    listed = api.get(tools_url(mind)).json()["tools"]
    assert [t["id"] for t in listed] == [search["id"], fetch["id"]]
    assert set(listed[0]) == {
        "id", "kind", "name", "description", "parameters", "enabled", "isPublic", "config", "secretHeaders",
        "mcpServerId", "createdAt", "updatedAt",
    }  # fmt: skip


def test_an_http_tool_keeps_its_secret_headers_encrypted_and_never_returns_them(api, mind, workspace):
    created = api.post(tools_url(mind), http_body())
    assert created.status_code == 201 and SECRET not in created.content.decode()
    tool = created.json()["tool"]
    assert tool["secretHeaders"] == ["Authorization"] and "headers" not in tool
    assert tool["parameters"] == SCHEMA and tool["config"]["urlTemplate"].endswith(
        "{orderId}?status={status}"
    )
    row = Tool.objects.get(pk=tool["id"])
    assert SECRET not in row.secret_headers_ciphertext and SECRET not in json.dumps(row.config)
    assert headers_decrypt(row.secret_headers_ciphertext) == {"Authorization": f"Bearer {SECRET}"}
    for response in (api.get(tools_url(mind, tool["id"])), api.get(tools_url(mind))):
        assert response.status_code == 200 and SECRET not in response.content.decode()
    # Merge: one header added, the other kept (its value cannot be read back to be resent), then one removed.
    patched = api.patch(tools_url(mind, tool["id"]), {"headers": {"X-Tenant": "acme-tenant-7"}})
    assert patched.status_code == 200 and patched.json()["tool"]["secretHeaders"] == [
        "Authorization",
        "X-Tenant",
    ]
    row.refresh_from_db()
    assert headers_decrypt(row.secret_headers_ciphertext) == {
        "Authorization": f"Bearer {SECRET}",
        "X-Tenant": "acme-tenant-7",
    }
    removed = api.patch(tools_url(mind, tool["id"]), {"headers": {"Authorization": None}})
    assert removed.json()["tool"]["secretHeaders"] == ["X-Tenant"]
    rotated = api.patch(tools_url(mind, tool["id"]), {"headers": {"X-Tenant": "acme-tenant-8"}})
    assert rotated.status_code == 200
    entries = AuditLog.objects.filter(workspace=workspace, entity="tool", entity_id=tool["id"]).order_by("id")
    assert [e.action for e in entries] == ["create", "update", "update", "update"]
    assert entries[3].changes["secretHeadersSet"] == ["X-Tenant"]
    logged = json.dumps([e.changes for e in entries])
    assert SECRET not in logged and "acme-tenant" not in logged
    audit_api = api.get("/api/v1/audit-logs").content.decode()
    assert "lookup_order" in audit_api and SECRET not in audit_api and "acme-tenant" not in audit_api


def test_a_tool_round_trips_and_switches(api, mind):
    tool = create(api, mind, http_body())
    edited = {**tool, "enabled": True, "isPublic": True, "description": "Orders."}
    response = api.patch(tools_url(mind, tool["id"]), edited)
    assert response.status_code == 200, response.json()
    again = response.json()["tool"]
    assert again["enabled"] is True and again["isPublic"] is True and again["description"] == "Orders."
    assert again["secretHeaders"] == ["Authorization"]
    assert_error(api.patch(tools_url(mind, tool["id"]), {"kind": "fetch_url"}), 400, "validation_error")
    assert_error(api.patch(tools_url(mind, tool["id"]), {"colour": "red"}), 400, "validation_error")
    renamed = api.patch(tools_url(mind, tool["id"]), {"name": "find-order"})
    assert renamed.status_code == 200 and renamed.json()["tool"]["name"] == "find-order"


def test_names_are_function_names_unique_in_the_mind(api, mind, workspace):
    create(api, mind, {"kind": "search_knowledge"})
    body = assert_error(api.post(tools_url(mind), {"kind": "search_knowledge"}), 409, "conflict")
    assert body["details"]["fields"]["name"]
    other = create(api, mind, {"kind": "search_knowledge", "name": "search_again"})
    assert_error(api.patch(tools_url(mind, other["id"]), {"name": "search_knowledge"}), 409, "conflict")
    for name in ("has space", "", "x" * 65, "dots.are.not", "ünï"):
        assert_error(api.post(tools_url(mind), http_body(name=name)), 400, "validation_error")
    # Another mind may use the same name.
    second = Mind.objects.create(workspace=workspace, name="Second", slug="second-tools-api")
    create(api, second, {"kind": "search_knowledge"})


@pytest.mark.parametrize(
    "url_template",
    [
        "ftp://api.example.com/{orderId}",
        "file:///etc/passwd?{orderId}",
        "gopher://api.example.com/{orderId}",
        "api.example.com/{orderId}",
        "http://127.0.0.1/{orderId}",
        "http://10.0.0.8/{orderId}",
        "http://192.168.1.1/{orderId}",
        "http://169.254.169.254/latest/{orderId}",
        "http://[::1]/{orderId}",
        "http://[fd00::1]/{orderId}",
        "http://localhost/{orderId}",
        "http://metadata.internal/{orderId}",
        "https://user:pass@api.example.com/{orderId}",
        "https://{orderId}.example.com/",
        "https://api.example.com:{orderId}/",
        "https://api.example.com/{undeclared}",
        "https://api.example.com/{orderId",
        "http:/api.example.com/{orderId}",
        "http:///{orderId}",
        "https://{orderId}/",
        "https://api.example.com{orderId}/",
    ],
)
def test_url_templates_are_refused_off_public_http_hosts(api, mind, url_template):
    body = http_body(config={"urlTemplate": url_template})
    error = assert_error(api.post(tools_url(mind), body), 400, "validation_error")
    assert "config.urlTemplate" in error["details"]["fields"], error
    assert SECRET not in json.dumps(error)
    assert not Tool.objects.filter(mind=mind).exists()


def test_configs_and_schemas_are_checked(api, mind):
    cases = [
        http_body(parameters={"type": "array"}),
        http_body(parameters={"$schema": ["not", "a", "uri"], "properties": {"orderId": {"type": "string"}}}),
        http_body(parameters={"properties": {"orderId": {"type": "string"}}, "required": "orderId"}),
        http_body(parameters={"type": "object", "properties": {"orderId": {"type": "no-such-type"}}}),
        http_body(config={"method": "DELETE", "urlTemplate": "https://api.example.com/{orderId}"}),
        http_body(config={"urlTemplate": "https://api.example.com/{orderId}", "retries": 3}),
        http_body(config={"urlTemplate": "https://api.example.com/{orderId}", "timeoutSeconds": 0}),
        http_body(headers={"Bad Header": "x"}),
        http_body(headers={"Authorization": f"Bearer {SECRET}\r\nX-Injected: 1"}),
        http_body(headers={"Host": "evil.example"}),
        {"kind": "fetch_url"},
        {"kind": "fetch_url", "config": {"allowedHosts": ["https://example.com/path"]}},
        {"kind": "fetch_url", "config": {"allowedHosts": ["10.0.0.1"]}},
        {
            "kind": "search_knowledge",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
        {"kind": "search_knowledge", "headers": {"X-Key": "v"}},
        {"kind": "mcp", "name": "remote"},
        {"kind": "shell", "name": "rm"},
    ]
    for body in cases:
        error = assert_error(api.post(tools_url(mind), body), 400, "validation_error")
        assert SECRET not in json.dumps(error), body
    assert not Tool.objects.filter(mind=mind).exists()


def test_a_placeholder_must_stay_declared_when_the_parameters_change(api, mind):
    tool = create(api, mind, http_body())
    response = api.patch(tools_url(mind, tool["id"]), {"parameters": {"type": "object", "properties": {}}})
    assert_error(response, 400, "validation_error")
    assert Tool.objects.get(pk=tool["id"]).parameters == SCHEMA


def test_delete(api, mind, workspace):
    tool = create(api, mind, http_body())
    response = api.delete(tools_url(mind, tool["id"]))
    assert response.status_code == 200 and response.json() == {
        "status": "success",
        "deleted": True,
        "id": tool["id"],
    }
    assert_error(api.get(tools_url(mind, tool["id"])), 404, "not_found")
    assert AuditLog.objects.filter(entity="tool", entity_id=tool["id"], action="delete").exists()


def test_scopes_and_tenancy(api, mind, workspace, other_api):
    tool = create(api, mind, http_body())
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get(tools_url(mind)).status_code == 200
    assert reader.get(tools_url(mind, tool["id"])).status_code == 200
    assert_error(reader.post(tools_url(mind), {"kind": "search_knowledge"}), 403, "insufficient_scope")
    assert_error(reader.patch(tools_url(mind, tool["id"]), {"enabled": True}), 403, "insufficient_scope")
    assert_error(reader.delete(tools_url(mind, tool["id"])), 403, "insufficient_scope")
    chatter = KeyedClient(make_key(workspace, scopes=["minds:chat"]))
    assert_error(chatter.get(tools_url(mind)), 403, "insufficient_scope")
    # Another workspace sees neither the mind nor its tools.
    assert_error(other_api.get(tools_url(mind)), 404, "not_found")
    assert_error(other_api.patch(tools_url(mind, tool["id"]), {"enabled": True}), 404, "not_found")
    assert_error(other_api.delete(tools_url(mind, tool["id"])), 404, "not_found")
    # A tool named through another mind's URL is not found.
    second = Mind.objects.create(workspace=workspace, name="Second", slug="second-tenancy")
    assert_error(api.get(tools_url(second, tool["id"])), 404, "not_found")
    assert_error(api.delete(tools_url(second, tool["id"])), 404, "not_found")
    assert Tool.objects.get(pk=tool["id"]).enabled is False


def test_an_mcp_tool_can_only_be_switched(api, mind, workspace):
    from tools.models import McpServer

    server = McpServer.objects.create(
        workspace=workspace, mind=mind, name="docs", url="https://mcp.example.com/mcp"
    )
    row = Tool.objects.create(
        workspace=workspace,
        mind=mind,
        kind="mcp",
        name="docs_search",
        parameters={"type": "object", "properties": {"q": {"type": "string"}}},
        config={"remoteName": "search"},
        mcp_server=server,
    )
    tool = api.get(tools_url(mind, row.id)).json()["tool"]
    assert tool["mcpServerId"] == server.id and tool["kind"] == "mcp"
    switched = api.patch(tools_url(mind, row.id), {**tool, "enabled": True, "isPublic": True})
    assert switched.status_code == 200, switched.json()
    assert switched.json()["tool"]["enabled"] is True
    assert_error(api.patch(tools_url(mind, row.id), {"name": "renamed"}), 400, "validation_error")
    assert_error(api.patch(tools_url(mind, row.id), {"headers": {"X-Key": "v"}}), 400, "validation_error")
    assert_error(api.delete(tools_url(mind, row.id)), 400, "validation_error")


def test_the_openapi_document_has_the_tools_routes_and_write_only_headers(client):
    document = json.loads(client.get("/api/v1/openapi.json").content)
    assert {"get", "post"} <= set(document["paths"]["/api/v1/minds/{mind_id}/tools"])
    assert {"get", "patch", "delete"} <= set(document["paths"]["/api/v1/minds/{mind_id}/tools/{tool_id}"])
    schemas = document["components"]["schemas"]
    assert "headers" in schemas["ToolInputRequest"]["properties"]
    assert "headers" not in schemas["Tool"]["properties"] and "secretHeaders" in schemas["Tool"]["properties"]


@pytest.fixture
def admin_client(client):
    from django.contrib.auth.models import User

    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    return client


def admin_form(tool: dict, **overrides) -> dict:
    form = {
        "name": tool["name"],
        "description": tool["description"],
        "enabled": "on",
        "parameters": json.dumps(tool["parameters"]),
        "config": json.dumps(tool["config"]),
        "secret_headers": "",
    }
    return {**form, **overrides}


def test_the_admin_never_shows_a_secret_value_and_sets_them_write_only(api, mind, admin_client):
    tool = create(api, mind, http_body())
    page_url = admin_path("tools/tool", tool["id"])
    page = admin_client.get(page_url)
    assert page.status_code == 200 and "Authorization" in page.content.decode()
    assert SECRET not in page.content.decode()
    assert admin_client.get("/admin/tools/tool/").status_code == 200
    saved = admin_client.post(
        page_url, admin_form(tool, secret_headers=json.dumps({"X-Admin": "admin-secret-42"}))
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    row = Tool.objects.get(pk=tool["id"])
    assert row.enabled is True
    assert headers_decrypt(row.secret_headers_ciphertext) == {
        "Authorization": f"Bearer {SECRET}",
        "X-Admin": "admin-secret-42",
    }
    entry = AuditLog.objects.filter(entity="tool", entity_id=tool["id"], action="update").latest("id")
    assert entry.actor_label == "admin:admin" and "admin-secret-42" not in json.dumps(entry.changes)
    # A refused change is shown on the form, writes nothing, and does not render what was typed.
    refused = admin_client.post(
        page_url,
        admin_form(
            tool,
            config=json.dumps({"urlTemplate": "http://169.254.169.254/{orderId}"}),
            secret_headers=json.dumps({"X-Admin": "typed-secret-77"}),
        ),
    )
    assert refused.status_code == 200 and "only public addresses" in refused.content.decode()
    assert "typed-secret-77" not in refused.content.decode()
    row.refresh_from_db()
    assert row.config["urlTemplate"].startswith("https://api.example.com/")
    assert headers_decrypt(row.secret_headers_ciphertext)["X-Admin"] == "admin-secret-42"
    garbled = admin_client.post(page_url, admin_form(tool, secret_headers=f"Authorization: {SECRET}"))
    assert garbled.status_code == 200 and SECRET not in garbled.content.decode()
    deleted = admin_client.post(admin_path("tools/tool", tool["id"], "delete"), {"post": "yes"})
    assert deleted.status_code == 302 and not Tool.objects.filter(pk=tool["id"]).exists()
