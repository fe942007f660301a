"""Podcast RSS/Atom feeds: their episodes (title and audio enclosure), newest first."""

from dataclasses import dataclass

import feedparser

from knowledge.errors import ExtractionError


@dataclass(frozen=True)
class Episode:
    title: str
    audio_url: str


def episodes(feed_bytes: bytes) -> list[Episode]:
    """Every episode with an audio enclosure, newest first: by date where the entries have one, else in the feed's
    order (feeds list newest first by convention)."""
    parsed = feedparser.parse(feed_bytes)
    if parsed.bozo and not parsed.entries:
        raise ExtractionError("feed_invalid", "The feed could not be read as RSS or Atom.")
    found = []
    for position, entry in enumerate(parsed.entries):
        audio = next(
            (
                link.get("href")
                for link in entry.get("enclosures", []) + entry.get("links", [])
                if link.get("href")
                and (link.get("type", "").startswith("audio/") or link.get("rel") == "enclosure")
            ),
            None,
        )
        if audio:
            published = entry.get("published_parsed") or entry.get("updated_parsed")
            found.append(
                (
                    tuple(published) if published else (),
                    position,
                    Episode(entry.get("title", "Episode"), audio),
                )
            )
    if not found:
        raise ExtractionError("feed_invalid", "The feed has no episode with an audio enclosure.")
    dated = sorted((e for e in found if e[0]), key=lambda e: (e[0], -e[1]), reverse=True)
    undated = [e for e in found if not e[0]]
    return [episode for _, _, episode in dated + undated]


def latest_episode(feed_bytes: bytes) -> tuple[str, str]:
    newest = episodes(feed_bytes)[0]
    return newest.title, newest.audio_url
