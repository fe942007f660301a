"""Bulk indexing of benchmark corpora into a mind, with the product's own chunker, embedding text, model and
full-text configuration (the ingestion pipeline itself is measured in bench/ingest.py). Embeddings are cached in
.data/bench-cache so reruns skip the slow part."""

import hashlib
import time

import numpy as np
from common import ROOT

CACHE = ROOT / ".data" / "bench-cache"


def _model_identity() -> str:
    from django.conf import settings

    if settings.EMBEDDING_BACKEND == "local" and settings.EMBEDDING_RUNTIME == "onnx-int8":
        from knowledge.embedder_export import file_name

        return file_name()
    return f"{settings.EMBEDDING_BACKEND}:{settings.EMBEDDING_RUNTIME}"


def embed_cached(texts: list[str], name: str) -> np.ndarray:
    from knowledge.embeddings import get_embedder

    CACHE.mkdir(parents=True, exist_ok=True)
    # The model's identity is part of the key: a new ONNX export must not be measured with the old one's vectors.
    digest = hashlib.sha256("\x00".join([_model_identity(), *texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = np.asarray(get_embedder().embed_documents(texts), dtype=np.float32)
    print(f"  embedded {len(texts)} passages in {time.perf_counter() - started:.0f} s", flush=True)
    np.save(path, vectors)
    return vectors


def index_documents(mind, documents: list[tuple[str, str, str]], cache_name: str) -> dict[str, str]:
    """documents: (key, title, text). One ready source per document; returns source id → key."""
    from django.db import transaction
    from django.utils import timezone

    from knowledge.chunking import chunk_segments
    from knowledge.embeddings import get_embedder
    from knowledge.extractors.text import extract_plain
    from knowledge.indexing import PREFIX_RESERVE, embedding_text
    from knowledge.models import Chunk, Source

    embedder = get_embedder()
    max_tokens = embedder.max_tokens - PREFIX_RESERVE
    sources, drafts_of, keys = [], [], []
    for key, title, text in documents:
        source = Source(
            workspace_id=mind.workspace_id,
            mind=mind,
            type="text",
            name=title[:255],
            status="ready",
            content="",
            ready_at=timezone.now(),
            metadata={"key": key},
        )
        drafts = chunk_segments(extract_plain(text).segments, embedder.count_tokens, max_tokens, 60)
        sources.append(source)
        drafts_of.append(drafts)
        keys.append(key)
    texts = [
        embedding_text(s.name, d.heading_path, d.text)
        for s, drafts in zip(sources, drafts_of, strict=True)
        for d in drafts
    ]
    vectors = embed_cached(texts, cache_name)
    with transaction.atomic():
        Source.objects.bulk_create(sources, batch_size=1000)
        chunks, i = [], 0
        for source, drafts in zip(sources, drafts_of, strict=True):
            for ordinal, draft in enumerate(drafts):
                chunks.append(
                    Chunk(
                        workspace_id=mind.workspace_id,
                        mind=mind,
                        source=source,
                        ordinal=ordinal,
                        content=draft.text,
                        content_hash=draft.content_hash,
                        token_count=draft.token_count,
                        embedding=vectors[i],
                        embedding_model=embedder.model_name,
                    )
                )
                i += 1
        Chunk.objects.bulk_create(chunks, batch_size=1000)
    return {s.id: key for s, key in zip(sources, keys, strict=True)}
