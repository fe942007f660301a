"""The API's edge, probed as a careless client or a scanner would: requests with bad keys are throttled per client
address before they can hammer the API (in every surface's error shape), without slowing a valid key; and a chunked
request body is either read, within the size limits, or refused with 411 — never taken for an empty body."""

import io
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key, make_workspace, wait_for

pytestmark = pytest.mark.django_db

BAD_KEY = "tr_live_" + "x" * 32


@pytest.fixture
def _whole_window_ahead():
    """Counts are per minute, aligned to the clock: start with at least 15 s of the window left, so the window
    cannot turn over between a test's requests (40 requests take a few seconds even on a busy machine)."""
    wait_for(lambda: time.time() % 60 < 45, timeout=20, interval=0.5, what="the start of a rate-limit window")


def _client(key: str | None, address: str, **defaults) -> KeyedClient:
    return KeyedClient(key, REMOTE_ADDR=address, **defaults)


def _assert_budget_headers(response, *, limit: int, remaining: int) -> None:
    assert response["X-RateLimit-Limit"] == str(limit)
    assert response["X-RateLimit-Remaining"] == str(remaining)
    reset = datetime.fromisoformat(response["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert 0 < (reset - datetime.now(UTC)).total_seconds() <= 61


@pytest.mark.usefixtures("_whole_window_ahead")
def test_forty_bad_keys_from_one_address_get_429_after_the_budget(settings, api):
    settings.AUTH_FAILURES_PER_MINUTE = 30
    scanner = _client(BAD_KEY, "198.51.100.10")
    responses = [scanner.get("/api/v1/minds") for _ in range(40)]

    assert [r.status_code for r in responses] == [401] * 30 + [429] * 10
    for response in responses[:30]:
        assert_error(response, 401, "invalid_api_key")
    _assert_budget_headers(responses[0], limit=30, remaining=29)
    for response in responses[30:]:
        assert_error(response, 429, "rate_limited")
        _assert_budget_headers(response, limit=30, remaining=0)
        assert 1 <= int(response["Retry-After"]) <= 60

    # A valid key from the same address is not held back by the failures (an office behind one NAT) ...
    colleague = _client(api.key, "198.51.100.10")
    answered = colleague.get("/api/v1/minds")
    assert answered.status_code == 200
    assert answered["X-RateLimit-Limit"] == str(settings.RATE_LIMIT_PER_MINUTE)  # its own per-key budget
    # ... and another address has its own budget.
    assert_error(_client(BAD_KEY, "198.51.100.11").get("/api/v1/minds"), 401, "invalid_api_key")


@pytest.mark.usefixtures("_whole_window_ahead")
def test_missing_and_malformed_keys_count_as_failures(settings):
    settings.AUTH_FAILURES_PER_MINUTE = 3
    address = "198.51.100.20"
    assert_error(_client(None, address).get("/api/v1/minds"), 401, "missing_api_key")
    assert_error(_client("not-a-key", address).get("/api/v1/minds"), 401, "invalid_api_key")
    assert_error(_client(BAD_KEY, address).post("/api/v1/minds", {"name": "x"}), 401, "invalid_api_key")
    assert_error(_client(None, address).get("/api/v1/minds"), 429, "rate_limited")


@pytest.mark.usefixtures("_whole_window_ahead")
def test_the_throttle_speaks_each_surfaces_error_shape(settings):
    settings.AUTH_FAILURES_PER_MINUTE = 2
    cases = [
        # (path, the 401 body's check, the refusal's status, the refusal's body check)
        (
            "/api/v1/models",
            lambda body: body["error"]["code"] == "invalid_api_key",
            429,
            lambda body: (
                body["error"]["code"] == "rate_limited" and body["error"]["type"] == "rate_limit_error"
            ),
        ),
        (
            "/api/v1/ai-characters",
            lambda body: set(body) == {"userMessage"},
            429,
            lambda body: set(body) == {"userMessage"} and "Too many" in body["userMessage"],
        ),
        # OpenIndex has no 429: an exhausted allowance is its 403, with the same headers.
        (
            "/api/agents",
            lambda body: body["ok"] is False and body["error"],
            403,
            lambda body: body["ok"] is False and "Too many" in body["error"],
        ),
    ]
    for number, (path, is_unauthorized, refused_status, is_refusal) in enumerate(cases):
        client = _client(BAD_KEY, f"198.51.100.{30 + number}")
        for _ in range(2):
            unauthorized = client.get(path)
            assert unauthorized.status_code == 401 and is_unauthorized(unauthorized.json()), path
        refused = client.get(path)
        assert refused.status_code == refused_status and is_refusal(refused.json()), (path, refused.json())
        _assert_budget_headers(refused, limit=2, remaining=0)
        assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.usefixtures("_whole_window_ahead")
def test_forwarded_for_counts_only_behind_a_declared_proxy(settings):
    settings.AUTH_FAILURES_PER_MINUTE = 1
    proxy = "198.51.100.40"
    # Without USE_X_FORWARDED_FOR the header is the client's own claim: both requests count against the socket.
    _client(BAD_KEY, proxy, HTTP_X_FORWARDED_FOR="203.0.113.1").get("/api/v1/minds")
    forged = _client(BAD_KEY, proxy, HTTP_X_FORWARDED_FOR="203.0.113.2").get("/api/v1/minds")
    assert_error(forged, 429, "rate_limited")

    settings.USE_X_FORWARDED_FOR = True
    # Behind the proxy, its appended (last) entry is the client; an entry the client put first changes nothing.
    first = _client(BAD_KEY, proxy, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.3")
    assert_error(first.get("/api/v1/minds"), 401, "invalid_api_key")
    assert_error(first.get("/api/v1/minds"), 429, "rate_limited")
    spoofing = _client(BAD_KEY, proxy, HTTP_X_FORWARDED_FOR="10.9.9.8, 203.0.113.3")
    assert_error(spoofing.get("/api/v1/minds"), 429, "rate_limited")
    other = _client(BAD_KEY, proxy, HTTP_X_FORWARDED_FOR="203.0.113.4")
    assert_error(other.get("/api/v1/minds"), 401, "invalid_api_key")


def _chunked(body: bytes, size: int = 7) -> bytes:
    """`body` in the chunked transfer coding, in chunks of `size` bytes."""
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def _raw_post(url: str, path: str, head: dict[str, str], payload: bytes) -> tuple[int, dict]:
    """One HTTP/1.1 request on a plain socket, as a client streaming its body would send it."""
    where = urlsplit(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in head.items()]
    with socket.create_connection((where.hostname, where.port), timeout=60) as conn:
        conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + payload)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_post_to_a_server_that_cannot_read_it_gets_411(live_server):
    # Django's own server (runserver, live_server) hands the application the raw chunked stream, undecoded: read
    # as an empty body, this would be a 400 "name required" at best, or a change made from nothing.
    key = make_key(make_workspace("Chunked"))
    status, body = _raw_post(
        live_server.url,
        "/api/v1/minds",
        {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        _chunked(json.dumps({"name": "Streamed"}).encode()),
    )
    assert status == 411 and body["status"] == "error" and body["code"] == "length_required", body
    assert not Mind.objects.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serves(url: str) -> bool:
    """A worker answers, not only the master's listening socket: on a busy machine a gunicorn worker takes a
    while to import the application after the port opens."""
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def gunicorn_server(settings):
    """The production server (config/gunicorn.conf.py) on the test database, on a free loopback port."""
    database = settings.DATABASES["default"]
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "MINDS_DEV_RUN": "1",
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "2",
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py"]
    process = subprocess.Popen(
        [*command, "-b", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _serves(url), timeout=120, what="gunicorn to serve")
        assert process.poll() is None, "gunicorn exited"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_post_through_gunicorn_is_read_within_the_limits(gunicorn_server):
    key = make_key(make_workspace("Chunked"))
    head = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    status, body = _raw_post(gunicorn_server, "/api/v1/minds", head, _chunked(b'{"name": "Streamed"}'))
    assert status == 201, body
    assert Mind.objects.get(id=body["mind"]["id"]).name == "Streamed"
    # (The size limit on a decoded chunked body is checked in-process below: over a socket, the server's close
    # with the rest of the body unread may reset the connection before the client reads the 413.)


def _as_gunicorn(method: str, path: str, body: bytes, content_type: str, **headers) -> tuple[int, dict]:
    """Calls the real WSGI application with the environ gunicorn gives it for a chunked request: no CONTENT_LENGTH,
    the decoded body in wsgi.input, and `wsgi.input_terminated`."""
    environ = RequestFactory().generic(method, path, **headers).environ
    environ.pop("CONTENT_LENGTH", None)
    environ["CONTENT_TYPE"] = content_type
    environ.update(
        {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}
    )
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])

    # As the test client does: the request signals would otherwise close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = WSGIHandler()(environ, start_response)
        content = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], json.loads(content)


def test_a_chunked_body_decoded_by_the_server_is_read(api):
    status, body = _as_gunicorn(
        "POST",
        "/api/v1/minds",
        json.dumps({"name": "Streamed", "slug": "streamed-mind"}).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
    )
    assert status == 201, body
    assert Mind.objects.get(id=body["mind"]["id"]).slug == "streamed-mind"


def test_a_chunked_body_over_the_limit_gets_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    status, body = _as_gunicorn(
        "POST",
        "/api/v1/minds",
        json.dumps({"name": "x" * 2000}).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
    )
    assert (status, body["code"], body["details"]) == (413, "payload_too_large", {"maxBytes": 1000})
    assert not Mind.objects.exists()
