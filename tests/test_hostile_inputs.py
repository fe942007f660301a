"""Inputs that used to end in a 500, an HTML page or a corrupted connection: each is now a 4xx in the error
envelope and writes nothing."""

import json

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory

from config.api.middleware import csrf_failure
from conversations.models import Conversation, Message
from knowledge.models import Source
from minds.models import Mind
from tests.helpers import assert_error, make_key
from tests.test_public_page import VISITOR, make_mind, post_chat

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def mind(workspace):
    return make_mind(workspace)


def test_nul_in_any_path_id_or_query_is_a_400(api, client, mind):
    paths = [
        "/api/v1/minds/mind%00x",
        f"/api/v1/minds/{mind.id}/knowledge/src%00x",
        f"/api/v1/minds/{mind.id}/knowledge/files/file%00x",
        f"/api/v1/minds/{mind.id}/knowledge/src%00x/reprocess",
        "/api/v1/conversations/conv%00x",
        f"/api/v1/minds/{mind.id}/conversations?startAfter=conv%00x",
        f"/api/v1/minds/{mind.id}/knowledge?status=ready%00",
    ]
    for path in paths:
        assert_error(api.get(path), 400, "malformed_request")
    assert_error(api.delete("/api/v1/api-keys/key%00x"), 400, "malformed_request")
    assert_error(api.post(f"/api/v1/minds/{mind.id}/knowledge/src%00x/reprocess"), 400, "malformed_request")
    public = client.get("/m/keeper/conversation/conv%00x", HTTP_X_MINDS_VISITOR=VISITOR)
    assert_error(public, 400, "malformed_request")


def test_nul_in_the_url_is_refused_in_each_surfaces_own_shape(api, client, workspace, mind):
    key = make_key(workspace)
    typingmind = client.get("/api/v2/users/user%00x", HTTP_X_API_KEY=key)
    assert typingmind.status_code == 400
    assert typingmind.json()["userMessage"] == "The URL contains a NUL character."
    openindex = client.get("/api/agents?id=a%00", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert openindex.status_code == 400
    assert openindex.json() == {"ok": False, "error": "The URL contains a NUL character."}
    # Refused before authentication: no key is looked up for such a URL.
    assert_error(client.get("/api/v1/minds/mind%00x"), 400, "malformed_request")
    # Outside the surfaces' views (here the catch-all of unknown API paths) the refusal is the native envelope.
    assert_error(api.get("/api/v1/nothing%00here"), 400, "malformed_request")


def test_page_and_offset_beyond_any_integer_are_400(api, mind):
    huge = 10**20
    for path in (f"/api/v1/minds?page={huge}", f"/api/v1/minds/{mind.id}/knowledge?page={huge}"):
        assert_error(api.get(path), 400, "validation_error")
    for query in (f"offset={huge}", f"startUnixTime={huge}", f"endUnixTime={huge}"):
        assert_error(api.get(f"/api/v1/chatlogs?{query}"), 400, "validation_error")
    assert api.get("/api/v1/minds?page=1000000").status_code == 200  # the largest page is still answered


def test_json_nested_100000_deep_is_a_400(api, client, mind):
    assert_error(api.post("/api/v1/minds", '{"name": "x", "theme": ' + DEEP + "}"), 400, "malformed_request")
    assert_error(api.post("/api/v1/minds", DEEP), 400, "malformed_request")
    nested_65 = {"name": "x", "bio": json.loads("[" * 64 + "]" * 64)}
    assert_error(api.post("/api/v1/minds", nested_65), 400, "malformed_request")
    public = client.post(
        "/m/keeper/chat", DEEP, content_type="application/json", HTTP_X_MINDS_VISITOR=VISITOR
    )
    assert_error(public, 400, "malformed_request")
    assert Mind.objects.count() == 1 and not Conversation.objects.exists()


def test_a_malformed_ipv6_source_url_is_refused(api, mind):
    for url in ("http://[::1/", "http://[::1]:99999/", "http://[zz::1]/"):
        response = api.post(f"/api/v1/minds/{mind.id}/knowledge", {"type": "url", "url": url})
        assert_error(response, 400, "url_not_allowed")
    assert Source.objects.count() == 1  # only the mind's own indexed source


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost./",
        "http://ip6-localhost/",
        "http://[::1%25lo]/",
        "http://intranet/",
        "http://printer.local/",
    ],
)
def test_local_names_are_refused_when_the_source_is_created(api, mind, url):
    response = api.post(f"/api/v1/minds/{mind.id}/knowledge", {"type": "url", "url": url})
    assert_error(response, 400, "url_not_allowed")
    assert Source.objects.count() == 1


