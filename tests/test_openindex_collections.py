"""OpenIndex's collections surface: `GET/POST /api/collections` and `GET /api/collections/search` with the `{ok: …}`
envelope, integer epoch-millisecond timestamps, knowledgeBase lines, OpenIndex's error statuses, scopes, other
workspaces and mind-restricted keys."""

import json
import time

import pytest
from django.test import Client

from accounts.models import AuditLog
from knowledge.models import Collection, Source
from minds.models import Mind
from tests.helpers import KeyedClient, make_key
from tests.test_collection_search import HARBOUR, ready_collection_source
from tests.test_openapi import check
from tests.test_search import VOLCANOES

pytestmark = pytest.mark.django_db

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
SOURCE_KEYS = {
    "id",
    "name",
    "type",
    "source",
    "url",
    "status",
    "chunkCount",
    "error",
    "followLinks",
    "linkedFrom",
    "createdAt",
    "updatedAt",
}
RESULT_KEYS = {
    "snippet",
    "url",
    "sourceId",
    "source",
    "sourceName",
    "score",
    "collectionId",
    "chunkId",
    "page",
    "headingPath",
    "startSeconds",
    "endSeconds",
}


def refused(response, status: int) -> str:
    """OpenIndex's error envelope: exactly `{ok: false, error}` with a readable message."""
    body = response.json()
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"ok", "error"} and body["ok"] is False, body
    assert isinstance(body["error"], str) and body["error"] and "Traceback" not in body["error"]
    return body["error"]


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def harbour(workspace):
    collection = Collection.objects.create(
        workspace=workspace, name="Harbour", slug="harbour", description="Cranes.", privacy="public"
    )
    ready_collection_source(collection, "Harbour manual", HARBOUR)
    return collection


def test_get_collections_has_the_openindex_shape_with_sources_and_status(api, workspace, harbour):
    started = now_ms()
    Collection.objects.create(workspace=workspace, name="Empty", slug="empty")
    failing = Collection.objects.create(workspace=workspace, name="Failing", slug="failing")
    Source.objects.create(
        workspace=workspace,
        collection=failing,
        type="url",
        name="Gone",
        url="https://example.com/gone",
        status="failed",
        error_code="fetch_failed",
        error_message="https://example.com/gone answered HTTP 404.",
    )
    Source.objects.create(
        workspace=workspace,
        collection=harbour,
        type="youtube",
        name="Crane video",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        youtube_video_id="dQw4w9WgXcQ",
        status="transcribing",
    )
    response = api.get("/api/collections")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "collections"} and body["ok"] is True
    by_name = {c["name"]: c for c in body["collections"]}
    assert [c["name"] for c in body["collections"]] == ["Failing", "Empty", "Harbour"]  # newest first
    for collection in body["collections"]:
        assert set(collection) == COLLECTION_KEYS
        assert (
            collection["userId"] == collection["namespace"] == workspace.id and collection["active"] is True
        )
        assert isinstance(collection["createdAt"], int) and isinstance(collection["updatedAt"], int)
        assert started - 60_000 <= collection["createdAt"] <= now_ms()
    assert (by_name["Harbour"]["status"], by_name["Empty"]["status"], by_name["Failing"]["status"]) == (
        "indexing",
        "ready",
        "failed",
    )
    harbour_json = by_name["Harbour"]
    assert harbour_json["slug"] == "harbour" and harbour_json["privacy"] == "public"
    assert harbour_json["description"] == "Cranes." and harbour_json["image"] is None
    sources = {s["name"]: s for s in harbour_json["sources"]}
    assert all(set(s) == SOURCE_KEYS for s in sources.values())
    manual, video = sources["Harbour manual"], sources["Crane video"]
    assert (
        manual["type"] == manual["source"] == "text"
        and manual["status"] == "ready"
        and manual["chunkCount"] >= 1
    )
    assert (
        video["source"] == "youtube"
        and video["url"].endswith("dQw4w9WgXcQ")
        and video["status"] == "transcribing"
    )
    gone = by_name["Failing"]["sources"][0]
    assert gone["source"] == "web" and gone["type"] == "url" and "404" in gone["error"]
    assert gone["followLinks"] is False and gone["linkedFrom"] is None and isinstance(gone["createdAt"], int)
    Source.objects.filter(name="Crane video").update(status="ready")
    assert api.get("/api/collections").json()["collections"][2]["status"] == "ready"


