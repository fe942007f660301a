"""Search modes, threshold semantics, limits, isolation between minds and workspaces, exact and index vector
search, the search rate limit."""

import numpy as np
import pytest
from django.db import connection

from knowledge import search as search_module
from knowledge.embeddings import get_embedder
from knowledge.extractors.base import Segment
from knowledge.models import Chunk
from knowledge.search import search_chunks
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db

LIGHTHOUSES = [
    "The Fresnel lens, invented by the French physicist Augustin-Jean Fresnel in 1822, let lighthouses project "
    "their beams over twenty miles by folding a large lens into concentric rings of glass prisms.",
    "Lighthouse keepers trimmed wicks and wound the clockwork that turned the lens every night until automation "
    "arrived in the twentieth century.",
]
VOLCANOES = [
    "Mount Etna on Sicily is one of the most active volcanoes in the world; its eruptions have been recorded "
    "since 1500 BC and it stands about 3,357 metres tall.",
    "Basaltic lava flows slowly downhill, while explosive eruptions throw out ash and pumice when gas-rich "
    "magma fragments in the vent.",
]
CODES = [
    "Internal part number ZX-4471-B identifies the replacement gasket for the harbour crane's hydraulic pump."
]


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-search")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    ready_source(mind, "Parts list", CODES)
    return mind


def search(api, mind, **body):
    return api.post(f"/api/v1/minds/{mind.id}/search", body)


@pytest.mark.parametrize("mode", ["vector", "hybrid", "smart"])
def test_each_mode_finds_the_right_source_first(api, mind, mode):
    response = search(
        api, mind, query="Who invented the lens that lets lighthouse beams reach far?", mode=mode
    )
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert results and results[0]["sourceName"] == "Lighthouses"
    assert results == sorted(results, key=lambda r: -r["score"])
    assert all(0 <= r["score"] <= 1 for r in results)
    first = results[0]
    assert set(first) == {"id", "content", "score", "sourceId", "sourceName", "metadata"}
    assert first["id"].startswith("chk_") and "Fresnel" in first["content"]


def test_hybrid_lifts_exact_terms_the_vector_side_misses(api, mind):
    hybrid = search(api, mind, query="ZX-4471-B", mode="hybrid", threshold=0).json()["results"]
    assert hybrid[0]["sourceName"] == "Parts list"
    assert hybrid[0]["metadata"]["textScore"] == 1.0


def test_threshold_filters_on_the_returned_score(api, mind):
    everything = search(api, mind, query="volcano eruptions", threshold=0, limit=20).json()["results"]
    assert len(everything) >= 3
    cut = (everything[0]["score"] + everything[-1]["score"]) / 2
    filtered = search(api, mind, query="volcano eruptions", threshold=cut, limit=20).json()["results"]
    assert 0 < len(filtered) < len(everything)
    assert all(r["score"] >= cut for r in filtered)
    # A question nothing in the mind is about returns nothing at the default threshold.
    assert search(api, mind, query="best recipe for banana bread with walnuts").json()["results"] == []


def test_limit_and_validation(api, mind):
    assert len(search(api, mind, query="lens lava gasket", threshold=0, limit=2).json()["results"]) == 2
    assert_error(search(api, mind, query=""), 400, "validation_error")
    assert_error(search(api, mind, query="x" * 1001), 400, "validation_error")
    assert_error(search(api, mind, query="x", limit=21), 400, "validation_error")
    assert_error(search(api, mind, query="x", threshold=1.5), 400, "validation_error")
    assert_error(search(api, mind, query="x", mode="magic"), 400, "validation_error")
    assert_error(search(api, mind, query="x", extra=True), 400, "validation_error")


def test_search_sees_only_ready_sources_of_that_mind(api, mind, workspace, other_api, other_workspace):
    other_mind = Mind.objects.create(workspace=workspace, name="Other", slug="other-search")
    ready_source(other_mind, "Lighthouses elsewhere", LIGHTHOUSES)
    foreign = Mind.objects.create(workspace=other_workspace, name="Foreign", slug="foreign-search")
    ready_source(foreign, "Foreign lighthouses", LIGHTHOUSES)
    results = search(api, mind, query="Fresnel lens", threshold=0, limit=20).json()["results"]
    assert {r["sourceName"] for r in results} <= {"Lighthouses", "Volcanoes", "Parts list"}
    # Another workspace cannot search this mind at all; ids of other minds are not found.
    assert_error(search(other_api, mind, query="Fresnel lens"), 404, "not_found")
    mind.sources.filter(name="Lighthouses").update(status="processing")
    assert all(
        r["sourceName"] != "Lighthouses"
        for r in search(api, mind, query="Fresnel lens", threshold=0).json()["results"]
    )


