"""Podcast RSS/Atom feeds: the latest episode's title and audio enclosure."""

import feedparser

from knowledge.errors import ExtractionError


def latest_episode(feed_bytes: bytes) -> tuple[str, str]:
    parsed = feedparser.parse(feed_bytes)
    if parsed.bozo and not parsed.entries:
        raise ExtractionError("feed_invalid", "The feed could not be read as RSS or Atom.")
    episodes = []
    for entry in parsed.entries:
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
            episodes.append((tuple(published) if published else (), entry.get("title", "Episode"), audio))
    if not episodes:
        raise ExtractionError("feed_invalid", "The feed has no episode with an audio enclosure.")
    # Feeds list newest first by convention; a date, when present, decides.
    dated = [e for e in episodes if e[0]]
    newest = max(dated, key=lambda e: e[0]) if dated else episodes[0]
    return newest[1], newest[2]
