"""Chunking, embedding and storing a source's text: the chunk set is replaced in one transaction.

Embedding happens before the transaction (it is the slow part); the transaction then locks the source row,
checks the worker still owns it, swaps the chunks and marks the source ready. Processing twice therefore never
duplicates chunks, and a source deleted or reprocessed meanwhile is left alone. The sources of a `links()` page's
links are written in the same transaction (knowledge/links.py), so the page is ready exactly when they exist.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from knowledge.chunking import chunk_segments
from knowledge.embeddings import get_embedder
from knowledge.extractors.base import Extracted
from knowledge.links import SUMMARY, PreparedLinks, links_insert
from knowledge.models import Chunk, Source
from knowledge.source_creation import owner_lock, source_owner
from knowledge.source_states import Claim, source_mark_ready

logger = logging.getLogger(__name__)

INSERT_BATCH = 500
# In the source's metadata after each indexing: chunks whose vector was kept from the previous run, and embedded.
REUSED_CHUNKS = "reusedChunks"
EMBEDDED_CHUNKS = "embeddedChunks"
PREFIX_RESERVE = 32


def embedding_text(title: str, heading_path: str, text: str) -> str:
    """What the model sees: the passage with its document title and headings, which disambiguate short passages."""
    context = " > ".join(part for part in (title[:120], heading_path[:200]) if part)
    return f"{context}\n{text}" if context else text


@dataclass(frozen=True)
class Indexed:
    """The source is ready; `linked_source_ids` are the sources its links became, for the caller to queue."""

    linked_source_ids: tuple[str, ...] = ()


def source_index(
    *, claim: Claim, source: Source, extracted: Extracted, links: PreparedLinks | None = None
) -> Indexed | None:
    """Chunks, embeds and stores the source (and, for a links() page, adds its `links`); None when the claim was
    lost."""
    embedder = get_embedder()
    # Tokens past the model's window would not be embedded at all; the title and headings prepended for the model
    # (embedding_text) take up to PREFIX_RESERVE of it.
    max_tokens = min(settings.CHUNK_TOKENS, embedder.max_tokens - PREFIX_RESERVE)
    drafts = chunk_segments(
        extracted.segments,
        count_tokens=embedder.count_tokens,
        count_tokens_many=getattr(embedder, "count_tokens_many", None),
        max_tokens=max_tokens,
        overlap_tokens=min(settings.CHUNK_OVERLAP_TOKENS, max_tokens // 3),
    )
    title = extracted.title or source.name
    reusable = _reusable_vectors(source, title, embedder.model_name)
    vectors = [reusable.get((d.content_hash, d.heading_path[:1000])) for d in drafts]
    missing = [i for i, vector in enumerate(vectors) if vector is None]
    fresh = embedder.embed_documents(
        [embedding_text(title, drafts[i].heading_path, drafts[i].text) for i in missing]
    )
    for i, vector in zip(missing, fresh, strict=True):
        vectors[i] = vector
    base_url = extracted.metadata.get("finalUrl") or source.url
    chunks = [
        Chunk(
            workspace_id=source.workspace_id,
            mind_id=source.mind_id,
            collection_id=source.collection_id,
            source_id=source.id,
            ordinal=ordinal,
            content=draft.text,
            content_hash=draft.content_hash,
            token_count=draft.token_count,
            embedding=vector,
            embedding_model=embedder.model_name,
            page=draft.page,
            heading_path=draft.heading_path[:1000],
            start_seconds=draft.start_seconds,
            end_seconds=draft.end_seconds,
            url=_chunk_url(source, base_url, draft.start_seconds),
        )
        for ordinal, (draft, vector) in enumerate(zip(drafts, vectors, strict=True))
    ]
    text_hash = hashlib.sha256(extracted.text.encode()).hexdigest()
    with transaction.atomic():
        owner = None
        if links is not None:
            # Lock order: the owner (with its workspace) before the source, as source creation and collection_delete
            # take them, so adding the links cannot deadlock with those.
            owner = owner_lock(source_owner(source))
            if owner is None:
                logger.info("source %s: its owner was deleted before storing chunks; discarding", source.id)
                return None
        owned = claim.owned().select_for_update().first()
        if owned is None:
            logger.info("source %s: claim lost before storing chunks; discarding", source.id)
            return None
        Chunk.objects.filter(source_id=source.id).delete()
        Chunk.objects.bulk_create(chunks, batch_size=INSERT_BATCH)  # PostgreSQL computes their search_vector
        metadata = {**owned.metadata, **_public_metadata(extracted)}
        metadata[REUSED_CHUNKS] = len(drafts) - len(missing)
        metadata[EMBEDDED_CHUNKS] = len(missing)
        linked: list[str] = []
        if owner is not None:
            linked, metadata[SUMMARY] = links_insert(owner=owner, prepared=links)
        # The row is locked and owned: this update cannot lose the claim any more.
        source_mark_ready(
            claim,
            chunk_count=len(chunks),
            token_count=sum(d.token_count for d in drafts),
            page_count=extracted.page_count,
            duration_seconds=extracted.duration_seconds,
            embedding_model=embedder.model_name,
            metadata=metadata,
            content_hash=owned.content_hash or text_hash,
        )
    return Indexed(tuple(linked))


def _reusable_vectors(source: Source, title: str, model_name: str) -> dict[tuple[str, str], list[float]]:
    """The vectors of the source's current chunks, by (content hash, headings), when they were embedded with the
    same text around them: same model, same document title. A page or feed fetched again re-embeds only the chunks
    whose text changed (the embedding is the slow part); the rest keep their vectors as they are."""
    previous_title = source.metadata.get("title") or source.name
    if previous_title != title:
        return {}
    rows = Chunk.objects.filter(source_id=source.id, embedding_model=model_name).values_list(
        "content_hash", "heading_path", "embedding"
    )
    return {(content_hash, heading_path): embedding for content_hash, heading_path, embedding in rows}


def _public_metadata(extracted: Extracted) -> dict:
    # Scalars, and lists of scalars (a PDF's `ocrPages`); nothing nested.
    keep = {
        k: v
        for k, v in extracted.metadata.items()
        if _is_scalar(v) or (isinstance(v, list) and all(map(_is_scalar, v)))
    }
    if extracted.title:
        keep["title"] = extracted.title
    return keep


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _chunk_url(source: Source, base_url: str, start_seconds: float | None) -> str:
    if source.type == Source.Type.YOUTUBE and source.youtube_video_id:
        t = f"?t={int(start_seconds)}" if start_seconds is not None else ""
        return f"https://youtu.be/{source.youtube_video_id}{t}"
    return (base_url or source.audio_url or "")[:2000]
