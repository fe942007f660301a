"""Incremental re-sync: a page fetched again re-embeds only the chunks whose text changed (by content hash), keeps
the others' vectors, and says how many it reused; `refreshIntervalHours` fetches it again on a schedule."""

from datetime import datetime, timedelta
from unittest import mock

import numpy as np
import pytest
from django.utils import timezone

from knowledge.models import Chunk, Source
from knowledge.tasks import sources_refresh_due
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.realfiles import fixture
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


def test_refresh_interval_is_validated_and_shown(api, mind, settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    with mock.patch("knowledge.tasks.source_process.delay"):  # no worker here: nothing must race the checks
        created = api.post(
            knowledge(mind), {"type": "url", "url": "http://127.0.0.1:9/page", "refreshIntervalHours": 24}
        )
        assert created.status_code == 201, created.json()
        source = created.json()["source"]
        assert source["refreshIntervalHours"] == 24
        next_at = datetime.fromisoformat(source["nextRefreshAt"].replace("Z", "+00:00"))
        assert abs((next_at - timezone.now()) - timedelta(hours=24)) < timedelta(minutes=5)
        for body, field in (
            ({"type": "text", "content": "A note.", "refreshIntervalHours": 1}, "refreshIntervalHours"),
            (
                {"type": "podcast", "audioUrl": "http://127.0.0.1:9/a.mp3", "refreshIntervalHours": 1},
                "refreshIntervalHours",
            ),
            (
                {"type": "url", "url": "http://127.0.0.1:9/other", "refreshIntervalHours": 0},
                "refreshIntervalHours",
            ),
            (
                {"type": "url", "url": "http://127.0.0.1:9/other", "refreshIntervalHours": 10**6},
                "refreshIntervalHours",
            ),
        ):
            refused = api.post(knowledge(mind), body)
            assert refused.status_code == 400 and field in refused.json()["details"]["fields"], refused.json()
    assert Source.objects.filter(mind=mind).count() == 1


def test_due_sources_are_fetched_again_and_their_next_time_moves_on(api, mind, celery_worker, settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        site.route("/handbook", page(), content_type="text/html; charset=utf-8")
        body = {"type": "url", "url": site.url("/handbook"), "refreshIntervalHours": 6}
        source_id = api.post(knowledge(mind), body).json()["source"]["id"]
        assert wait_finished(api, mind, [source_id])[source_id]["status"] == "ready"
        assert sources_refresh_due() == []  # not due yet
        Source.objects.filter(id=source_id).update(next_refresh_at=timezone.now() - timedelta(minutes=1))
        edited = page(edited="Keeper logbooks now record the visits of seals.")
        site.route("/handbook", edited, content_type="text/html; charset=utf-8")
        assert sources_refresh_due() == [source_id]
        assert sources_refresh_due() == []  # its next time moved on: not taken twice
        wait_for(
            lambda: Source.objects.get(id=source_id).metadata.get("embeddedChunks") == 1,
            timeout=240,
            what="the refreshed page to be indexed again",
        )
        refreshed = wait_finished(api, mind, [source_id])[source_id]
    assert (
        refreshed["status"] == "ready"
        and refreshed["metadata"]["reusedChunks"] == refreshed["chunkCount"] - 1
    )
    next_at = datetime.fromisoformat(refreshed["nextRefreshAt"].replace("Z", "+00:00"))
    assert timedelta(hours=5) < next_at - timezone.now() <= timedelta(hours=6)
    assert "seals" in " ".join(Chunk.objects.filter(source_id=source_id).values_list("content", flat=True))


def feed_xml(site, items: list[tuple[str, str, str]]) -> str:
    entries = "".join(
        f'<item><title>{title}</title><pubDate>{date}</pubDate><enclosure url="{site.url(path)}" type="audio/wav" '
        f'length="1"/></item>'
        for title, date, path in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Readings</title>{entries}</channel></rss>'
    )


def test_a_feed_fetched_again_adds_its_new_episodes_and_transcribes_nothing_twice(
    api, mind, celery_worker, settings
):
    settings.SSRF_ALLOW_LOOPBACK = True
    wav = fixture("audio/sense_and_sensibility_01_austen_64kb-0870.wav").read_bytes()
    chapter_one = ("Chapter one", "Mon, 02 Nov 2026 10:00:00 GMT", "/one.wav")
    prologue = ("Prologue", "Mon, 26 Oct 2026 10:00:00 GMT", "/prologue.wav")
    with FakeSite() as site:
        for path in ("/one.wav", "/two.wav", "/prologue.wav"):
            site.route(path, wav, content_type="audio/wav")
        site.route("/feed.xml", feed_xml(site, [chapter_one, prologue]), content_type="application/rss+xml")
        body = {"type": "podcast", "feedUrl": site.url("/feed.xml")}
        feed_id = api.post(knowledge(mind), body).json()["source"]["id"]
        first = wait_finished(api, mind, [feed_id])[feed_id]
        assert first["status"] == "ready" and first["metadata"]["episodeTitle"] == "Chapter one"
        chunks_before = set(Chunk.objects.filter(source_id=feed_id).values_list("id", flat=True))

        chapter_two = ("Chapter two", "Mon, 09 Nov 2026 10:00:00 GMT", "/two.wav")
        site.route(
            "/feed.xml",
            feed_xml(site, [chapter_two, chapter_one, prologue]),
            content_type="application/rss+xml",
        )
        assert api.post(f"{knowledge(mind)}/{feed_id}/reprocess").status_code == 200
        wait_for(
            lambda: Source.objects.filter(metadata__linkedFrom=feed_id).exists(),
            timeout=240,
            what="the new episode to become a source",
        )
        episode = Source.objects.get(metadata__linkedFrom=feed_id)
        finished = wait_finished(api, mind, [feed_id, episode.id])
        # Again, with nothing new: nothing is added.
        assert api.post(f"{knowledge(mind)}/{feed_id}/reprocess").status_code == 200
        wait_for(
            lambda: (
                Source.objects.get(id=feed_id).status == "ready"
                and Source.objects.get(id=feed_id).metadata["newEpisodes"]["found"] == 0
            ),
            timeout=240,
            what="the second refresh",
        )
    feed, new = finished[feed_id], finished[episode.id]
    assert feed["status"] == "ready" and feed["metadata"]["episodeTitle"] == "Chapter one"
    # The prologue was listed at the first run, older than the episode transcribed: not imported.
    assert feed["metadata"]["newEpisodes"]["added"] == 1
    assert set(Chunk.objects.filter(source_id=feed_id).values_list("id", flat=True)) == chunks_before
    assert (
        first["transcribingStartedAt"] and feed["transcribingStartedAt"] is None
    )  # no transcription this run
    assert (
        new["status"] == "ready" and new["name"] == "Chapter two" and new["audioUrl"] == site.url("/two.wav")
    )
    assert (
        "dashwood"
        in " ".join(Chunk.objects.filter(source_id=episode.id).values_list("content", flat=True)).lower()
    )
    assert Source.objects.filter(mind=mind).count() == 2
