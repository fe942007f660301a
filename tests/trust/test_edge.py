"""The API's edge, probed as a careless client or a scanner would: requests with bad keys are throttled per client
address before they can hammer the API (in every surface's error shape), without slowing a valid key."""

import time
from datetime import UTC, datetime

import pytest

from tests.helpers import KeyedClient, assert_error, wait_for

pytestmark = pytest.mark.django_db

BAD_KEY = "tr_live_" + "x" * 32


@pytest.fixture(autouse=True)
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


def test_missing_and_malformed_keys_count_as_failures(settings):
    settings.AUTH_FAILURES_PER_MINUTE = 3
    address = "198.51.100.20"
    assert_error(_client(None, address).get("/api/v1/minds"), 401, "missing_api_key")
    assert_error(_client("not-a-key", address).get("/api/v1/minds"), 401, "invalid_api_key")
    assert_error(_client(BAD_KEY, address).post("/api/v1/minds", {"name": "x"}), 401, "invalid_api_key")
    assert_error(_client(None, address).get("/api/v1/minds"), 429, "rate_limited")


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
