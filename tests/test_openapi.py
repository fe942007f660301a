"""The OpenAPI document is valid, lists every endpoint, and real responses match what it documents."""

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from minds.models import Mind
from tests.corpus_minds import ready_source

pytestmark = pytest.mark.django_db

EXPECTED_PATHS = {
    "/api/v1/auth/verify",
    "/api/v1/api-keys",
    "/api/v1/api-keys/{key_id}",
    "/api/v1/minds",
    "/api/v1/minds/{mind_id}",
    "/api/v1/minds/{mind_id}/publish",
    "/api/v1/minds/{mind_id}/knowledge",
    "/api/v1/minds/{mind_id}/knowledge/upload",
    "/api/v1/minds/{mind_id}/knowledge/{source_id}",
    "/api/v1/minds/{mind_id}/knowledge/{source_id}/reprocess",
    "/api/v1/minds/{mind_id}/search",
    "/api/v1/minds/{mind_id}/chat",
    "/api/v1/minds/{mind_id}/conversations",
    "/api/v1/minds/{mind_id}/insights",
    "/api/v1/minds/{mind_id}/insights/visitors.csv",
    "/api/v1/conversations/{conversation_id}",
    "/api/v1/chatlogs",
    "/api/v1/chat/completions",
    "/api/v1/models",
}


@pytest.fixture(scope="module")
def document(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_document_is_valid_openapi_with_every_endpoint(document):
    validate(document)
    assert EXPECTED_PATHS <= set(document["paths"])
    assert document["components"]["securitySchemes"]


def test_docs_page_is_served_without_a_cdn(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger" in html.lower() and "cdn." not in html and "unpkg" not in html


def check(document, response, path: str, method: str):
    """Validates the response body against the schema the document gives for this path, method and status."""
    operation = document["paths"][path][method]
    spec = operation["responses"][str(response.status_code)]
    schema = next(iter(spec["content"].values()))["schema"]
    registry = Registry().with_resource(
        "urn:doc",
        Resource.from_contents({**document, "$schema": "https://json-schema.org/draft/2020-12/schema"}),
    )
    rooted = {"$ref": "urn:doc#" + schema["$ref"][1:]} if "$ref" in schema else schema
    validator = Draft202012Validator(rooted, registry=registry)
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_real_responses_match_the_document(document, api, workspace):
    created = api.post("/api/v1/minds", {"name": "Schema", "theme": {"mode": "dark"}})
    check(document, created, "/api/v1/minds", "post")
    mind_id = created.json()["mind"]["id"]
    check(document, api.get("/api/v1/minds"), "/api/v1/minds", "get")
    check(document, api.get(f"/api/v1/minds/{mind_id}"), "/api/v1/minds/{mind_id}", "get")
    check(
        document, api.post(f"/api/v1/minds/{mind_id}/publish", {}), "/api/v1/minds/{mind_id}/publish", "post"
    )
    check(document, api.get("/api/v1/auth/verify"), "/api/v1/auth/verify", "get")
    check(document, api.get("/api/v1/api-keys"), "/api/v1/api-keys", "get")
    check(
        document,
        api.post("/api/v1/api-keys", {"name": "k", "scopes": ["minds:read"]}),
        "/api/v1/api-keys",
        "post",
    )
    source = api.post(
        f"/api/v1/minds/{mind_id}/knowledge", {"type": "text", "content": "Schemas tell the truth."}
    )
    check(document, source, "/api/v1/minds/{mind_id}/knowledge", "post")
    check(document, api.get(f"/api/v1/minds/{mind_id}/knowledge"), "/api/v1/minds/{mind_id}/knowledge", "get")
    mind = Mind.objects.get(id=mind_id)
    ready_source(mind, "Facts", ["The Fresnel lens was invented in 1822 for lighthouses."])
    check(
        document,
        api.post(f"/api/v1/minds/{mind_id}/search", {"query": "Fresnel lens", "threshold": 0}),
        "/api/v1/minds/{mind_id}/search",
        "post",
    )
    chat = api.post(f"/api/v1/minds/{mind_id}/chat", {"message": "When was the Fresnel lens invented?"})
    check(document, chat, "/api/v1/minds/{mind_id}/chat", "post")
    check(
        document,
        api.get(f"/api/v1/minds/{mind_id}/conversations"),
        "/api/v1/minds/{mind_id}/conversations",
        "get",
    )
    conversation_id = chat.json()["conversationId"]
    check(
        document,
        api.get(f"/api/v1/conversations/{conversation_id}"),
        "/api/v1/conversations/{conversation_id}",
        "get",
    )
    # Errors match the documented envelope too.
    check(document, api.get("/api/v1/minds/mind_missing"), "/api/v1/minds/{mind_id}", "get")
    check(document, api.post("/api/v1/minds", {"name": ""}), "/api/v1/minds", "post")


def test_errors_from_around_the_views_are_documented_on_every_operation(document):
    """503 (database gone) in each surface's shape, 411/413 (request guard) on every body; OpenIndex documents its
    catch-all 500 instead of a 503, which is what it answers."""
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "401" not in responses:
                continue
            checked += 1
            if "500" in responses:
                assert not path.startswith(("/api/v1/", "/api/v2/")), (path, method)  # OpenIndex's routes
            else:
                assert responses["503"]["content"] == responses["401"]["content"], (path, method)
                assert "Retry-After" in responses["503"]["headers"]
            if "requestBody" in operation:
                assert {"411", "413"} <= responses.keys(), (path, method)
    assert checked > 80
