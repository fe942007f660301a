"""Dynamic context: a mind's context endpoint called on each chat turn through the SSRF-safe client (a real local
HTTP server, tests/fakesite.py), cached per conversation, capped at the context share, skipped when it fails; the
native API that sets it; and the system prompt of a real chat turn (FakeLLM) that carries it."""

import logging
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from minds.models import Mind
from tests.fakellm import FakeLLM
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, assert_error, make_key
from tools.context import CUT_MARK, cap_to_tokens, dynamic_context, rough_tokens
from tools.models import ContextEndpoint
from tools.secrets import secret_headers_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def loopback(settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    return settings


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-context")


@pytest.fixture
def site():
    with FakeSite() as fake:
        fake.route("/ctx", '{"plan": "gold", "openTickets": 2}', content_type="application/json")
        yield fake


def set_endpoint(mind, template: str, *, headers: dict | None = None, **fields) -> ContextEndpoint:
    endpoint = ContextEndpoint(mind=mind, workspace=mind.workspace, url_template=template, **fields)
    if headers:
        secret_headers_set(endpoint, headers)
    endpoint.save()
    return endpoint


def context(mind, conversation="conv_1", message="Where is my order?", user="user_7") -> str:
    return dynamic_context(mind, conversation_id=conversation, last_user_message=message, user_id=user)


def test_no_endpoint_means_no_context(mind):
    assert context(mind) == ""


def test_the_template_is_filled_encoded_and_the_secret_header_sent(loopback, mind, site):
    template = site.url("/ctx") + "?c={conversationId}&m={mindId}&q={lastUserMessage}&u={userId}"
    set_endpoint(mind, template, headers={"Authorization": "Bearer ctx-s3cret"})
    text = context(mind, message="Where's my order? & more/less")
    assert text == '{"plan": "gold", "openTickets": 2}'
    request = site.requests[-1]
    query = parse_qs(urlsplit(request.path).query)
    assert query == {
        "c": ["conv_1"],
        "m": [mind.id],
        "q": ["Where's my order? & more/less"],
        "u": ["user_7"],
    }
    assert "&+more" not in request.path and "%26" in request.path  # the message cannot add parameters
    assert request.headers["authorization"] == "Bearer ctx-s3cret"


def test_answers_are_cached_per_conversation(loopback, mind, site):
    set_endpoint(mind, site.url("/ctx") + "?c={conversationId}", cache_seconds=300)
    assert context(mind, "conv_a") and context(mind, "conv_a", message="another question")
    assert len(site.requests) == 1  # the same conversation reuses the answer
    assert context(mind, "conv_b")
    assert len(site.requests) == 2  # another conversation asks again
    # A template that uses the message asks again when the message changes.
    set_endpoint_changes = ContextEndpoint.objects.get(mind=mind)
    set_endpoint_changes.url_template = site.url("/ctx") + "?q={lastUserMessage}"
    set_endpoint_changes.save()
    context(mind, "conv_a", message="one")
    context(mind, "conv_a", message="one")
    context(mind, "conv_a", message="two")
    assert len(site.requests) == 4


def test_no_cache_when_cache_seconds_is_zero(loopback, mind, site):
    set_endpoint(mind, site.url("/ctx"), cache_seconds=0)
    context(mind)
    context(mind)
    assert len(site.requests) == 2


def test_the_answer_is_capped_at_the_context_share(loopback, mind, site):
    loopback.LLM_CONTEXT_TOKENS = 1000
    loopback.DYNAMIC_CONTEXT_SHARE = 0.15  # 150 tokens: 600 ASCII characters, or 150 others
    site.route("/long", "word " * 2000, content_type="text/plain")
    site.route("/cjk", "漢" * 2000, content_type="text/plain; charset=utf-8")
    set_endpoint(mind, site.url("/long"), cache_seconds=0)
    text = context(mind)
    assert text.endswith(CUT_MARK) and text.startswith("word word")
    assert rough_tokens(text) <= 150 and len(text) > 500
    ContextEndpoint.objects.filter(mind=mind).update(url_template=site.url("/cjk"))
    text = context(mind)
    assert text.endswith(CUT_MARK) and rough_tokens(text) <= 150 and text.count("漢") > 100
    # Short answers are kept whole.
    assert cap_to_tokens("short", 150) == "short"


def test_failures_are_logged_and_skipped(loopback, mind, site, caplog):
    release = threading.Event()
    site.route("/error", handler=lambda request: (500, {"Content-Type": "text/plain"}, b"boom"))
    site.route("/slow", handler=lambda request: (release.wait(10), (200, {}, b"late"))[1])
    set_endpoint(mind, site.url("/error"), cache_seconds=300, headers={"X-Key": "never-logged"})
    with caplog.at_level(logging.WARNING, logger="tools.context"):
        assert context(mind) == ""
        assert any("HTTP 500" in r.getMessage() for r in caplog.records)
        # Failures are not cached: the next turn asks again.
        assert context(mind) == "" and len(site.requests) == 2

        ContextEndpoint.objects.filter(mind=mind).update(url_template=site.url("/slow"), timeout_seconds=0.5)
        assert context(mind) == ""
        release.set()
        assert any("ExchangeTimeout" in r.getMessage() or "Timeout" in r.getMessage() for r in caplog.records)

        from tests.mcpserver import free_port

        ContextEndpoint.objects.filter(mind=mind).update(url_template=f"http://127.0.0.1:{free_port()}/x")
        assert context(mind) == ""
    assert "never-logged" not in caplog.text
    assert "Where is my order" not in caplog.text  # the filled URL (the message) is not logged


def test_private_addresses_are_refused(settings, mind, site):
    settings.SSRF_ALLOW_LOOPBACK = False
    for template in (site.url("/ctx"), "http://10.0.0.7/ctx", "http://169.254.169.254/latest/meta-data/"):
        ContextEndpoint.objects.filter(mind=mind).delete()
        set_endpoint(mind, template)
        assert context(mind) == ""
    assert site.requests == []


def test_a_redirect_to_a_private_address_is_refused(loopback, settings, mind, site):
    site.route("/moved", status=302, headers={"Location": "http://10.0.0.7/ctx"})
    set_endpoint(mind, site.url("/moved"))
    assert context(mind) == ""
    assert [r.path for r in site.requests] == ["/moved"]


def test_a_switched_off_endpoint_is_not_called(loopback, mind, site):
    set_endpoint(mind, site.url("/ctx"), enabled=False)
    assert context(mind) == "" and site.requests == []


# --- The native API -----------------------------------------------------------------------------------------


def endpoint_url(mind) -> str:
    return f"/api/v1/minds/{mind.id}/context-endpoint"


def test_the_api_sets_reads_and_deletes_the_endpoint(api, loopback, mind, site):
    assert api.get(endpoint_url(mind)).json() == {"status": "success", "contextEndpoint": None}
    template = site.url("/ctx") + "?c={conversationId}&q={lastUserMessage}"
    response = api.put(
        endpoint_url(mind),
        {"urlTemplate": template, "headers": {"Authorization": "Bearer ctx-s3cret"}, "cacheSeconds": 60},
    )
    assert response.status_code == 200, response.json()
    shown = response.json()["contextEndpoint"]
    assert shown["urlTemplate"] == template and shown["secretHeaders"] == ["Authorization"]
    assert (shown["cacheSeconds"], shown["timeoutSeconds"], shown["enabled"]) == (60, 3.0, True)
    assert "ctx-s3cret" not in response.content.decode()
    assert "ctx-s3cret" not in api.get(endpoint_url(mind)).content.decode()
    # A PUT without headers keeps the stored ones; {name: null} removes one.
    kept = api.put(endpoint_url(mind), {"urlTemplate": template, "timeoutSeconds": 2})
    assert kept.json()["contextEndpoint"]["secretHeaders"] == ["Authorization"]
    assert context(mind) and site.requests[-1].headers["authorization"] == "Bearer ctx-s3cret"
    removed = api.put(endpoint_url(mind), {"urlTemplate": template, "headers": {"authorization": None}})
    assert removed.json()["contextEndpoint"]["secretHeaders"] == []
    from accounts.models import AuditLog

    assert AuditLog.objects.filter(entity="context_endpoint").count() == 3
    assert "ctx-s3cret" not in str(list(AuditLog.objects.values_list("changes", flat=True)))

    assert api.delete(endpoint_url(mind)).json() == {"status": "success", "deleted": True}
    assert api.delete(endpoint_url(mind)).json() == {"status": "success", "deleted": False}
    assert not ContextEndpoint.objects.filter(mind=mind).exists()


def test_the_api_validates_the_template(api, settings, mind):
    settings.SSRF_ALLOW_LOOPBACK = False
    for template, code in (
        ("https://example.com/ctx?x={secret}", "validation_error"),
        ("https://{userId}.example.com/ctx", "validation_error"),
        ("ftp://example.com/ctx", "url_not_allowed"),
        ("http://127.0.0.1:8000/ctx?c={conversationId}", "url_not_allowed"),
        ("http://10.0.0.1/ctx", "url_not_allowed"),
    ):
        assert_error(api.put(endpoint_url(mind), {"urlTemplate": template}), 400, code)
    assert_error(
        api.put(endpoint_url(mind), {"urlTemplate": "https://example.com/", "timeoutSeconds": 60}),
        400,
        "validation_error",
    )
    assert_error(
        api.put(endpoint_url(mind), {"urlTemplate": "https://example.com/", "headers": {"Bad Name": "x"}}),
        400,
        "validation_error",
    )
    assert not ContextEndpoint.objects.exists()


def test_scopes_and_other_workspaces(api, other_api, loopback, workspace, mind, site):
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get(endpoint_url(mind)).status_code == 200
    assert_error(reader.put(endpoint_url(mind), {"urlTemplate": site.url("/ctx")}), 403, "insufficient_scope")
    assert_error(reader.delete(endpoint_url(mind)), 403, "insufficient_scope")
    assert_error(other_api.put(endpoint_url(mind), {"urlTemplate": site.url("/ctx")}), 404, "not_found")
    assert not ContextEndpoint.objects.exists()


# --- In a chat turn -----------------------------------------------------------------------------------------


def test_a_chat_turn_puts_the_context_in_the_system_prompt(api, loopback, settings, mind, site):
    site.route("/ctx", "The customer is on the GOLD-PLAN-7 tier.", content_type="text/markdown")
    set_endpoint(mind, site.url("/ctx") + "?c={conversationId}&q={lastUserMessage}")
    with FakeLLM("Noted.") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        response = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "What tier am I on?"})
        assert response.status_code == 200, response.json()
        conversation_id = response.json()["conversationId"]
        systems = [
            m["content"]
            for body in fake.requests
            for m in body.get("messages", [])
            if m.get("role") == "system" and "GOLD-PLAN-7" in str(m.get("content"))
        ]
    assert systems, "the context endpoint's answer is in a system prompt"
    query = parse_qs(urlsplit(site.requests[-1].path).query)
    assert query == {"c": [conversation_id], "q": ["What tier am I on?"]}


def test_a_failing_endpoint_does_not_stop_the_chat(api, loopback, settings, mind, site):
    site.route("/ctx", handler=lambda request: (503, {}, b"down"))
    set_endpoint(mind, site.url("/ctx"))
    with FakeLLM("Still answering.") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        response = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Hello?"})
    assert response.status_code == 200, response.json()
    assert "Still answering." in response.json()["message"]["content"]
    assert site.requests  # it was tried
