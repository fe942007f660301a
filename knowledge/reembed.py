"""Re-embedding a workspace's chunks with the current embedder, without downtime.

Needed only when the embedding model's output changes (another model, another backend); the int8 ONNX runtime and
the torch runtime of the same model give compatible vectors and need none (knowledge/embeddings.py).

Searches keep reading `Chunk.embedding` throughout. The new vectors go into `next_embedding` in batches (each its own
short transaction, so an interrupted run keeps what it wrote and the next run resumes there); once every chunk of a
source has one, a single transaction swaps them in for that source. The swap locks the source row before its chunks,
in the order source indexing does (knowledge/indexing.py), so the two never deadlock; chunks a reprocessing wrote
meanwhile already carry the current embedder's vectors and are left alone.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from knowledge.embeddings import get_embedder
from knowledge.indexing import embedding_text
from knowledge.models import Chunk, Source

BATCH_SIZE = 64


@dataclass
class Reembedded:
    sources: int = 0
    chunks: int = 0


def workspace_reembed(
    *,
    workspace_id: str,
    batch_size: int = BATCH_SIZE,
    stale_only: bool = False,
    on_source: Callable[[Source, int], None] | None = None,
) -> Reembedded:
    """Re-embeds every chunk of the workspace (with `stale_only`, those whose model is not the current one)."""
    embedder = get_embedder()
    done = Reembedded()
    chunks = Chunk.objects.filter(workspace_id=workspace_id)
    if stale_only:
        chunks = chunks.exclude(embedding_model=embedder.model_name)
    source_ids = list(chunks.order_by("source_id").values_list("source_id", flat=True).distinct())
    for source in Source.objects.filter(id__in=source_ids).order_by("id"):
        count = _source_fill(source, chunks.filter(source=source), embedder, batch_size)
        _source_swap(source.id, embedder.model_name)
        done.sources += 1
        done.chunks += count
        if on_source:
            on_source(source, count)
    return done


def _source_fill(source: Source, chunks, embedder, batch_size: int) -> int:
    title = source.metadata.get("title") or source.name
    # A vector left by an interrupted run of the same model is kept: that is what makes the command resumable.
    pending = chunks.exclude(next_embedding_model=embedder.model_name).order_by("ordinal")
    filled = 0
    while batch := list(pending.only("id", "heading_path", "content")[:batch_size]):
        vectors = embedder.embed_documents([embedding_text(title, c.heading_path, c.content) for c in batch])
        for chunk, vector in zip(batch, vectors, strict=True):
            chunk.next_embedding = vector
            chunk.next_embedding_model = embedder.model_name
        # Rows a concurrent reprocessing deleted are simply not updated.
        Chunk.objects.bulk_update(batch, ["next_embedding", "next_embedding_model"])
        filled += len(batch)
    return filled


@transaction.atomic
def _source_swap(source_id: str, model_name: str) -> None:
    if not Source.objects.select_for_update().filter(id=source_id).exists():
        return  # deleted meanwhile: its chunks went with it
    Chunk.objects.filter(source_id=source_id, next_embedding_model=model_name).update(
        embedding=F("next_embedding"),
        embedding_model=model_name,
        next_embedding=None,
        next_embedding_model="",
    )
    Source.objects.filter(id=source_id).update(embedding_model=model_name)
