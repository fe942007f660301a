"""Search and chat over collections: a mind searches its own sources plus the collections attached to it, in one
filtered query over one index; never an unattached collection, nor another workspace's. The pipeline (claim,
index, sweeper, webhook) works for a source that belongs to a collection, end to end with the real worker."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge import pipeline
from knowledge.extractors.base import Extracted, Segment
from knowledge.indexing import source_index
from knowledge.models import Chunk, Collection, Source
from knowledge.pipeline import Result
from knowledge.search import KnowledgeScope, search_chunks
from knowledge.source_states import source_claim, sources_sweep
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, assert_error, make_key, wait_for
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db

HARBOUR = [
    "The Kestrel Bay harbour crane uses the replacement gasket ZX-4471-B on its hydraulic pump, changed every "
    "two years by the night crew.",
    "Containers are lifted from the ships onto the quay in the early morning, before the tide turns.",
]


def ready_collection_source(collection: Collection, name: str, paragraphs: list, **fields) -> Source:
    """A `ready` source of a collection, indexed by the real indexing code (chunk, embed, store)."""
    source = Source.objects.create(
        workspace_id=collection.workspace_id,
        collection=collection,
        type=fields.pop("type", "text"),
        name=name,
        content="\n\n".join(p if isinstance(p, str) else p.text for p in paragraphs),
        queued_at=timezone.now(),
        **fields,
    )
    claim = source_claim(source.id)
    segments = [Segment(p) if isinstance(p, str) else p for p in paragraphs]
    assert source_index(claim=claim, source=source, extracted=Extracted(segments=segments, title=name))
    source.refresh_from_db()
    return source


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-collections")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


@pytest.fixture
def harbour(workspace):
    collection = Collection.objects.create(workspace=workspace, name="Harbour", slug="harbour")
    ready_collection_source(collection, "Harbour manual", HARBOUR)
    return collection


@pytest.fixture
def volcanoes(workspace):
    collection = Collection.objects.create(workspace=workspace, name="Volcanoes", slug="volcanoes")
    ready_collection_source(collection, "Volcano notes", VOLCANOES)
    return collection


def search(client, path: str, **body):
    return client.post(path, {"threshold": 0, "limit": 20, **body})


def names(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {r["sourceName"] for r in response.json()["results"]}


def test_a_mind_searches_its_own_sources_and_its_attached_collections_only(api, mind, harbour, volcanoes):
    path = f"/api/v1/minds/{mind.id}/search"
    assert names(search(api, path, query="gasket for the harbour crane pump")) == {"Lighthouses"}
    api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [harbour.id]})
    found = search(api, path, query="gasket for the harbour crane pump").json()["results"]
    assert found[0]["sourceName"] == "Harbour manual" and "ZX-4471-B" in found[0]["content"]
    assert {r["sourceName"] for r in found} <= {"Lighthouses", "Harbour manual"}  # never the unattached one
    assert names(search(api, path, query="Fresnel lens lighthouse beams"))  # its own sources still
    exact = search(api, path, query="ZX-4471-B", mode="hybrid").json()["results"]
    assert exact[0]["sourceName"] == "Harbour manual" and exact[0]["metadata"]["textScore"] == 1.0

    api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": []})
    assert "Harbour manual" not in names(search(api, path, query="gasket for the harbour crane pump"))


def test_a_collections_search_covers_that_collection_only_with_the_mind_search_answer(
    api, mind, harbour, volcanoes
):
    response = search(api, f"/api/v1/collections/{harbour.id}/search", query="harbour crane gasket", limit=5)
    body = response.json()
    assert set(body) == {"status", "results", "mode"} and body["mode"] == "hybrid"
    first = body["results"][0]
    assert set(first) == {"id", "content", "score", "sourceId", "sourceName", "metadata"}
    assert first["sourceName"] == "Harbour manual" and first["id"].startswith("chk_")
    assert {r["sourceName"] for r in body["results"]} == {"Harbour manual"}
    for mode in ("vector", "smart"):
        assert names(search(api, f"/api/v1/collections/{harbour.id}/search", query="volcano", mode=mode)) <= {
            "Harbour manual"
        }
    assert_error(api.post(f"/api/v1/collections/{harbour.id}/search", {"query": ""}), 400, "validation_error")
    assert_error(
        api.post(f"/api/v1/collections/{harbour.id}/search", {"query": "x", "limit": 21}),
        400,
        "validation_error",
    )


def test_unready_collection_sources_are_not_searched(api, harbour):
    harbour.sources.update(status="processing")
    assert (
        search(api, f"/api/v1/collections/{harbour.id}/search", query="harbour crane gasket").json()[
            "results"
        ]
        == []
    )


def test_another_workspace_neither_attaches_nor_searches_a_collection(
    api, other_api, other_workspace, mind, harbour
):
    theirs = Mind.objects.create(workspace=other_workspace, name="Theirs", slug="theirs-collections")
    assert_error(
        other_api.put(f"/api/v1/minds/{theirs.id}/collections", {"collectionIds": [harbour.id]}),
        400,
        "validation_error",
    )
    assert not theirs.collections.exists()
    assert_error(
        search(other_api, f"/api/v1/collections/{harbour.id}/search", query="gasket"), 404, "not_found"
    )
    # Their own collection with the same text is theirs alone.
    foreign = Collection.objects.create(workspace=other_workspace, name="Copy", slug="harbour")
    ready_collection_source(foreign, "Their harbour manual", HARBOUR)
    api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [harbour.id]})
    found = names(search(api, f"/api/v1/minds/{mind.id}/search", query="harbour crane gasket"))
    assert "Their harbour manual" not in found and "Harbour manual" in found


def test_a_mind_restricted_key_searches_only_the_collections_of_its_minds(
    workspace, mind, harbour, volcanoes
):
    harbour.minds.add(mind)
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[mind.id]))
    assert names(search(restricted, f"/api/v1/collections/{harbour.id}/search", query="gasket")) == {
        "Harbour manual"
    }
    assert_error(
        search(restricted, f"/api/v1/collections/{volcanoes.id}/search", query="lava"), 404, "not_found"
    )
    assert "Volcano notes" not in names(
        search(restricted, f"/api/v1/minds/{mind.id}/search", query="lava flows")
    )


def test_the_scope_is_one_filter_that_still_fills_the_limit_among_many_other_chunks(workspace, mind, harbour):
    crowd = Mind.objects.create(workspace=workspace, name="Crowd", slug="crowd-collections")
    ready_source(
        crowd,
        "Crowd",
        [Segment(f"Harbour crane log {i}: the gasket was checked at dawn.", page=i + 1) for i in range(240)],
    )
    ready_collection_source(
        harbour,
        "Harbour log",
        [Segment(f"Crane shift {i}: the harbour crane gasket held.", page=i + 1) for i in range(6)],
    )
    harbour.minds.add(mind)
    hits = search_chunks(mind=mind, query="harbour crane gasket", limit=8, threshold=0, mode="vector")
    assert len(hits) == 8
    assert all(h.chunk.mind_id == mind.id or h.chunk.collection_id == harbour.id for h in hits)
    only = search_chunks(
        scope=KnowledgeScope.of_collections([harbour.id]), query="harbour crane gasket", limit=8, threshold=0
    )
    assert len(only) == Chunk.objects.filter(collection=harbour).count() == 7  # every one of its chunks
    assert {h.chunk.collection_id for h in only} == {harbour.id}
    assert search_chunks(scope=KnowledgeScope.of_collections([]), query="gasket") == []


def test_a_mind_cites_an_attached_collections_source_in_chat(api, mind, harbour, workspace):
    unattached = Mind.objects.create(workspace=workspace, name="Plain", slug="plain-collections")
    harbour.minds.add(mind)
    question = "Which gasket does the Kestrel Bay harbour crane pump use?"
    message = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": question}).json()["message"]
    cited = {c["sourceName"] for c in message["citations"]}
    assert "Harbour manual" in cited and "ZX-4471-B" in message["content"]
    source_id = harbour.sources.get().id
    assert source_id in {c["sourceId"] for c in message["citations"]}
    other = api.post(f"/api/v1/minds/{unattached.id}/chat", {"message": question}).json()["message"]
    assert other["citations"] == [] and "ZX-4471-B" not in other["content"]


def test_the_pipeline_indexes_a_collection_source_and_the_sweeper_takes_it_over(workspace, settings):
    collection = Collection.objects.create(workspace=workspace, name="Pipeline", slug="pipeline")
    source = Source.objects.create(
        workspace=workspace,
        collection=collection,
        type="text",
        name="Notes",
        content="\n\n".join(HARBOUR),
        queued_at=timezone.now(),
    )
    claim = source_claim(source.id)
    Source.objects.filter(id=source.id).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert sources_sweep().requeued == [source.id]  # a crashed worker's collection source is taken over
    assert claim is not None and pipeline.source_process(source.id).result is Result.READY
    source.refresh_from_db()
    assert source.status == "ready" and source.attempts == 2 and source.chunk_count > 0
    chunks = Chunk.objects.filter(source=source)
    assert chunks.count() == source.chunk_count
    assert set(chunks.values_list("mind_id", "collection_id")) == {(None, collection.id)}


FOG_HORN = (
    "# Kestrel Bay fog signal\n\nThe fog horn at Kestrel Bay is tested every Tuesday at six in the morning by the "
    "harbour master, who writes the result in the green logbook.\n"
)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_collection_sources_reach_ready_with_the_worker_and_attached_minds_find_and_cite_them(
    api, other_api, workspace, other_workspace, celery_worker, settings
):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API process checks the callback URL too
    attached = Mind.objects.create(workspace=workspace, name="Harbourmaster", slug="harbourmaster-e2e")
    plain = Mind.objects.create(workspace=workspace, name="Plain", slug="plain-e2e")
    foreign = Mind.objects.create(workspace=other_workspace, name="Foreign", slug="foreign-e2e")
    collection_id = api.post("/api/v1/collections", {"name": "Kestrel Bay"}).json()["collection"]["id"]
    base = f"/api/v1/collections/{collection_id}/knowledge"
    with FakeSite() as site:
        site.route("/hook", "ok")
        text = api.post(
            base,
            {
                "type": "text",
                "name": "Crane notes",
                "content": "\n\n".join(HARBOUR),
                "callbackUrl": site.url("/hook"),
            },
        )
        assert text.status_code == 201, text.json()
        upload = api.upload(f"{base}/upload", "fog-signal.md", FOG_HORN.encode())
        document = api.post(base, {"type": "document", "fileUrl": upload.json()["fileUrl"]})
        assert document.status_code == 201, document.json()
        ids = [text.json()["source"]["id"], document.json()["source"]["id"]]
        wait_for(
            lambda: Source.objects.filter(id__in=ids, status__in=("ready", "failed")).count() == 2,
            timeout=120,
            what="the collection's sources to finish",
        )
        wait_for(lambda: any(r.path == "/hook" for r in site.requests), timeout=60, what="the webhook")
        hook = next(r for r in site.requests if r.path == "/hook")
    for source_id in ids:
        source = api.get(f"{base}/{source_id}").json()["source"]
        assert source["status"] == "ready", (source, celery_worker.log_text())
        assert (
            source["collectionId"] == collection_id and source["mindId"] is None and source["chunkCount"] > 0
        )
    assert set(Chunk.objects.filter(source_id__in=ids).values_list("mind_id", "collection_id")) == {
        (None, collection_id)
    }
    payload = json.loads(hook.body)
    assert payload["type"] == "source.ready" and payload["data"]["source"]["collectionId"] == collection_id

    api.put(f"/api/v1/minds/{attached.id}/collections", {"collectionIds": [collection_id]})
    question = "When is the Kestrel Bay fog horn tested?"
    found = api.post(f"/api/v1/minds/{attached.id}/search", {"query": question}).json()["results"]
    assert found and found[0]["sourceId"] == ids[1] and "Tuesday" in found[0]["content"]
    reply = api.post(f"/api/v1/minds/{attached.id}/chat", {"message": question}).json()["message"]
    assert ids[1] in {c["sourceId"] for c in reply["citations"]} and "Tuesday" in reply["content"]

    assert api.post(f"/api/v1/minds/{plain.id}/search", {"query": question}).json()["results"] == []
    other_reply = api.post(f"/api/v1/minds/{plain.id}/chat", {"message": question}).json()["message"]
    assert other_reply["citations"] == []
    assert_error(other_api.post(f"/api/v1/minds/{attached.id}/search", {"query": question}), 404, "not_found")
    assert_error(other_api.get(f"{base}/{ids[1]}"), 404, "not_found")
    assert other_api.post(f"/api/v1/minds/{foreign.id}/search", {"query": question}).json()["results"] == []
