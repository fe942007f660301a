"""The document's security section says what the server does: either key header alone is enough, and the
document itself is public."""

import json

import pytest

from tests.helpers import KeyedClient, make_key

pytestmark = pytest.mark.django_db

EITHER_HEADER = [{"bearerAuth": []}, {"apiKeyHeader": []}]


@pytest.fixture
def document(anon):
    response = anon.get("/api/v1/openapi.json")
    # Served without a key: an anonymous client must be able to read how to authenticate.
    assert response.status_code == 200
    return json.loads(response.content)


def test_every_operation_accepts_either_key_header_as_an_alternative(document):
    wrong = {
        f"{method.upper()} {path}": operation.get("security")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") != EITHER_HEADER
    }
    assert not wrong, wrong
    assert "security" not in document  # no global requirement that would add to the operations' own


def test_the_two_schemes_are_defined_as_the_server_reads_them(document):
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"bearerAuth", "apiKeyHeader"}
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {
        **schemes["apiKeyHeader"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-KEY",
    }


def test_the_public_document_and_pages_are_not_operations(document):
    assert "/api/v1/openapi.json" not in document["paths"]
    assert not [path for path in document["paths"] if path.startswith("/m/")]


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_each_header_alone_authenticates(workspace, header):
    key = make_key(workspace, scopes="all")
    client = KeyedClient(None)
    headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-KEY": key}
    response = client.get("/api/v1/auth/verify", headers=headers)
    assert response.status_code == 200, response.content


def test_neither_header_is_401(anon):
    response = anon.get("/api/v1/auth/verify")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_api_key"