def crowded_mind(workspace, mind) -> None:
    """A crowd mind of 3,000 passages nearer to "lighthouse lens" than any of `mind`'s 6 harbour-log passages.

    Their vectors are the query's plus noise (embedding 3,000 texts would take a minute): far more close
    neighbours outside the mind than ef_search, so a filtered index scan has to go on past them."""
    crowd = Mind.objects.create(workspace=workspace, name="Crowd", slug="crowd-search")
    source = ready_source(crowd, "Crowd", ["Lighthouse lens facts."])
    near = np.asarray(get_embedder().embed_query("lighthouse lens")) + np.random.default_rng(0).normal(
        0, 0.02, (3000, 384)
    )
    Chunk.objects.bulk_create(
        Chunk(
            workspace_id=workspace.id,
            mind=crowd,
            source=source,
            ordinal=1 + i,
            content=f"Lighthouse lens fact {i}.",
            embedding=(vector / np.linalg.norm(vector)).tolist(),
        )
        for i, vector in enumerate(near)
    )
    ready_source(
        mind,
        "Harbour log",
        [
            Segment(f"Harbour log entry {i}: a ship passed the lighthouse at dawn.", page=i + 1)
            for i in range(6)
        ],
    )


def prefer_the_hnsw_index() -> None:
    """Makes the planner take the HNSW index wherever it can, whatever its statistics (for this test's transaction)."""
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")


def exact_ranking(mind, query: str) -> list[str]:
    vector = np.asarray(get_embedder().embed_query(query))
    chunks = Chunk.objects.filter(mind=mind, source__status="ready")
    return [c.id for c in sorted(chunks, key=lambda c: -float(np.asarray(c.embedding) @ vector))]


@pytest.mark.parametrize("path", ["exact", "index"])
def test_filtered_vector_search_fills_the_limit_among_many_other_minds(workspace, mind, monkeypatch, path):
    # Many more chunks in another mind than in this one: the filtered scan must still return `limit` hits, both
    # the exact one a mind of this size gets and the HNSW one a mind above EXACT_SEARCH_MAX_CHUNKS gets.
    crowded_mind(workspace, mind)
    if path == "index":
        monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_CHUNKS", 0)
        prefer_the_hnsw_index()
    hits = search_chunks(mind=mind, query="lighthouse lens", limit=5, threshold=0, mode="vector")
    assert len(hits) == 5 and all(h.chunk.mind_id == mind.id for h in hits)


def index_scans_give_up_early() -> None:
    with connection.cursor() as cursor:
        # The iterative scan stops after its first ef_search candidates, all of them the crowd's.
        cursor.execute("SET LOCAL hnsw.max_scan_tuples = 1")


@pytest.mark.parametrize("scope", ["small, searched exactly", "large, falling back to the exact search"])
def test_an_index_scan_that_stops_short_costs_no_passage(workspace, mind, monkeypatch, scope):
    # The HNSW graph is approximate: between vacuums, a filtered scan of a small mind was seen to miss its live
    # rows (test_reembed's search found nothing in CI). Here the index returns none of the mind's rows: a mind of
    # up to EXACT_SEARCH_MAX_CHUNKS does not use it, and a larger one falls back to the exact search.
    crowded_mind(workspace, mind)
    if scope.startswith("large"):
        monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_CHUNKS", 0)
    prefer_the_hnsw_index()
    index_scans_give_up_early()
    hits = search_chunks(mind=mind, query="lighthouse lens", limit=5, threshold=0, mode="vector")
    assert [h.chunk.id for h in hits] == exact_ranking(mind, "lighthouse lens")[:5]


def test_scope_and_search_rate_limit(mind, workspace, settings):
    assert_error(
        search(KeyedClient(make_key(workspace, scopes=["minds:read"])), mind, query="x"),
        403,
        "insufficient_scope",
    )
    settings.SEARCH_RATE_LIMIT_PER_MINUTE = 2
    for _attempt in range(2):  # a one-minute window may roll over mid-test; then the count starts again
        client = KeyedClient(make_key(workspace, scopes=["knowledge:search"]))
        first = search(client, mind, query="lens")
        second = search(client, mind, query="lens")
        limited = search(client, mind, query="lens")
        if first["X-RateLimit-Reset"] == limited["X-RateLimit-Reset"]:
            break
    assert first.status_code == second.status_code == 200
    assert second["X-RateLimit-Limit"] == "2" and second["X-RateLimit-Remaining"] == "0"
    assert_error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) >= 1