def completion(api, mind, messages):
    return api.post("/api/v1/chat/completions", {"model": mind.slug, "messages": messages})


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": 5}],
        [{"type": "text", "text": {"nested": "object"}}],
        [{"type": "text", "text": None}],
        [{"type": "text"}],
        ["just a string part"],
        [{"text": "no type"}],
        {"type": "text", "text": "an object, not a list"},
        42,
    ],
)
def test_chat_completions_content_parts_of_the_wrong_type_are_400(api, mind, content):
    response = completion(api, mind, [{"role": "user", "content": content}])
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"].startswith("messages")
    assert not Message.objects.exists()


def test_chat_completions_nul_and_oversized_history_are_400(api, mind):
    nul = completion(api, mind, [{"role": "user", "content": [{"type": "text", "text": "hi\x00"}]}])
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "malformed_request"
    big = [{"role": "user", "content": "x" * 1_800_000}, {"role": "user", "content": "And now?"}]
    oversized = completion(api, mind, big)
    assert oversized.status_code == 400 and "32000" in oversized.json()["error"]["message"]
    many = [{"role": "assistant", "content": "y" * 30_000}] * 4 + [{"role": "user", "content": "Sum up?"}]
    total = completion(api, mind, many)
    assert total.status_code == 400 and "100000" in total.json()["error"]["message"]
    unknown_role = completion(api, mind, [{"role": "wizard", "content": "hi"}])
    assert unknown_role.status_code == 400
    assert not Message.objects.exists()
    parts = [{"type": "text", "text": "Who invented "}, {"type": "image_url", "image_url": {"url": "x"}}]
    ok = completion(api, mind, [{"role": "user", "content": [*parts, {"type": "text", "text": "the lens?"}]}])
    assert ok.status_code == 200, ok.json()


def test_a_lone_surrogate_in_a_public_message_is_a_400(client, mind):
    response = post_chat(client, "keeper", {"message": "hello \ud800 there"})
    assert_error(response, 400, "malformed_request")
    assert not Conversation.objects.exists()


def test_unknown_api_paths_answer_404_in_json_even_with_csrf_checks(mind):
    browser_like = Client(enforce_csrf_checks=True)
    for method in ("post", "put", "patch", "delete"):
        for path in ("/api/v1/nothing-here", "/api/v1/minds/", "/api/v3/x"):
            assert_error(getattr(browser_like, method)(path), 404, "not_found")


def test_a_csrf_refusal_on_a_json_path_is_the_envelope():
    factory = RequestFactory()
    refused = csrf_failure(factory.post("/api/v1/anything"))
    assert refused.status_code == 403 and json.loads(refused.content)["code"] == "csrf_failed"
    assert csrf_failure(factory.post("/admin/login/")).headers["Content-Type"].startswith("text/html")


def test_public_chat_answers_json_on_oversized_bodies_and_on_a_crash(mind, settings, monkeypatch):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = Client(raise_request_exception=False)
    big = post_chat(client, "keeper", {"message": "x" * 5000})
    assert_error(big, 413, "payload_too_large")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("public.views.chat_stream", crash)
    crashed = post_chat(client, "keeper", {"message": "hello"})
    body = assert_error(crashed, 500, "internal_error")
    assert "boom" not in json.dumps(body)


def raw_wsgi(method: str, path: str, **headers) -> tuple[str, dict, bytes]:
    """Calls the real WSGI application, as gunicorn does: no test-client clean-up of the response."""
    environ = RequestFactory().generic(method, path, **headers).environ
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(response_headers)

    # As the test client does: the request signals would otherwise close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = WSGIHandler()(environ, start_response)
        body = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], body


def test_head_sends_headers_and_no_body(api, mind):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api.key}"}
    status, headers, body = raw_wsgi("GET", "/api/v1/minds", **auth)
    assert status.startswith("200") and len(body) > 100
    status, head_headers, head_body = raw_wsgi("HEAD", "/api/v1/minds", **auth)
    assert status.startswith("200") and head_body == b""
    assert head_headers["Content-Type"] == headers["Content-Type"]
    for path in ("/m/keeper", "/healthz"):
        assert raw_wsgi("HEAD", path)[2] == b""
