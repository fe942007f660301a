"""The tools a chat turn calls (tools/runtime.py): which tools a turn gets, the built-ins, HTTP tools through the
SSRF-safe client, the failures a model reads instead of a 500, the audit of every call, and secrets never shown."""

import json
import logging
import threading
import time

import pytest
from django.db import connection

from accounts.models import AuditLog
from knowledge.search import KnowledgeScope
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakesite import FakeSite
from tools import builtin
from tools.models import Tool
from tools.runtime import ToolOutcome, toolbox_for
from tools.secrets import headers_decrypt, secret_headers_set

pytestmark = pytest.mark.django_db

SECRET = "sk-live-7f3a9c1e5b2d8f4a"
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string", "pattern": "^[A-Z0-9-]{1,20}$"},
        "verbose": {"type": "boolean"},
    },
    "required": ["orderId"],
    "additionalProperties": False,
}


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-tools")


@pytest.fixture
def loopback(settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # the fake remote sites listen on 127.0.0.1


def make_tool(mind, kind="http", name="lookup_order", *, secret=None, **fields) -> Tool:
    fields.setdefault("enabled", True)
    tool = Tool(workspace_id=mind.workspace_id, mind=mind, kind=kind, name=name, **fields)
    if secret:
        secret_headers_set(tool, secret)
    tool.save()
    return tool


def http_tool(mind, url_template, *, method="GET", name="lookup_order", parameters=None, **fields):
    return make_tool(
        mind,
        name=name,
        parameters=parameters if parameters is not None else ORDER_SCHEMA,
        config={"method": method, "urlTemplate": url_template, **fields.pop("config", {})},
        **fields,
    )


def box(mind, *, public=False, checked=None, scope=None):
    return toolbox_for(
        mind,
        conversation_id="cnv_test",
        scope=scope or KnowledgeScope.of_mind(mind),
        public=public,
        checked=checked,
    )


def call(mind, name, arguments, *, timeout=5.0, **kwargs) -> ToolOutcome:
    toolbox = box(mind, **kwargs)
    return toolbox.call(
        name, arguments if isinstance(arguments, str) else json.dumps(arguments), timeout=timeout
    )


def audits(tool):
    return list(AuditLog.objects.filter(entity="tool", entity_id=tool.id, action="call").order_by("id"))


# Which tools a turn has ----------------------------------------------------------------------------------------


def test_tools_are_off_unless_enabled_and_checked_switches_them_per_chat(mind, other_workspace):
    on = make_tool(mind, "search_knowledge", name="search_knowledge")
    off = http_tool(mind, "https://api.example.com/o/{orderId}", enabled=False)
    assert [s.name for s in box(mind).specs] == ["search_knowledge"]
    assert [s.name for s in box(mind, checked=[{"id": off.id, "checked": True}]).specs] == [
        "search_knowledge",
        "lookup_order",
    ]
    assert box(mind, checked=[{"id": on.id, "checked": False}]).specs == []
    # Unknown ids and another mind's tools are ignored: they can never be switched on.
    other_mind = Mind.objects.create(workspace=other_workspace, name="Other", slug="other-tools")
    foreign = http_tool(other_mind, "https://api.example.com/o/{orderId}", name="foreign", enabled=False)
    toolbox = box(mind, checked=[{"id": foreign.id, "checked": True}, {"id": "tool_nope", "checked": True}])
    assert [s.name for s in toolbox.specs] == ["search_knowledge"]
    outcome = toolbox.call("foreign", "{}", timeout=5)
    assert outcome.is_error and "no tool named" in outcome.content
    assert audits(foreign) == []


def test_a_public_chat_gets_only_enabled_public_tools_and_can_only_switch_them_off(mind):
    public = make_tool(mind, "search_knowledge", name="search_knowledge", is_public=True)
    private = http_tool(mind, "https://api.example.com/o/{orderId}")
    hidden = http_tool(
        mind, "https://api.example.com/p/{orderId}", name="disabled_public", enabled=False, is_public=True
    )
    assert [s.id for s in box(mind, public=True).specs] == [public.id]
    switched = [{"id": private.id, "checked": True}, {"id": hidden.id, "checked": True}]
    assert [s.id for s in box(mind, public=True, checked=switched).specs] == [public.id]
    assert box(mind, public=True, checked=[{"id": public.id, "checked": False}]).specs == []
    assert box(mind, public=True).call("lookup_order", "{}", timeout=5).is_error


def test_specs_are_openai_functions_with_the_built_in_defaults(mind):
    make_tool(mind, "search_knowledge", name="search_knowledge")
    http_tool(mind, "https://api.example.com/o/{orderId}", description="Look an order up.")
    first, second = (spec.as_openai() for spec in box(mind).specs)
    assert first["type"] == "function" and first["function"]["name"] == "search_knowledge"
    assert first["function"]["parameters"]["required"] == ["query"]
    assert "knowledge" in first["function"]["description"]
    assert second["function"] == {
        "name": "lookup_order",
        "description": "Look an order up.",
        "parameters": ORDER_SCHEMA,
    }


# search_knowledge -------------------------------------------------------------------------------------------------


def test_search_knowledge_returns_the_passages_of_the_minds_knowledge(mind, workspace):
    ready_source(
        mind,
        "Lighthouses",
        [
            "The Fresnel lens, invented by Augustin-Jean Fresnel in 1822, let lighthouse "
            "beams reach over twenty miles."
        ],
    )
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-search")
    ready_source(
        other, "Secret lens notes", ["The Fresnel lens of the other mind is described here in detail."]
    )
    tool = make_tool(mind, "search_knowledge", name="search_knowledge")
    outcome = call(mind, "search_knowledge", {"query": "Who invented the lighthouse lens?"})
    assert not outcome.is_error, outcome.content
    assert outcome.hits and {h.chunk.source.name for h in outcome.hits} == {"Lighthouses"}
    assert "Fresnel" in outcome.hits[0].chunk.content and "Lighthouses" in outcome.content
    missing = call(mind, "search_knowledge", {"query": "zqxv wombat tax returns of 1702"})
    assert not missing.is_error and missing.hits == [] and "No passage" in missing.content
    [first, second] = audits(tool)
    assert first.changes["ok"] is True and first.changes["arguments"] == ["query"]
    assert first.changes["conversationId"] == "cnv_test" and isinstance(first.changes["durationMs"], int)
    assert "lighthouse" not in json.dumps(first.changes).lower()  # argument names, not values


def test_search_knowledge_refuses_arguments_off_its_schema(mind):
    make_tool(mind, "search_knowledge", name="search_knowledge")
    for arguments in ({}, {"query": ""}, {"query": 3}, {"query": "x", "extra": 1}):
        outcome = call(mind, "search_knowledge", arguments)
        assert outcome.is_error and "schema" in outcome.content, (arguments, outcome.content)
        assert outcome.hits == []


def statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


def test_search_knowledge_stops_at_the_tools_timeout_and_restores_the_limit(mind, monkeypatch):
    ready_source(mind, "Lighthouses", ["The Fresnel lens let lighthouse beams reach over twenty miles."])
    make_tool(mind, "search_knowledge", name="search_knowledge")
    before = statement_timeout()

    def slow_search(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")  # a query far slower than the call may take
        return []

    monkeypatch.setattr(builtin, "search_chunks", slow_search)
    started = time.monotonic()
    outcome = call(mind, "search_knowledge", {"query": "lighthouse lens"}, timeout=0.3)
    assert outcome.is_error and "did not finish within 0.3 s" in outcome.content, outcome.content
    assert time.monotonic() - started < 4
    assert statement_timeout() == before  # the connection is usable, with its own limit back
    monkeypatch.undo()
    found = call(mind, "search_knowledge", {"query": "lighthouse lens"}, timeout=2)
    assert not found.is_error and found.hits
    assert statement_timeout() == before  # also after a search that finished, inside the test's transaction


# fetch_url --------------------------------------------------------------------------------------------------------


def test_fetch_url_reads_allowed_hosts_only(mind, loopback):
    page = (
        "<html><head><title>Opening hours</title></head><body><nav>Menu</nav><article><h1>Hours</h1><p>"
        + ("The harbour museum opens at nine every morning and closes at five in the afternoon. " * 8)
        + "</p></article></body></html>"
    )
    with FakeSite() as site:
        site.route("/hours", page, content_type="text/html; charset=utf-8")
        site.route("/elsewhere", status=302, headers={"Location": f"http://localhost:{site.port}/hours"})
        tool = make_tool(mind, "fetch_url", name="fetch_url", config={"allowedHosts": ["127.0.0.1"]})
        outcome = call(mind, "fetch_url", {"url": site.url("/hours")})
        assert not outcome.is_error, outcome.content
        assert (
            "opens at nine" in outcome.content
            and "# Hours" in outcome.content
            and "Menu" not in outcome.content
        )
        refused = call(mind, "fetch_url", {"url": f"http://localhost:{site.port}/hours"})
        assert refused.is_error and "not one of the hosts" in refused.content
        # A redirect to a host that is not allowed is refused too.
        redirected = call(mind, "fetch_url", {"url": site.url("/elsewhere")})
        assert redirected.is_error and "not one of the hosts" in redirected.content
        assert [r.path for r in site.requests] == ["/hours", "/elsewhere"]
    assert [a.changes["ok"] for a in audits(tool)] == [True, False, False]
    assert audits(tool)[1].changes["error"] == "refused"


def test_fetch_url_host_rule_is_exact_or_subdomain():
    from tools.builtin import host_allowed

    assert host_allowed("example.com", ["example.com"])
    assert host_allowed("docs.example.com", ["Example.com."])
    assert not host_allowed("badexample.com", ["example.com"])
    assert not host_allowed("example.com.evil.net", ["example.com"])
    assert not host_allowed("example.com", [])


def test_fetch_url_keeps_the_ssrf_guard_whatever_the_allowed_hosts(mind):
    make_tool(
        mind,
        "fetch_url",
        name="fetch_url",
        config={"allowedHosts": ["127.0.0.1", "169.254.169.254", "10.0.0.1"]},
    )
    for url in (
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1",
    ):
        outcome = call(mind, "fetch_url", {"url": url})
        assert outcome.is_error and "Not fetched" in outcome.content, (url, outcome.content)


# HTTP tools -------------------------------------------------------------------------------------------------------


def test_http_get_fills_the_template_url_encoded_and_sends_the_secret_headers(mind, loopback, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeSite() as site:
        site.route(
            "/orders/A-1%2F2",
            json.dumps({"id": "A-1/2", "status": "shipped", "items": [1, 2]}),
            content_type="application/json",
        )
        site.route("/orders/B-7", json.dumps({"status": "lost"}), content_type="application/json")
        schema = {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}
        tool = http_tool(
            mind,
            site.url("/orders/{orderId}"),
            parameters=schema,
            config={"headers": {"X-Plain": "visible"}},
            secret={"Authorization": f"Bearer {SECRET}"},
        )
        outcome = call(mind, "lookup_order", {"orderId": "A-1/2"})
        assert not outcome.is_error, outcome.content
        assert json.loads(outcome.content) == {"id": "A-1/2", "status": "shipped", "items": [1, 2]}
        [request] = site.requests
        assert request.method == "GET" and request.path == "/orders/A-1%2F2"
        assert (
            request.headers["authorization"] == f"Bearer {SECRET}" and request.headers["x-plain"] == "visible"
        )
    [entry] = audits(tool)
    assert entry.changes["ok"] is True and entry.changes["arguments"] == ["orderId"]
    assert SECRET not in json.dumps(entry.changes) and SECRET not in caplog.text
    assert SECRET not in tool.secret_headers_ciphertext and tool.secret_header_names == ["Authorization"]
    assert headers_decrypt(tool.secret_headers_ciphertext) == {"Authorization": f"Bearer {SECRET}"}


def test_http_post_sends_the_arguments_as_json(mind, loopback):
    with FakeSite() as site:
        site.route("/tickets", handler=lambda r: (201, {"Content-Type": "text/plain"}, b"ticket T-9 opened"))
        http_tool(mind, site.url("/tickets"), method="POST")
        outcome = call(mind, "lookup_order", {"orderId": "C-3", "verbose": True})
        assert not outcome.is_error and outcome.content == "ticket T-9 opened"
        [request] = site.requests
        assert request.method == "POST" and json.loads(request.body) == {"orderId": "C-3", "verbose": True}
        assert request.headers["content-type"] == "application/json"


def test_an_echoed_secret_is_masked_and_errors_never_show_it(mind, loopback, caplog):
    caplog.set_level(logging.DEBUG)

    def echo(request):
        return (
            403,
            {"Content-Type": "text/plain"},
            f"denied for {request.headers['authorization']}, token {request.headers['authorization'][7:]}".encode(),
        )

    with FakeSite() as site:
        site.route("/orders/A-1", handler=echo)
        tool = http_tool(mind, site.url("/orders/{orderId}"), secret={"Authorization": f"Bearer {SECRET}"})
        outcome = call(mind, "lookup_order", {"orderId": "A-1"})
    assert (
        outcome.is_error
        and "HTTP 403" in outcome.content
        and "denied for [secret], token [secret]" in outcome.content
    )
    assert SECRET not in outcome.content and SECRET not in caplog.text
    [entry] = audits(tool)
    assert entry.changes["ok"] is False and entry.changes["error"] == "http_status"
    assert SECRET not in json.dumps(entry.changes)


def test_the_failures_of_a_tool_are_outcomes_the_model_reads(mind, loopback):
    release = threading.Event()

    def slow(request):
        release.wait(10)
        return 200, {"Content-Type": "text/plain"}, b"too late"

    with FakeSite() as site:
        site.route("/orders/SLOW", handler=slow)
        site.route("/orders/GONE", status=404, body="no such order")
        site.route("/orders/BOOM", status=500, body="")
        site.route("/orders/BIG", "x" * 50_000, content_type="text/plain")
        tool = http_tool(mind, site.url("/orders/{orderId}"))
        try:
            timeout = call(mind, "lookup_order", {"orderId": "SLOW"}, timeout=0.5)
        finally:
            release.set()
        not_found = call(mind, "lookup_order", {"orderId": "GONE"})
        server_error = call(mind, "lookup_order", {"orderId": "BOOM"})
        big = call(mind, "lookup_order", {"orderId": "BIG"})
        invalid_json = call(mind, "lookup_order", '{"orderId": "A-1"')
        not_object = call(mind, "lookup_order", '["A-1"]')
        off_schema = call(mind, "lookup_order", {"orderId": "lower case!"})
        missing = call(mind, "lookup_order", {})
        assert len(site.requests) == 4  # the refused arguments never reached the remote end
    assert timeout.is_error and "did not answer within 0.5 s" in timeout.content
    assert not_found.is_error and "HTTP 404" in not_found.content and "no such order" in not_found.content
    assert server_error.is_error and "HTTP 500" in server_error.content
    from django.conf import settings

    assert not big.is_error and len(big.content) == settings.TOOL_RESULT_MAX_CHARS
    assert big.content.startswith("xxxx") and "cut: 50000 characters" in big.content
    assert invalid_json.is_error and invalid_json.content == "The arguments are not valid JSON."
    assert not_object.is_error and "JSON object" in not_object.content
    assert off_schema.is_error and "orderId" in off_schema.content and "schema" in off_schema.content
    assert missing.is_error and "required" in missing.content
    reasons = [a.changes.get("error") for a in audits(tool)]
    assert reasons == [
        "timeout",
        "http_status",
        "http_status",
        None,
        "invalid_json",
        "invalid_arguments",
        "invalid_arguments",
        "invalid_arguments",
    ]
    assert all(isinstance(a.changes["durationMs"], int) for a in audits(tool))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/o/{orderId}",
        "http://localhost/o/{orderId}",
        "http://10.1.2.3/o/{orderId}",
        "http://192.168.0.1/o/{orderId}",
        "http://169.254.169.254/latest/meta-data/{orderId}",
        "http://[::1]/o/{orderId}",
        "http://[::ffff:10.0.0.1]/o/{orderId}",
        "file:///etc/passwd#{orderId}",
        "ftp://example.com/{orderId}",
        "gopher://example.com/{orderId}",
    ],
)
def test_http_tools_refuse_private_addresses_and_other_schemes(mind, url):
    tool = http_tool(mind, url)
    outcome = call(mind, "lookup_order", {"orderId": "A-1"})
    assert outcome.is_error and outcome.content.startswith("Not called:"), outcome.content
    assert audits(tool)[0].changes["error"] == "refused"


def test_a_redirect_to_a_private_address_is_refused_and_takes_no_secret_elsewhere(mind, loopback):
    with FakeSite() as site, FakeSite() as other:
        site.route(
            "/orders/META", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
        )
        site.route("/orders/PRIV", status=307, headers={"Location": "http://10.0.0.7/internal"})
        site.route("/orders/AWAY", status=302, headers={"Location": other.url("/landing")})
        other.route("/landing", "landed", content_type="text/plain")
        http_tool(mind, site.url("/orders/{orderId}"), secret={"X-Api-Key": SECRET})
        for order in ("META", "PRIV"):
            outcome = call(mind, "lookup_order", {"orderId": order})
            assert outcome.is_error and "Not called" in outcome.content, outcome.content
        away = call(mind, "lookup_order", {"orderId": "AWAY"})
        assert not away.is_error and away.content == "landed"
        [landed] = other.requests
        assert "x-api-key" not in landed.headers  # another origin never receives the secret headers


def test_an_unreadable_secret_fails_the_call_without_sending_it(mind, loopback):
    with FakeSite() as site:
        site.route("/orders/A-1", "ok")
        tool = http_tool(mind, site.url("/orders/{orderId}"))
        Tool.objects.filter(pk=tool.pk).update(
            secret_headers_ciphertext="gAAAAAnot-a-token", secret_header_names=["X"]
        )
        outcome = call(mind, "lookup_order", {"orderId": "A-1"})
        assert outcome.is_error and "set them again" in outcome.content
        assert site.requests == []


def test_a_tool_that_crashes_is_an_outcome_and_the_log_names_only_the_class(mind, monkeypatch, caplog):
    from tools import runtime

    def broken(tool, arguments, *, timeout):
        raise RuntimeError(f"boom with {SECRET}")

    monkeypatch.setattr(runtime, "call_http", broken)
    http_tool(mind, "https://api.example.com/o/{orderId}")
    outcome = call(mind, "lookup_order", {"orderId": "A-1"})
    assert outcome.is_error and outcome.content == "The tool failed (RuntimeError)."
    assert "RuntimeError" in caplog.text and SECRET not in caplog.text


def test_redirects_of_a_post_follow_http_semantics(mind, loopback):
    with FakeSite() as site:
        site.route("/orders/SEE", status=303, headers={"Location": "/done"})
        site.route("/orders/KEEP", status=307, headers={"Location": "/kept"})
        site.route("/done", "seen", content_type="text/plain")
        site.route("/kept", handler=lambda r: (200, {"Content-Type": "text/plain"}, b"kept " + r.body))
        http_tool(mind, site.url("/orders/{orderId}"), method="POST")
        assert call(mind, "lookup_order", {"orderId": "SEE"}).content == "seen"
        kept = call(mind, "lookup_order", {"orderId": "KEEP"})
        assert kept.content == 'kept {"orderId": "KEEP"}'
        methods = [(r.method, r.path) for r in site.requests]
        assert methods == [
            ("POST", "/orders/SEE"),
            ("GET", "/done"),
            ("POST", "/orders/KEEP"),
            ("POST", "/kept"),
        ]


def test_secret_headers_are_sealed_for_their_purpose_only(settings):
    from knowledge.passwords import password_encrypt
    from tools.secrets import SecretsUnreadable, headers_encrypt

    sealed = headers_encrypt({"Authorization": SECRET})
    assert (
        SECRET not in sealed and headers_encrypt({"Authorization": SECRET}) != sealed
    )  # a fresh IV each time
    assert headers_encrypt({}) == "" and headers_decrypt("") == {}
    with pytest.raises(SecretsUnreadable):
        headers_decrypt(
            password_encrypt(json.dumps({"Authorization": SECRET}))
        )  # another purpose, another key
    with pytest.raises(SecretsUnreadable):
        headers_decrypt(sealed[:-4] + "AAAA")  # altered
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    with pytest.raises(SecretsUnreadable):
        headers_decrypt(sealed)


def test_malformed_switches_are_ignored(mind):
    tool = make_tool(mind, "search_knowledge", name="search_knowledge")
    for checked in ([{"id": tool.id, "checked": "false"}], [{"id": 5, "checked": False}], ["x"], [None]):
        assert [s.id for s in box(mind, checked=checked).specs] == [tool.id]
