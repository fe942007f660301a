"""A podcast feed fetched again picks up its new episodes, without transcribing anything twice.

The first run of a feed source transcribes its newest episode into the source itself and remembers every episode
the feed listed then (`episodesSeen`: their audio URLs). A later run (reprocess, or `refreshIntervalHours`) of a
source that holds its episode reads the feed again: each episode not seen before becomes a podcast source of its
own (`audioUrl`, named after the episode, `linkedFrom` the feed), through the same checked, limited and
deduplicated insert as a links() page's links (knowledge/links.py), up to FEED_NEW_EPISODES_MAX a run; the feed
source keeps its chunks and becomes ready again at once. Episodes the feed listed at the first run are older than
the one transcribed and are not imported (a user who wants the back catalogue adds them).
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.api.errors import ValidationFailed
from knowledge import safe_http
from knowledge.errors import UrlNotAllowedError
from knowledge.extractors.clean import clean_text
from knowledge.extractors.feed import Episode, episodes
from knowledge.links import LINKED_FROM, PreparedLinks, links_insert
from knowledge.models import Source
from knowledge.source_creation import owner_lock, source_fields, source_owner
from knowledge.source_states import Claim, source_mark_ready

# Source metadata of a feed source.
EPISODE_AUDIO_URL = "episodeAudioUrl"  # the episode this source holds
EPISODES_SEEN = "episodesSeen"  # every episode's audio URL the feed has listed so far
NEW_EPISODES = "newEpisodes"  # what the last refresh did (a links() summary)
CHECKED_AT = "feedCheckedAt"
SEEN_KEPT = 1000  # a feed of thousands of episodes keeps only its newest URLs


@dataclass(frozen=True)
class Refreshed:
    linked_source_ids: tuple[str, ...]


def holds_its_episode(source: Source) -> bool:
    """A feed source whose episode is already transcribed: a new run only looks for new episodes."""
    return bool(source.feed_url and source.metadata.get(EPISODE_AUDIO_URL) and source.chunk_count)


def remember_episodes(metadata: dict, listed: list[Episode], held: Episode) -> dict:
    seen = [e.audio_url for e in listed] + list(metadata.get(EPISODES_SEEN, []))
    return {
        **metadata,
        "episodeTitle": clean_text(held.title),
        EPISODE_AUDIO_URL: held.audio_url,
        EPISODES_SEEN: list(dict.fromkeys(seen))[:SEEN_KEPT],
    }


def feed_refresh(claim: Claim, source: Source) -> Refreshed | None:
    """Adds the feed's new episodes as sources and makes the feed source ready again; None when the claim was lost."""
    feed = safe_http.fetch(source.feed_url, max_bytes=settings.FETCH_MAX_BYTES)
    listed = episodes(feed.body)
    seen = set(source.metadata.get(EPISODES_SEEN, [])) | {source.metadata[EPISODE_AUDIO_URL]}
    new = [e for e in listed if e.audio_url not in seen][: settings.FEED_NEW_EPISODES_MAX]
    owner = source_owner(source)
    prepared = PreparedLinks()
    prepared.summary.found = len(new)
    for episode in reversed(new):  # oldest first, so the sources' order is the episodes' order
        try:
            prepared.fields.append(
                source_fields(
                    owner=owner,
                    kind=Source.Type.PODCAST,
                    name=clean_text(episode.title),
                    audio_url=episode.audio_url,
                    metadata={LINKED_FROM: source.id, "episodeTitle": clean_text(episode.title)},
                )
            )
        except (UrlNotAllowedError, ValidationFailed):
            prepared.summary.refused += 1
    with transaction.atomic():
        # Lock order as in knowledge/indexing.py: the owner before the source.
        locked_owner = owner_lock(owner)
        owned = claim.owned().select_for_update().first() if locked_owner is not None else None
        if owned is None:
            return None
        created, summary = links_insert(owner=locked_owner, prepared=prepared)
        held = Episode(owned.metadata.get("episodeTitle", ""), owned.metadata[EPISODE_AUDIO_URL])
        metadata = remember_episodes(owned.metadata, listed, held)
        metadata[NEW_EPISODES] = summary
        metadata[CHECKED_AT] = timezone.now().isoformat()
        source_mark_ready(
            claim,
            chunk_count=owned.chunk_count,
            token_count=owned.token_count,
            page_count=owned.page_count,
            duration_seconds=owned.duration_seconds,
            embedding_model=owned.embedding_model,
            metadata=metadata,
            content_hash=owned.content_hash,
        )
    return Refreshed(tuple(created))
