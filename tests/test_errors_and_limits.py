"""One error envelope for every failure, rate limits with their headers, health endpoints."""

import uuid

import pytest
from django.db import connection

from config.ratelimit import window_hit
from config.redis import redis_client
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db


def test_envelope_for_routes_methods_bodies_and_types(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(api.get("/api/v2/whatever"), 404, "not_found")
    put = api.put(
        "/api/v1/minds", "{}", content_type="application/json", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert_error(put, 405, "method_not_allowed")
    assert_error(
        api.post("/api/v1/minds", "{not json", content_type="application/json"), 400, "malformed_request"
    )
    assert_error(
        api.post("/api/v1/minds", "name=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    assert_error(
        api.post("/api/v1/minds", "[1, 2]", content_type="application/json"), 400, "validation_error"
    )
    assert_error(api.post("/api/v1/minds", {"name": "x", "unknown": 1}), 400, "validation_error")


def test_oversized_body_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert_error(api.post("/api/v1/minds", {"name": "x", "bio": "y" * 5000}), 413, "payload_too_large")


def test_rate_limit_headers_everywhere_and_429(workspace, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3
    for _attempt in range(2):  # the one-minute window may roll over mid-test
        client = KeyedClient(make_key(workspace, scopes=["minds:read"]))
        responses = [client.get("/api/v1/minds") for _ in range(4)]
        if responses[0]["X-RateLimit-Reset"] == responses[-1]["X-RateLimit-Reset"]:
            break
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r["X-RateLimit-Limit"] == "3" and r["X-RateLimit-Reset"].endswith("Z") for r in responses)
    limited = assert_error(responses[-1], 429, "rate_limited")
    assert limited and 1 <= int(responses[-1]["Retry-After"]) <= 60
    # Errors carry the headers too, and the count is per key.
    assert client.get("/api/v1/minds/mind_nope")["X-RateLimit-Limit"] == "3"
    assert KeyedClient(make_key(workspace, scopes=["minds:read"])).get("/api/v1/minds").status_code == 200


def test_window_counter_counts_windows_of_any_length_apart_and_expires_with_them():
    for _attempt in range(2):  # the day's window may roll over mid-test
        bucket = f"test:window:{uuid.uuid4().hex}"
        day = [window_hit(bucket, limit=2, window_seconds=86_400) for _ in range(3)]
        if day[0].reset_at == day[-1].reset_at:
            break
    assert [(c.count, c.remaining, c.exceeded) for c in day] == [(1, 1, False), (2, 0, False), (3, 0, True)]
    assert day[-1].reset_at % 86_400 == 0 and 1 <= day[-1].retry_after <= 86_400
    minute = window_hit(bucket, limit=2, window_seconds=60)
    assert minute.count == 1 and minute.reset_at % 60 == 0 and 1 <= minute.retry_after <= 60
    ttl = redis_client().ttl(f"ratelimit:{bucket}:86400:{day[-1].reset_at - 86_400}")
    assert day[-1].retry_after <= ttl <= 86_400 + 5


def test_healthz_and_readyz(client, settings):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()


def test_readyz_names_what_is_down(client, settings):
    from config.redis import redis_client

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    redis_client.cache_clear()
    try:
        response = client.get("/readyz")
    finally:
        redis_client.cache_clear()
    assert response.status_code == 503
    assert "redis" in str(response.json()).lower()
    assert connection.is_usable()
