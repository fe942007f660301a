"""MCP servers as tools of a mind, against a real MCP server (the SDK's own MCPServer over streamable HTTP,
tests/mcpserver.py): listing, calling in a kept session per conversation, reconnecting, idle close, errors as
outcomes, SSRF refusal, secret headers never shown, and the native API."""

import pytest

from minds.models import Mind
from tests.helpers import wait_for
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


def test_unreadable_secret_headers_are_an_error_outcome(loopback, mind, mcp_server):
    server = make_server(mind, mcp_server.url)
    server.secret_headers_ciphertext = "not-a-fernet-token"
    server.save()
    outcome = mcp_client.call_tool(make_tool(server, "echo"), {"text": "x"}, conversation_id="c", timeout=10)
    assert outcome.is_error is True and "set them again" in outcome.content
    assert mcp_server.requests == []
