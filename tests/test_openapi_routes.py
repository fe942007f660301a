"""Every route under /api/ — native, TypingMind, OpenIndex and Trigglio surfaces — is in the OpenAPI document,
with every method its view answers. A new route without a documented operation fails here."""

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Served by the document itself, or answering only 404 for unknown paths.
UNDOCUMENTED = {"/api/v1/openapi.json", "/api/docs"}
METHODS = ("get", "post", "put", "patch", "delete")


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _openapi_path(route: str) -> str | None:
    if route.startswith("^"):  # the regex catch-all of unknown /api/ paths
        return None
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _api_routes():
    for route, callback in _routes(get_resolver().url_patterns):
        path = _openapi_path(route)
        if path and path.startswith("/api/") and path not in UNDOCUMENTED:
            yield path, callback


def test_every_api_route_and_method_is_documented(client):
    document = json.loads(client.get("/api/v1/openapi.json").content)
    missing = []
    for path, callback in _api_routes():
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        assert view is not None, f"{path} is not served by an API view"
        operations = document["paths"].get(path, {})
        for method in METHODS:
            if hasattr(view, method) and method not in operations:
                missing.append(f"{method.upper()} {path}")
    assert not missing, "undocumented operations: " + ", ".join(sorted(missing))


def test_the_route_walk_sees_the_compatibility_surfaces():
    paths = {path for path, _ in _api_routes()}
    # The walk itself must reach every surface's URL module, or the test above would prove nothing.
    assert {
        "/api/v1/minds/{mind_id}",
        "/api/v1/members/{member_id}",
        "/api/v1/collections/{collection_id}/search",
        "/api/v1/chat/completions",
        "/api/v1/users/{user_id}",
        "/api/v1/ai-characters",
        "/api/v2/agents/{agent_id}/chat",
        "/api/v2/audit-logs",
        "/api/agents",
        "/api/chat",
        "/api/collections/search",
        "/api/v1/chatbots/{mind_id}/search",
        "/api/integrations/webhooks/auth/verify",
    } <= paths


def test_the_document_has_no_colliding_component_names():
    """drf-spectacular warns (and emits a wrong schema) when two serializers share a component name."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    problems = {**GENERATOR_STATS._warn_cache, **GENERATOR_STATS._error_cache}
    assert not problems, sorted(problems)
