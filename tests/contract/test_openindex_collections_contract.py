"""Contract: the requests an OpenIndex client sends to /api/collections and /api/collections/search (the collections
reference, reference/seed-apis.md §C.2: create-or-update by `id` with `name, description, image, privacy,
knowledgeBase`; the list; `q, limit, collection_id`), replayed over HTTP against a live server, checking the documented response keys: `{ok, collectionId}`, `{ok, collections: [{id, slug, userId, active,
createdAt, updatedAt, name, description, image, privacy, namespace, sources, status}]}`, `{ok, results: [{snippet,
url, sourceId, source: "web", …}]}` and `{ok: false, error}`.

The sources are processed here, by the worker's tasks run in this process (the end-to-end tests use the real
worker): the session's worker would otherwise start now and take the sources other contract tests expect pending."""

import httpx
import pytest

from knowledge import tasks
from knowledge.models import Source
from tests.fakesite import FakeSite
from tests.helpers import make_key

pytestmark = pytest.mark.django_db(transaction=True)

COLLECTION_KEYS = {
    "id",
    "slug",
    "userId",
    "active",
    "createdAt",
    "updatedAt",
    "name",
    "description",
    "image",
    "privacy",
    "namespace",
    "sources",
    "status",
}
RESULT_KEYS = {"snippet", "url", "sourceId", "source"}

PAGE = (
    "<html><head><title>Kestrel Bay cranes</title></head><body><main><h1>Kestrel Bay cranes</h1>"
    "<p>The harbour crane's hydraulic pump takes the replacement gasket ZX-4471-B, changed every two years by the "
    "night crew.</p><p>See <a href='/tides'>the tide tables</a>.</p></main></body></html>"
)
TIDES = (
    "<html><head><title>Tide tables</title></head><body><main><h1>Tide tables</h1><p>High tide at Kestrel Bay "
    "comes forty minutes after high tide at Port Ellen.</p></main></body></html>"
)


@pytest.fixture
def server(live_server, workspace, settings):
    """An httpx client as an OpenIndex client: `Authorization: Bearer <token>`, JSON bodies."""
    settings.SSRF_ALLOW_LOOPBACK = True  # the live server checks the knowledgeBase URLs of the local site
    with httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {make_key(workspace, scopes='all')}", "Accept": "*/*"},
        timeout=120,
    ) as client:
        yield client


@pytest.fixture(autouse=True)
def nothing_queued(monkeypatch):
    """Sources are processed in-process by process_pending; none is queued, so a worker started by an earlier
    test of the session cannot take one first and race the assertions."""
    monkeypatch.setattr(tasks.source_process, "delay", lambda *args, **kwargs: None)


def process_pending(collection_id: str) -> None:
    """Runs the processing stage of each pending source, the pages a links() page adds included."""
    while pending := list(Source.objects.filter(collection_id=collection_id, status="pending")):
        for source in pending:
            tasks.source_process.apply((source.id,))


def test_collections_create_list_search_and_update_as_documented(server, workspace):
    with FakeSite() as site:
        site.route("/cranes", PAGE, content_type="text/html; charset=utf-8")
        site.route("/tides", TIDES, content_type="text/html")
        created = server.post(
            "/api/collections",
            json={
                "name": "Kestrel Bay",
                "description": "Harbour manuals",
                "image": "https://img.example.com/bay.png",
                "privacy": "public",
                "knowledgeBase": f"links({site.url('/cranes')})",
            },
        )
        assert created.status_code == 200, created.text
        assert created.headers["content-type"].startswith("application/json")
        assert set(created.json()) == {"ok", "collectionId"} and created.json()["ok"] is True
        collection_id = created.json()["collectionId"]

        indexing = server.get("/api/collections").json()["collections"][0]
        assert indexing["status"] == "indexing" and len(indexing["sources"]) == 1
        process_pending(collection_id)
        assert Source.objects.filter(collection_id=collection_id, status="ready").count() == 2

    listed = server.get("/api/collections")
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) == {"ok", "collections"} and body["ok"] is True
    (collection,) = body["collections"]
    assert set(collection) == COLLECTION_KEYS
    assert collection["id"] == collection_id and collection["status"] == "ready"
    assert collection["name"] == "Kestrel Bay" and collection["privacy"] == "public"
    assert (
        collection["description"] == "Harbour manuals"
        and collection["image"] == "https://img.example.com/bay.png"
    )
    assert isinstance(collection["createdAt"], int) and isinstance(collection["updatedAt"], int)
    assert isinstance(collection["slug"], str) and collection["active"] is True
    assert {s["url"] for s in collection["sources"]} == {site.url("/cranes"), site.url("/tides")}

    found = server.get(
        "/api/collections/search",
        params={
            "q": "Which gasket does the harbour crane pump take?",
            "limit": 3,
            "collection_id": collection_id,
        },
    )
    assert found.status_code == 200, found.text
    results = found.json()
    assert set(results) == {"ok", "results"} and results["ok"] is True
    first = results["results"][0]
    assert RESULT_KEYS <= set(first)
    assert (
        first["source"] == "web" and first["url"] == site.url("/cranes") and "ZX-4471-B" in first["snippet"]
    )
    assert first["sourceId"].startswith("src_") and len(results["results"]) <= 3
    assert server.get("/api/collections/search", params={"q": "high tide"}).json()["results"][0][
        "url"
    ] == site.url("/tides")

    updated = server.post("/api/collections", json={"id": collection_id, "name": "Kestrel Bay harbour"})
    assert updated.status_code == 200 and updated.json() == {"ok": True, "collectionId": collection_id}
    assert server.get("/api/collections").json()["collections"][0]["name"] == "Kestrel Bay harbour"

    bad = server.post("/api/collections", json={"name": "Bad", "knowledgeBase": "ftp://files.example.com/x"})
    assert bad.status_code == 400 and set(bad.json()) == {"ok", "error"} and bad.json()["ok"] is False
    anonymous = httpx.get(f"{server.base_url}/api/collections")
    assert anonymous.status_code == 401 and anonymous.json()["ok"] is False and anonymous.json()["error"]
    missing = server.post("/api/collections", json={"id": "col_missing", "name": "X"})
    assert missing.status_code == 404 and missing.json()["ok"] is False