def test_post_creates_a_collection_with_its_knowledge_base(api, workspace):
    knowledge_base = "\n".join(
        [
            "https://docs.example.com/cranes",
            "",
            "   https://youtu.be/dQw4w9WgXcQ   ",
            "links(https://docs.example.com/handbook)",
            "https://docs.example.com/cranes#top",  # the same page again: once
            "https://docs.example.com/handbook",  # the links() page again: still followed, once
        ]
    )
    response = api.post(
        "/api/collections",
        {
            "name": "Kestrel Bay",
            "description": "Harbour knowledge.",
            "image": "https://cdn.example.com/bay.png",
            "privacy": "public",
            "knowledgeBase": knowledge_base,
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"ok", "collectionId"} and body["ok"] is True
    collection = Collection.objects.get(id=body["collectionId"])
    assert (collection.name, collection.slug, collection.privacy) == ("Kestrel Bay", "kestrel-bay", "public")
    assert (
        collection.description == "Harbour knowledge."
        and collection.image == "https://cdn.example.com/bay.png"
    )
    sources = {s.url: s for s in collection.sources.all()}
    assert set(sources) == {
        "https://docs.example.com/cranes",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://docs.example.com/handbook",
    }
    assert sources["https://www.youtube.com/watch?v=dQw4w9WgXcQ"].type == "youtube"
    assert sources["https://docs.example.com/cranes"].type == "url"
    assert sources["https://docs.example.com/handbook"].metadata == {"followLinks": True}
    assert sources["https://docs.example.com/cranes"].metadata == {}
    assert {s.status for s in sources.values()} == {"pending"}
    entries = AuditLog.objects.filter(entity__in=("collection", "source")).values_list("entity", "action")
    assert sorted(entries) == [("collection", "create")] + [("source", "create")] * 3

    listed = api.get("/api/collections").json()["collections"][0]
    assert listed["status"] == "indexing" and len(listed["sources"]) == 3
    assert {s["source"] for s in listed["sources"]} == {"web", "youtube"}


def test_post_with_an_id_updates_only_what_is_given_and_adds_urls(api, harbour):
    before = {s.id for s in harbour.sources.all()}
    first = api.post(
        "/api/collections",
        {
            "id": harbour.id,
            "knowledgeBase": "https://docs.example.com/tides\nhttps://docs.example.com/tides/",
        },
    )
    assert first.json() == {"ok": True, "collectionId": harbour.id}
    harbour.refresh_from_db()
    assert (harbour.name, harbour.description, harbour.privacy) == ("Harbour", "Cranes.", "public")
    assert harbour.sources.count() == 2
    # An update is additive: a URL already there is skipped, nothing is removed; read-only fields sent back from
    # a GET are ignored.
    sent_back = api.get("/api/collections").json()["collections"][0]
    second = api.post(
        "/api/collections",
        {
            **sent_back,
            "name": "Harbour handbook",
            "privacy": "private",
            "description": None,
            "knowledgeBase": "https://docs.example.com/tides?utm_source=x\nhttps://docs.example.com/fog",
        },
    )
    assert second.json() == {"ok": True, "collectionId": harbour.id}, second.json()
    harbour.refresh_from_db()
    assert (harbour.name, harbour.description, harbour.privacy) == ("Harbour handbook", "Cranes.", "private")
    urls = set(harbour.sources.exclude(id__in=before).values_list("url", flat=True))
    assert urls == {"https://docs.example.com/tides", "https://docs.example.com/fog"}
    assert api.post("/api/collections", {"id": "harbour", "description": "By slug."}).status_code == 200
    harbour.refresh_from_db()
    assert harbour.description == "By slug."
    assert (
        "not found" in refused(api.post("/api/collections", {"id": "col_missing", "name": "X"}), 404).lower()
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("ftp://files.example.com/manual.pdf", "http"),
        ("docs.example.com/cranes", "http"),
        ("http://127.0.0.1:8000/admin", "loopback"),
        ("links(http://169.254.169.254/latest/meta-data/)", "link-local"),
        ("http://crew:secret@docs.example.com/", "credentials"),
    ],
)
def test_a_bad_knowledge_base_line_is_a_400_naming_it_and_nothing_is_written(api, harbour, line, why):
    knowledge_base = f"https://docs.example.com/ok\n\n{line}\nhttps://docs.example.com/also-ok"
    error = refused(api.post("/api/collections", {"name": "New", "knowledgeBase": knowledge_base}), 400)
    assert "line 3" in error and line[:20] in error and why in error.lower()
    assert list(Collection.objects.values_list("id", flat=True)) == [harbour.id]
    update = api.post(
        "/api/collections", {"id": harbour.id, "name": "Renamed", "knowledgeBase": knowledge_base}
    )
    assert "line 3" in refused(update, 400)
    harbour.refresh_from_db()
    assert harbour.name == "Harbour" and harbour.sources.count() == 1


