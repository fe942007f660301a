"""Test data for retrieval and chat: sources with real chunks, embedded by the real local model, stored exactly as
the pipeline stores them (same chunker, same embedding text, same full-text vector)."""

from django.utils import timezone

from knowledge.extractors.base import Extracted, Segment
from knowledge.indexing import source_index
from knowledge.models import Source
from knowledge.source_states import source_claim


def ready_source(mind, name: str, paragraphs: list[str], **fields) -> Source:
    """A `ready` source made of `paragraphs`, indexed by the real indexing code (chunk, embed, store)."""
    source = Source.objects.create(
        workspace_id=mind.workspace_id,
        mind=mind,
        type=fields.pop("type", "text"),
        name=name,
        content="\n\n".join(p if isinstance(p, str) else p.text for p in paragraphs),
        queued_at=timezone.now(),
        **fields,
    )
    claim = source_claim(source.id)
    segments = [Segment(p, page=fields.get("page")) if isinstance(p, str) else p for p in paragraphs]
    assert source_index(claim=claim, source=source, extracted=Extracted(segments=segments, title=name))
    source.refresh_from_db()
    return source
