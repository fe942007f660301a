"""MCP servers as tools of a mind, against a real MCP server (the SDK's own MCPServer over streamable HTTP,
tests/mcpserver.py): listing, calling in a kept session per conversation, reconnecting, idle close, errors as
outcomes, SSRF refusal, secret headers never shown, and the native API."""

import pytest

from minds.models import Mind
from tests.helpers import admin_path, assert_error, wait_for
from tests.mcpserver import McpTestServer, free_port
from tools import mcp_client, mcp_sessions
from tools.models import McpServer, Tool
from tools.secrets import secret_headers_set


@pytest.fixture
def mcp_server():
    with McpTestServer() as server:
        yield server
        mcp_sessions.close_all()


@pytest.fixture
def loopback(settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # the test MCP server listens on 127.0.0.1
    return settings


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-mcp")


def make_server(mind, url: str, *, headers: dict | None = None, name: str = "remote") -> McpServer:
    server = McpServer(workspace=mind.workspace, mind=mind, name=name, url=url)
    if headers:
        secret_headers_set(server, headers)
    server.save()
    return server


def make_tool(server: McpServer, remote: str) -> Tool:
    return Tool.objects.create(
        workspace=server.workspace,
        mind=server.mind,
        kind=Tool.Kind.MCP,
        name=f"{server.name}__{remote}",
        config={"remoteName": remote},
        mcp_server=server,
        enabled=True,
    )


# --- The client ---------------------------------------------------------------------------------------------


def test_list_tools_reads_the_servers_tools(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    tools = {t["name"]: t for t in mcp_client.list_tools(server)}
    assert {"echo", "add", "fail", "slow", "big", "whoami"} <= set(tools)
    assert tools["add"]["description"] == "Add two integers."
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert tools["add"]["inputSchema"]["properties"]["a"]["type"] == "integer"
    # The listing's own session is closed afterwards (the server is sent its DELETE).
    wait_for(lambda: mcp_server.deletes() == 1, timeout=20, what="the listing session closed")


def test_call_tool_returns_the_text_and_reuses_the_conversations_session(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    echo, add = make_tool(server, "echo"), make_tool(server, "add")

    first = mcp_client.call_tool(echo, {"text": "hello"}, conversation_id="conv_1", timeout=20)
    assert (first.content, first.is_error) == ("echo: hello", False)
    assert first.duration_ms >= 0
    second = mcp_client.call_tool(add, {"a": 2, "b": 40}, conversation_id="conv_1", timeout=20)
    assert (second.content, second.is_error) == ("42", False)
    # One session for the conversation, across calls of different tools of the same server.
    assert mcp_server.initializations() == 1
    assert ("conv_1", server.id) in mcp_sessions.open_sessions()

    # Another conversation has a session of its own.
    third = mcp_client.call_tool(echo, {"text": "again"}, conversation_id="conv_2", timeout=20)
    assert third.content == "echo: again"
    assert mcp_server.initializations() == 2
    sessions = {
        r.headers.get("mcp-session-id") for r in mcp_server.requests if "tools/call" in r.body.decode()
    }
    assert len(sessions) == 2


def test_a_tool_error_result_is_an_error_outcome(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    outcome = mcp_client.call_tool(
        make_tool(server, "fail"), {"message": "no stock"}, conversation_id="c", timeout=20
    )
    assert outcome.is_error is True
    assert "no stock" in outcome.content
    # A tool the server does not (or no longer) have is an error outcome too.
    gone = mcp_client.call_tool(make_tool(server, "vanished"), {}, conversation_id="c", timeout=20)
    assert gone.is_error is True and "vanished" in gone.content


def test_long_results_are_cut(loopback, mind, mcp_server):
    loopback.TOOL_RESULT_MAX_CHARS = 500
    server = make_server(mind, mcp_server.url)
    outcome = mcp_client.call_tool(make_tool(server, "big"), {"size": 5000}, conversation_id="c", timeout=20)
    assert outcome.is_error is False
    assert len(outcome.content) == 500
    assert outcome.content.startswith("xxxx") and "5000 characters" in outcome.content


def test_a_slow_tool_times_out_as_an_error_outcome_and_the_session_survives(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    slow, echo = make_tool(server, "slow"), make_tool(server, "echo")
    outcome = mcp_client.call_tool(slow, {"seconds": 30}, conversation_id="c", timeout=1.5)
    assert outcome.is_error is True
    assert "in time" in outcome.content
    assert outcome.duration_ms < 30_000
    after = mcp_client.call_tool(echo, {"text": "still here"}, conversation_id="c", timeout=20)
    assert (after.content, after.is_error) == ("echo: still here", False)
    assert mcp_server.initializations() == 1


def test_a_server_that_is_down_is_an_error_outcome(loopback, mind):
    server = make_server(mind, f"http://127.0.0.1:{free_port()}/mcp")
    outcome = mcp_client.call_tool(make_tool(server, "echo"), {"text": "x"}, conversation_id="c", timeout=10)
    assert outcome.is_error is True
    assert "could not be reached" in outcome.content


def test_a_server_that_went_down_mid_conversation_then_came_back(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    assert mcp_client.call_tool(echo, {"text": "1"}, conversation_id="c", timeout=20).content == "echo: 1"
    mcp_server.stop()
    down = mcp_client.call_tool(echo, {"text": "2"}, conversation_id="c", timeout=10)
    assert down.is_error is True
    mcp_server.start()
    back = mcp_client.call_tool(echo, {"text": "3"}, conversation_id="c", timeout=20)
    assert (back.content, back.is_error) == ("echo: 3", False)


def test_a_server_that_forgot_the_session_is_reconnected(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    assert (
        mcp_client.call_tool(echo, {"text": "before"}, conversation_id="c", timeout=20).content
        == "echo: before"
    )
    mcp_server.restart()  # same port, a new server process state: the old session id is unknown (404)
    after = mcp_client.call_tool(echo, {"text": "after"}, conversation_id="c", timeout=20)
    assert (after.content, after.is_error) == ("echo: after", False)
    assert mcp_server.initializations() == 2  # the first session, then one new one after the restart


def test_sessions_still_open_at_exit_are_closed_with_their_servers(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    for conversation in ("exit-1", "exit-2"):
        assert (
            mcp_client.call_tool(echo, {"text": "x"}, conversation_id=conversation, timeout=20).is_error
            is False
        )
    assert {("exit-1", server.id), ("exit-2", server.id)} <= set(mcp_sessions.open_sessions())
    deletes = mcp_server.deletes()
    mcp_sessions.close_at_exit()  # what atexit runs
    assert not set(mcp_sessions.open_sessions()) & {("exit-1", server.id), ("exit-2", server.id)}
    assert mcp_server.deletes() >= deletes + 2  # each server was told its session ended


def test_idle_sessions_are_closed(loopback, mind, mcp_server):
    loopback.MCP_SESSION_IDLE_SECONDS = 0.5
    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    assert mcp_client.call_tool(echo, {"text": "x"}, conversation_id="idle", timeout=20).is_error is False
    wait_for(
        lambda: ("idle", server.id) not in mcp_sessions.open_sessions(), timeout=20, what="the idle close"
    )
    wait_for(lambda: mcp_server.deletes() >= 1, timeout=20, what="the server told the session ended")
    # The next call opens a new session.
    assert mcp_client.call_tool(echo, {"text": "y"}, conversation_id="idle", timeout=20).content == "echo: y"
    assert mcp_server.initializations() == 2


def test_secret_headers_are_sent_to_the_server_and_never_shown(loopback, mind, mcp_server):
    server = make_server(
        mind, mcp_server.url, headers={"Authorization": "Bearer mcp-s3cret", "X-Team": "t-42"}
    )
    outcome = mcp_client.call_tool(make_tool(server, "whoami"), {}, conversation_id="c", timeout=20)
    assert "authorization" in outcome.content.split(",") and "x-team" in outcome.content.split(",")
    calls = [r for r in mcp_server.requests if r.method == "POST"]
    assert calls and all(r.headers.get("authorization") == "Bearer mcp-s3cret" for r in calls)
    assert "mcp-s3cret" not in repr(mcp_client.endpoint_for(server))


def test_mcp_urls_are_checked_against_ssrf(settings, mind, mcp_server):
    settings.SSRF_ALLOW_LOOPBACK = False
    for url in (mcp_server.url, "http://10.0.0.5/mcp", "http://169.254.169.254/mcp", "ftp://example.com/mcp"):
        server = make_server(mind, url, name=f"s{abs(hash(url)) % 10**6}")
        outcome = mcp_client.call_tool(
            make_tool(server, "echo"), {"text": "x"}, conversation_id="c", timeout=10
        )
        assert outcome.is_error is True, url
        assert "not allowed" in outcome.content or "only" in outcome.content.lower(), outcome.content
        with pytest.raises(mcp_sessions.McpError) as caught:
            mcp_client.list_tools(server)
        assert caught.value.code == "mcp_url_not_allowed"
    # Nothing reached the loopback server.
    assert mcp_server.requests == []


def test_the_connect_check_refuses_an_address_the_url_check_let_through(settings, mind, mcp_server):
    """A name that resolves to a public address at the check and to loopback at the connect (DNS rebinding) is
    refused at the connect: the backend resolves and checks again, and connects only to what it checked."""
    settings.SSRF_ALLOW_LOOPBACK = False
    endpoint = mcp_sessions.Endpoint(url=mcp_server.url)  # skips endpoint_for's check, as a rebinding would
    with pytest.raises(mcp_sessions.McpError) as caught:
        mcp_sessions.call_once(endpoint, lambda session: session.list_tools(), timeout=10)
    assert caught.value.code == "mcp_url_not_allowed"
    assert mcp_server.requests == []


def test_a_server_that_refuses_the_credentials(api, loopback, mind):
    with McpTestServer(require_headers={"Authorization": "Bearer right"}) as guarded:
        wrong = api.post(
            servers_url(mind), {"name": "g", "url": guarded.url, "headers": {"Authorization": "Bearer wrong"}}
        )
        body = assert_error(wrong, 422, "mcp_unauthorized")
        assert "wrong" not in body["message"] and not McpServer.objects.exists()
        created = api.post(
            servers_url(mind), {"name": "g", "url": guarded.url, "headers": {"Authorization": "Bearer right"}}
        )
        assert created.status_code == 201, created.json()
        server = McpServer.objects.get()
        echo = server.tools.get(config__remoteName="echo")
        assert (
            mcp_client.call_tool(echo, {"text": "ok"}, conversation_id="g", timeout=20).content == "echo: ok"
        )
        # The token is revoked (the server now wants another): the next call says so.
        guarded.require_headers["authorization"] = "Bearer rotated"
        refused = mcp_client.call_tool(echo, {"text": "no"}, conversation_id="g", timeout=20)
        assert refused.is_error and "refused the credentials" in refused.content
        mcp_sessions.close_all()


def test_unreadable_secret_headers_are_an_error_outcome(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    server.secret_headers_ciphertext = "not-a-fernet-token"
    server.save()
    outcome = mcp_client.call_tool(make_tool(server, "echo"), {"text": "x"}, conversation_id="c", timeout=10)
    assert outcome.is_error is True and "set them again" in outcome.content
    assert mcp_server.requests == []


# --- The native API -----------------------------------------------------------------------------------------


def servers_url(mind) -> str:
    return f"/api/v1/minds/{mind.id}/mcp-servers"


def test_creating_a_server_lists_its_tools_disabled_and_never_shows_the_secret(
    api, loopback, mind, mcp_server
):
    response = api.post(
        servers_url(mind),
        {"name": "remote", "url": mcp_server.url, "headers": {"Authorization": "Bearer mcp-s3cret"}},
    )
    assert response.status_code == 201, response.json()
    assert "mcp-s3cret" not in response.content.decode()
    created = response.json()["mcpServer"]
    assert created["id"].startswith("mcp_") and created["mindId"] == mind.id
    assert (
        created["secretHeaders"] == ["Authorization"] and created["listedAt"] and created["enabled"] is True
    )
    tools = {t["remoteName"]: t for t in created["tools"]}
    assert {"echo", "add", "fail", "slow", "big", "whoami"} <= set(tools)
    assert tools["add"]["name"] == "remote__add" and tools["add"]["enabled"] is False
    assert tools["add"]["parameters"]["required"] == ["a", "b"]
    row = Tool.objects.get(id=tools["add"]["id"])
    assert (row.kind, row.config, row.mcp_server_id) == ("mcp", {"remoteName": "add"}, created["id"])
    # The stored headers are encrypted, the listing sent them.
    server = McpServer.objects.get(id=created["id"])
    assert "mcp-s3cret" not in server.secret_headers_ciphertext
    assert any(r.headers.get("authorization") == "Bearer mcp-s3cret" for r in mcp_server.requests)
    # Read back: the same, still without the value; the audit log has names only.
    detail = api.get(f"{servers_url(mind)}/{created['id']}")
    assert detail.status_code == 200 and "mcp-s3cret" not in detail.content.decode()
    listed = api.get(servers_url(mind)).json()["mcpServers"]
    assert [s["id"] for s in listed] == [created["id"]]
    from accounts.models import AuditLog

    entry = AuditLog.objects.get(entity="mcp_server", action="create")
    assert "mcp-s3cret" not in str(entry.changes) and entry.changes["secretHeaders"] == ["Authorization"]


def test_a_server_that_cannot_be_listed_is_not_saved(api, loopback, mind):
    down = api.post(servers_url(mind), {"name": "down", "url": f"http://127.0.0.1:{free_port()}/mcp"})
    body = assert_error(down, 422, "mcp_unreachable")
    assert "127.0.0.1" not in body["message"] or "could not be reached" in body["message"]
    assert not McpServer.objects.exists() and not Tool.objects.exists()


def test_a_url_that_answers_but_is_no_mcp_server_is_a_protocol_error(api, loopback, mind):
    from tests.fakesite import FakeSite

    with FakeSite() as site:
        site.route("/mcp", b"<html>hello</html>", content_type="text/html")
        response = api.post(servers_url(mind), {"name": "web", "url": site.url("/mcp")})
    assert response.status_code == 422, response.json()
    assert response.json()["code"] in ("mcp_protocol_error", "mcp_unreachable")
    assert not McpServer.objects.exists()


def test_private_addresses_are_refused_on_create(api, settings, mind, mcp_server):
    settings.SSRF_ALLOW_LOOPBACK = False
    for url in (mcp_server.url, "http://10.1.2.3/mcp", "http://[::1]:8080/mcp", "file:///etc/passwd"):
        assert_error(api.post(servers_url(mind), {"name": "x", "url": url}), 400, "url_not_allowed")
    assert mcp_server.requests == [] and not McpServer.objects.exists()


def test_create_validation(api, loopback, mind, mcp_server):
    assert_error(
        api.post(servers_url(mind), {"name": "bad name!", "url": mcp_server.url}), 400, "validation_error"
    )
    assert_error(
        api.post(servers_url(mind), {"name": "h", "url": mcp_server.url, "headers": {"Host": "evil"}}),
        400,
        "validation_error",
    )
    assert api.post(servers_url(mind), {"name": "same", "url": mcp_server.url}).status_code == 201
    assert_error(api.post(servers_url(mind), {"name": "same", "url": mcp_server.url}), 409, "conflict")


def test_switching_tools_on_and_changing_headers(api, loopback, mind, mcp_server):
    created = api.post(servers_url(mind), {"name": "remote", "url": mcp_server.url}).json()["mcpServer"]
    echo = next(t for t in created["tools"] if t["remoteName"] == "echo")
    url = f"{servers_url(mind)}/{created['id']}"
    switched = api.patch(url, {"tools": [{"id": echo["id"], "enabled": True}]})
    assert switched.status_code == 200, switched.json()
    assert next(t for t in switched.json()["mcpServer"]["tools"] if t["id"] == echo["id"])["enabled"] is True
    other = Tool.objects.create(workspace=mind.workspace, mind=mind, kind="http", name="elsewhere")
    assert_error(api.patch(url, {"tools": [{"id": other.id, "enabled": True}]}), 400, "validation_error")

    changed = api.patch(url, {"headers": {"X-Api-Key": "k-123"}, "name": "renamed"})
    assert changed.status_code == 200, changed.json()
    server = changed.json()["mcpServer"]
    assert server["secretHeaders"] == ["X-Api-Key"] and "k-123" not in changed.content.decode()
    assert all(t["name"].startswith("renamed__") for t in server["tools"])
    # The switch survived the re-listing.
    assert next(t for t in server["tools"] if t["id"] == echo["id"])["enabled"] is True

    # A server fetched, edited and sent back is accepted; a header sent as null is removed.
    fetched = api.get(url).json()["mcpServer"]
    round_trip = api.patch(url, {**fetched, "enabled": False})
    assert round_trip.status_code == 200, round_trip.json()
    assert round_trip.json()["mcpServer"]["enabled"] is False
    cleared = api.patch(url, {"headers": {"x-api-key": None, "X-Other": "o-1"}, "enabled": True})
    assert cleared.json()["mcpServer"]["secretHeaders"] == ["X-Other"]

    # A new URL that cannot be listed is refused and nothing changes.
    refused = api.patch(url, {"url": f"http://127.0.0.1:{free_port()}/mcp", "name": "again"})
    assert_error(refused, 422, "mcp_unreachable")
    assert McpServer.objects.get(id=created["id"]).name == "renamed"

    # The tool is callable through the runtime the chat uses.
    from knowledge.search import KnowledgeScope
    from tools.runtime import toolbox_for

    toolbox = toolbox_for(mind, conversation_id="conv_api", scope=KnowledgeScope.of_mind(mind), public=False)
    assert [spec.name for spec in toolbox.specs if spec.kind == "mcp"] == ["renamed__echo"]
    outcome = toolbox.call("renamed__echo", '{"text": "through the toolbox"}', timeout=20)
    assert (outcome.content, outcome.is_error) == ("echo: through the toolbox", False)
    assert any(r.headers.get("x-other") == "o-1" for r in mcp_server.requests)
    assert any(r.headers.get("x-api-key") == "k-123" for r in mcp_server.requests)  # sent while it was set


def test_refresh_adds_removes_and_updates_tools(api, loopback, mind, mcp_server):
    created = api.post(servers_url(mind), {"name": "remote", "url": mcp_server.url}).json()["mcpServer"]
    url = f"{servers_url(mind)}/{created['id']}"
    add = next(t for t in created["tools"] if t["remoteName"] == "add")
    api.patch(url, {"tools": [{"id": add["id"], "enabled": True}]})

    def multiply(a: int, b: int, c: int = 1) -> int:
        return a * b * c

    def add_three(a: int, b: int, c: int) -> int:
        return a + b + c

    mcp_server.mcp.add_tool(multiply, description="Multiply.")
    mcp_server.mcp.remove_tool("big")
    mcp_server.mcp.remove_tool("add")
    mcp_server.mcp.add_tool(add_three, name="add", description="Add three integers.")

    refreshed = api.post(f"{url}/refresh")
    assert refreshed.status_code == 200, refreshed.json()
    changes = refreshed.json()["changes"]
    assert changes == {"added": ["multiply"], "updated": ["add"], "removed": ["big"]}
    tools = {t["remoteName"]: t for t in refreshed.json()["mcpServer"]["tools"]}
    assert "big" not in tools and tools["multiply"]["enabled"] is False
    assert tools["add"]["id"] == add["id"] and tools["add"]["enabled"] is True  # kept its switch
    assert tools["add"]["parameters"]["required"] == ["a", "b", "c"]
    assert tools["add"]["description"] == "Add three integers."

    mcp_server.stop()
    failed = api.post(f"{url}/refresh")
    assert_error(failed, 422, "mcp_unreachable")
    server = api.get(url).json()["mcpServer"]
    assert server["lastError"] and len(server["tools"]) == len(tools)


def test_deleting_a_server_deletes_its_tools(api, loopback, mind, mcp_server):
    created = api.post(servers_url(mind), {"name": "remote", "url": mcp_server.url}).json()["mcpServer"]
    response = api.delete(f"{servers_url(mind)}/{created['id']}")
    assert response.status_code == 200 and response.json() == {
        "status": "success",
        "deleted": True,
        "id": created["id"],
    }
    assert not Tool.objects.filter(mcp_server_id=created["id"]).exists()
    assert_error(api.get(f"{servers_url(mind)}/{created['id']}"), 404, "not_found")


def test_scopes_and_other_workspaces(api, other_api, loopback, workspace, mind, mcp_server):
    from tests.helpers import KeyedClient, make_key

    created = api.post(servers_url(mind), {"name": "remote", "url": mcp_server.url}).json()["mcpServer"]
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get(servers_url(mind)).status_code == 200
    assert_error(
        reader.post(servers_url(mind), {"name": "r2", "url": mcp_server.url}), 403, "insufficient_scope"
    )
    assert_error(reader.post(f"{servers_url(mind)}/{created['id']}/refresh"), 403, "insufficient_scope")
    assert_error(reader.delete(f"{servers_url(mind)}/{created['id']}"), 403, "insufficient_scope")
    assert_error(other_api.get(f"{servers_url(mind)}/{created['id']}"), 404, "not_found")
    # A server id of another mind of the same workspace is not found under this mind.
    second = Mind.objects.create(workspace=workspace, name="Second", slug="second-mcp")
    assert_error(api.get(f"{servers_url(second)}/{created['id']}"), 404, "not_found")


def test_long_names_are_cut_to_64_and_made_unique(loopback, mind, mcp_server):
    from tools import mcp_services

    def first(x: int) -> int:
        return x

    long = "a_very_long_tool_name_that_goes_on_and_on_beyond_any_reasonable_length"
    mcp_server.mcp.add_tool(first, name=long + "_one", description="One.")
    mcp_server.mcp.add_tool(first, name=long + "_two", description="Two.")
    mcp_server.mcp.add_tool(first, name="dotted.name/with spaces", description="Odd characters.")
    server = mcp_services.mcp_server_create(
        mind=mind, changes=mcp_services.McpServerChanges(name="s" * 40, url=mcp_server.url)
    )
    names = {t.config["remoteName"]: t.name for t in server.tools.all()}
    import re

    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names.values()), names
    assert names[long + "_one"] != names[long + "_two"]
    assert len(names[long + "_one"]) == 64 and len(names[long + "_two"]) == 64
    assert names["dotted.name/with spaces"] == ("s" * 40 + "__dotted_name_with_spaces")[:64]


def test_a_chat_turn_calls_an_mcp_tool(api, loopback, settings, mind, mcp_server):
    """End to end: the model (FakeLLM) calls the MCP tool, the real server answers, the answer uses it."""
    from tests.fakellm import FakeLLM, tool_call

    created = api.post(servers_url(mind), {"name": "remote", "url": mcp_server.url}).json()["mcpServer"]
    echo = next(t for t in created["tools"] if t["remoteName"] == "echo")
    api.patch(f"{servers_url(mind)}/{created['id']}", {"tools": [{"id": echo["id"], "enabled": True}]})
    with FakeLLM(
        script=[tool_call("remote__echo", {"text": "from the model"}), "The server said so."]
    ) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        response = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Use the echo tool"})
        assert response.status_code == 200, response.json()
        tool_messages = [
            m for body in fake.requests for m in body.get("messages", []) if m.get("role") == "tool"
        ]
    assert any("echo: from the model" in str(m.get("content")) for m in tool_messages), tool_messages
    assert any("tools/call" in r.body.decode() for r in mcp_server.requests)


def test_threads_share_one_session_per_conversation(loopback, mind, mcp_server):
    """Request threads (gunicorn's) calling at once: one session per conversation, every call answered."""
    from concurrent.futures import ThreadPoolExecutor

    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    server = McpServer.objects.get(pk=server.pk)  # the threads use their own rows' attributes only
    echo.mcp_server = server

    def call(i: int):
        return mcp_client.call_tool(echo, {"text": str(i)}, conversation_id=f"conv_{i % 2}", timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(call, range(16)))
    assert [o.content for o in outcomes] == [f"echo: {i}" for i in range(16)]
    assert mcp_server.initializations() == 2  # conv_0 and conv_1


def test_a_forked_child_opens_its_own_loop_and_session(loopback, mind, mcp_server):
    """After a fork (gunicorn --preload, Celery prefork) the child must not use the parent's loop thread."""
    import os

    server = make_server(mind, mcp_server.url)
    echo = make_tool(server, "echo")
    echo.mcp_server = McpServer.objects.get(pk=server.pk)
    assert (
        mcp_client.call_tool(echo, {"text": "parent"}, conversation_id="fork", timeout=20).content
        == "echo: parent"
    )
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no database, only the network
        try:
            outcome = mcp_client.call_tool(echo, {"text": "child"}, conversation_id="fork", timeout=20)
            os.write(write, outcome.content.encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 1000).decode()
    os.close(read)
    assert status == 0 and answer == "echo: child"
    assert mcp_server.initializations() == 2  # the child opened a session of its own
    # The parent's session is still there and works.
    assert (
        mcp_client.call_tool(echo, {"text": "again"}, conversation_id="fork", timeout=20).content
        == "echo: again"
    )


def test_no_secret_header_reaches_a_log(api, loopback, mind, mcp_server, caplog):
    """At DEBUG, through the SDK's and httpx2's own loggers too: create, call, a failing call, refresh, delete."""
    import logging

    caplog.set_level(logging.DEBUG)
    secret = "Bearer mcp-log-s3cret-9f2"
    created = api.post(
        servers_url(mind), {"name": "remote", "url": mcp_server.url, "headers": {"Authorization": secret}}
    )
    assert created.status_code == 201
    server = McpServer.objects.get()
    for remote, arguments in (("echo", {"text": "hi"}), ("fail", {"message": "nope"}), ("whoami", {})):
        mcp_client.call_tool(
            server.tools.get(config__remoteName=remote), arguments, conversation_id="l", timeout=20
        )
    assert api.post(f"{servers_url(mind)}/{server.id}/refresh").status_code == 200
    mcp_sessions.close_all()
    assert api.delete(f"{servers_url(mind)}/{server.id}").status_code == 200
    assert caplog.records, "the flow logged something at DEBUG"
    assert "mcp-log-s3cret-9f2" not in caplog.text


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (a hung server)."""
    import socket as _socket

    listener = _socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    listener.close()


def test_a_hung_server_times_out_on_create_and_on_a_call(api, loopback, monkeypatch, mind, silent_server):
    monkeypatch.setattr(mcp_client, "LIST_TIMEOUT_SECONDS", 1.0)
    assert_error(api.post(servers_url(mind), {"name": "hung", "url": silent_server}), 422, "mcp_timeout")
    assert not McpServer.objects.exists()
    server = make_server(mind, silent_server)
    outcome = mcp_client.call_tool(make_tool(server, "echo"), {"text": "x"}, conversation_id="h", timeout=1.0)
    assert outcome.is_error and "in time" in outcome.content
    # The session that never opened is not kept.
    assert ("h", server.id) not in mcp_sessions.open_sessions()


def test_the_admin_shows_servers_and_endpoints_without_secrets(client, loopback, mind, mcp_server):
    from django.contrib.auth.models import User

    from tools.models import ContextEndpoint

    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    server = make_server(mind, mcp_server.url, headers={"Authorization": "Bearer admin-s3cret"})
    endpoint = ContextEndpoint(mind=mind, workspace=mind.workspace, url_template=mcp_server.url + "/ctx")
    secret_headers_set(endpoint, {"X-Key": "ctx-admin-s3cret"})
    endpoint.save()
    pages = [
        "/admin/tools/mcpserver/",
        admin_path("tools/mcpserver", server.id),
        "/admin/tools/contextendpoint/",
        admin_path("tools/contextendpoint", mind.id),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "admin-s3cret" not in html and server.secret_headers_ciphertext not in html
        assert endpoint.secret_headers_ciphertext not in html
    assert "Authorization" in client.get(pages[1]).content.decode()  # the names are shown
    # The refresh action lists the server again.
    response = client.post(pages[0], {"action": "refresh", "_selected_action": [server.id]}, follow=True)
    assert response.status_code == 200 and "1 server(s) refreshed" in response.content.decode()
    assert server.tools.filter(config__remoteName="echo").exists()


def test_a_connection_reading_past_its_byte_cap_is_an_error_outcome(loopback, monkeypatch, mind, mcp_server):
    monkeypatch.setattr(mcp_sessions, "MAX_CONNECTION_BYTES", 64 * 1024)
    server = make_server(mind, mcp_server.url)
    outcome = mcp_client.call_tool(
        make_tool(server, "big"), {"size": 200_000}, conversation_id="cap", timeout=20
    )
    assert outcome.is_error is True, outcome.content[:200]
    assert outcome.content.startswith("The MCP server remote failed: The MCP server sent more than 64 KB")
    # A new session (new connections, a new budget) still answers small calls.
    small = mcp_client.call_tool(
        make_tool(server, "echo"), {"text": "small"}, conversation_id="cap2", timeout=20
    )
    assert (small.content, small.is_error) == ("echo: small", False)