def test_input_errors_use_openindex_wording(api, harbour):
    assert refused(api.post("/api/collections", {"description": "No name."}), 400) == "invalid name"
    assert refused(api.post("/api/collections", {"name": "   "}), 400).startswith("invalid name")
    assert refused(api.post("/api/collections", {"name": "X", "privacy": "secret"}), 400).startswith(
        "invalid privacy"
    )
    assert refused(api.post("/api/collections", {"name": "X", "image": "javascript:1"}), 400).startswith(
        "invalid image"
    )
    assert refused(api.post("/api/collections", {"name": "X", "colour": "red"}), 400).startswith(
        "invalid colour"
    )
    assert refused(api.post("/api/collections", ["not", "an", "object"]), 400).startswith("invalid request")
    malformed = api.post("/api/collections", "{not json", content_type="application/json")
    refused(malformed, 400)
    assert Collection.objects.count() == 1


def test_the_sources_allowance_is_a_403_and_nothing_is_written(api, workspace, harbour):
    workspace.sources_limit = 2
    workspace.save()
    urls = "\n".join(f"https://docs.example.com/page-{i}" for i in range(3))
    assert "limit" in refused(api.post("/api/collections", {"name": "Big", "knowledgeBase": urls}), 403)
    assert Collection.objects.count() == 1 and Source.objects.count() == 1
    workspace.sources_limit = None
    workspace.source_limit_per_mind = 2
    workspace.save()
    refused(api.post("/api/collections", {"id": harbour.id, "knowledgeBase": urls}), 403)
    assert harbour.sources.count() == 1


def test_keys_scopes_and_other_workspaces(workspace, other_api, harbour):
    assert refused(Client().get("/api/collections"), 401)
    assert refused(KeyedClient("tr_live_" + "x" * 32).get("/api/collections"), 401)
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get("/api/collections").json()["ok"] is True
    assert "minds:write" in refused(reader.post("/api/collections", {"name": "No"}), 403)
    assert "knowledge:search" in refused(reader.get("/api/collections/search", {"q": "crane"}), 403)
    assert other_api.get("/api/collections").json() == {"ok": True, "collections": []}
    refused(other_api.post("/api/collections", {"id": harbour.id, "name": "Mine"}), 404)
    refused(other_api.get("/api/collections/search", {"q": "crane", "collection_id": harbour.id}), 404)
    assert other_api.get("/api/collections/search", {"q": "harbour crane gasket"}).json() == {
        "ok": True,
        "results": [],
    }
    harbour.refresh_from_db()
    assert harbour.name == "Harbour" and Collection.objects.count() == 1


