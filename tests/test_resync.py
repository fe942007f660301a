"""Incremental re-sync: a page fetched again re-embeds only the chunks whose text changed (by content hash), keeps
the others' vectors, and says how many it reused."""

import numpy as np
import pytest

from knowledge.models import Chunk
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.test_ingestion_e2e import knowledge, wait_finished

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOPICS = [
    "lighthouse lenses",
    "tidal charts",
    "storm signals",
    "fog horns",
    "keeper logbooks",
    "lamp oils",
    "rotating beacons",
    "coastal surveys",
    "shipwreck records",
    "harbour pilots",
    "radio beacons",
    "buoy tenders",
]


def page(edited: str | None = None) -> str:
    sections = []
    for number, topic in enumerate(TOPICS):
        text = (
            f"This section explains {topic} in the coastal service. " * 12
            + f"It ends with the {topic} reference number {number * 7919}."
        )
        if edited and number == 5:
            text = edited
        sections.append(f"<h2>About {topic}</h2><p>{text}</p>")
    return f"<html><head><title>Coastal service handbook</title></head><body><article>{''.join(sections)}</article></body></html>"


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-resync")


def vectors(source_id: str) -> dict[str, np.ndarray]:
    return {c.content_hash: np.asarray(c.embedding) for c in Chunk.objects.filter(source_id=source_id)}


def test_a_page_edited_by_one_paragraph_re_embeds_only_what_changed(api, mind, celery_worker, settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API checks URLs too; the test worker allows the local site
    with FakeSite() as site:
        site.route("/handbook", page(), content_type="text/html; charset=utf-8")
        source_id = api.post(knowledge(mind), {"type": "url", "url": site.url("/handbook")}).json()["source"][
            "id"
        ]
        first = wait_finished(api, mind, [source_id])[source_id]
        assert first["status"] == "ready", first
        total = first["chunkCount"]
        assert total >= 10 and first["metadata"]["embeddedChunks"] == total
        assert first["metadata"]["reusedChunks"] == 0
        before = vectors(source_id)

        edited = page(edited="Keeper logbooks were replaced by a ledger of gull sightings.")
        site.route("/handbook", edited, content_type="text/html; charset=utf-8")
        assert api.post(f"{knowledge(mind)}/{source_id}/reprocess").status_code == 200
        second = wait_finished(api, mind, [source_id])[source_id]
    assert second["status"] == "ready", second
    reused, embedded = second["metadata"]["reusedChunks"], second["metadata"]["embeddedChunks"]
    # The edited section is short now: it and the next section make one new chunk where there were two.
    assert reused + embedded == second["chunkCount"] == total - 1
    assert embedded == 1 and reused == total - 2
    after = vectors(source_id)
    kept = before.keys() & after.keys()
    assert len(kept) == reused
    for content_hash in kept:  # the very same vectors, not recomputed ones
        assert np.array_equal(before[content_hash], after[content_hash])
    new = Chunk.objects.get(source_id=source_id, content_hash__in=after.keys() - before.keys())
    assert "gull sightings" in new.content
    hit = api.post(
        f"/api/v1/minds/{mind.id}/search", {"query": "gull sightings ledger", "threshold": 0}
    ).json()
    assert hit["results"][0]["content"] == new.content