def test_a_mind_restricted_key_sees_and_updates_only_collections_of_its_minds(workspace, harbour):
    mind = Mind.objects.create(workspace=workspace, name="Own", slug="own-openindex")
    volcanoes = Collection.objects.create(workspace=workspace, name="Volcanoes", slug="volcanoes")
    ready_collection_source(volcanoes, "Volcano notes", VOLCANOES)
    harbour.minds.add(mind)
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[mind.id]))
    assert [c["id"] for c in restricted.get("/api/collections").json()["collections"]] == [harbour.id]
    assert "restricted" in refused(restricted.post("/api/collections", {"name": "Mine"}), 403)
    refused(restricted.post("/api/collections", {"id": volcanoes.id, "name": "Mine"}), 404)
    assert (
        restricted.post("/api/collections", {"id": harbour.id, "description": "Ours."}).json()["ok"] is True
    )
    results = restricted.get("/api/collections/search", {"q": "lava flows and volcano eruptions"}).json()[
        "results"
    ]
    assert all(r["collectionId"] == harbour.id for r in results)
    refused(restricted.get("/api/collections/search", {"q": "lava", "collection_id": volcanoes.id}), 404)
    assert Collection.objects.count() == 2


def test_search_returns_openindex_results_over_reachable_collections(api, workspace, harbour):
    volcanoes = Collection.objects.create(workspace=workspace, name="Volcanoes", slug="volcanoes")
    ready_collection_source(volcanoes, "Volcano notes", VOLCANOES)
    page = Source.objects.create(
        workspace=workspace,
        collection=harbour,
        type="url",
        name="Crane page",
        url="https://docs.example.com/c",
    )
    Source.objects.filter(id=page.id).update(status="ready")
    response = api.get("/api/collections/search", {"q": "gasket for the harbour crane's hydraulic pump"})
    body = response.json()
    assert set(body) == {"ok", "results"} and body["ok"] is True
    first = body["results"][0]
    assert set(first) == RESULT_KEYS
    assert first["sourceName"] == "Harbour manual" and "ZX-4471-B" in first["snippet"]
    assert first["collectionId"] == harbour.id and first["source"] == "text" and first["url"] is None
    assert first["chunkId"].startswith("chk_") and 0 < first["score"] <= 1
    everywhere = api.get("/api/collections/search", {"q": "volcano eruptions and lava", "limit": 20}).json()
    assert {r["collectionId"] for r in everywhere["results"]} >= {volcanoes.id}
    one = api.get("/api/collections/search", {"q": "volcano eruptions", "collection_id": harbour.id}).json()
    assert all(r["collectionId"] == harbour.id for r in one["results"])
    by_slug = api.get(
        "/api/collections/search", {"q": "lava", "collection_id": "volcanoes", "limit": 1}
    ).json()
    assert len(by_slug["results"]) == 1 and by_slug["results"][0]["collectionId"] == volcanoes.id
    assert (
        api.get("/api/collections/search", {"q": "banana bread recipe with walnuts"}).json()["results"] == []
    )
    assert refused(api.get("/api/collections/search"), 400).startswith("invalid q")
    assert refused(api.get("/api/collections/search", {"q": "x", "limit": 0}), 400).startswith(
        "invalid limit"
    )
    assert refused(api.get("/api/collections/search", {"q": "x", "limit": 21}), 400).startswith(
        "invalid limit"
    )
    refused(api.get("/api/collections/search", {"q": "x", "collection_id": "col_missing"}), 404)


@pytest.fixture(scope="module")
def document(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_openindex_collection_responses_match_the_openapi_document(document, api, harbour):
    check(document, api.get("/api/collections"), "/api/collections", "get")
    check(document, api.post("/api/collections", {"name": "Schema"}), "/api/collections", "post")
    check(document, api.post("/api/collections", {"name": "Bad", "privacy": "x"}), "/api/collections", "post")
    check(document, api.get("/api/collections/search", {"q": "crane"}), "/api/collections/search", "get")
    check(document, api.get("/api/collections/search"), "/api/collections/search", "get")
