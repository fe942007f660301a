"""Storing chunks while the last ones are embedded (knowledge/embedding_stream.py, knowledge/indexing.py): the
vectors come in order, an embedder's error surfaces in the stage and writes nothing, and the chunks stored are the
same whenever the storing transaction starts."""

import threading

import numpy as np
import pytest
from django.utils import timezone

from knowledge import indexing, pipeline
from knowledge.embedding_stream import BLOCK, EmbeddingStream
from knowledge.embeddings import get_embedder
from knowledge.models import Chunk, Source
from knowledge.pipeline import Result
from knowledge.source_states import pending_again
from minds.models import Mind


class FakeEmbedder:
    """Vectors that name their text; `fail_on` makes that call raise, `gate` holds every call until set."""

    model_name = "fake"

    def __init__(self, fail_on: int | None = None, gate: threading.Event | None = None):
        self.calls = 0
        self.fail_on = fail_on
        self.gate = gate

    def embed_documents(self, texts):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        if self.calls == self.fail_on:
            raise RuntimeError("the model crashed")
        return [[float(text.split()[-1])] for text in texts]


def texts(count: int) -> list[str]:
    return [f"passage {n}" for n in range(count)]


def test_vectors_come_in_order_across_blocks():
    count = BLOCK * 3 + 5
    with EmbeddingStream(FakeEmbedder(), texts(count)) as stream:
        assert stream.vectors_until(BLOCK + 1) == [[float(n)] for n in range(BLOCK + 1)]
        stream.wait_until(seconds_left=0)  # everything embedded
        assert stream.vectors_until(count) == [[float(n)] for n in range(count)]


def test_waiting_for_an_unknown_pace_waits_for_the_first_block():
    embedder = FakeEmbedder()
    with EmbeddingStream(embedder, texts(BLOCK * 4)) as stream:
        stream.wait_until(seconds_left=10**9)  # no pace is known before a block is done
        assert embedder.calls >= 1 and len(stream.vectors_until(BLOCK)) == BLOCK


def test_an_embedder_error_is_raised_in_the_callers_thread():
    with EmbeddingStream(FakeEmbedder(fail_on=2), texts(BLOCK * 3)) as stream:
        assert len(stream.vectors_until(BLOCK)) == BLOCK
        with pytest.raises(RuntimeError, match="the model crashed"):
            stream.vectors_until(BLOCK * 2)
        with pytest.raises(RuntimeError, match="the model crashed"):
            stream.wait_until(seconds_left=0)


def test_leaving_the_stream_stops_its_thread_after_the_block_in_hand():
    gate = threading.Event()
    embedder = FakeEmbedder(gate=gate)
    stream = EmbeddingStream(embedder, texts(BLOCK * 10))
    with stream:
        threading.Timer(0.05, gate.set).start()  # the first block is in hand when the stage gives up
    assert not stream._thread.is_alive()
    assert embedder.calls <= 2


def test_no_texts_need_no_thread():
    with EmbeddingStream(FakeEmbedder(), []) as stream:
        stream.wait_until(seconds_left=0)
        assert stream.vectors_until(0) == []


# Through the real pipeline, embedder and database.

SECTIONS = 2 * indexing.INSERT_BATCH + 37  # three INSERT batches


def handbook() -> str:
    return "\n\n".join(
        f"## Rule {n}\n\nRule {n} of the harbour says that vessel number {n * 7919} keeps to the "
        f"{['north', 'south', 'east', 'west'][n % 4]} channel after dusk, whatever the tide and the wind. Its master reports to the pilot station "
        f"when passing the outer buoy, and again at the inner mole."
        for n in range(SECTIONS)
    )


@pytest.fixture
def source(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Harbour", slug="harbour-stream")
    return Source.objects.create(
        workspace=workspace, mind=mind, type="text", name="Rules", content=handbook()
    )


def stored(source_id: str) -> list[Chunk]:
    return list(Chunk.objects.filter(source_id=source_id).order_by("ordinal"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("insert_seconds", [0.0, 10**6], ids=["after-embedding", "beside-embedding"])
def test_chunks_are_the_same_whenever_the_transaction_starts(source, monkeypatch, insert_seconds):
    # 0: the transaction waits for every vector; 10**6: it starts after the first block and each INSERT waits
    # for its own vectors.
    monkeypatch.setattr(indexing, "INSERT_SECONDS_PER_CHUNK", insert_seconds)
    assert pipeline.source_process(source.id).result is Result.READY
    chunks = stored(source.id)
    assert len(chunks) == SECTIONS and [c.ordinal for c in chunks] == list(range(SECTIONS))
    ready = Source.objects.get(id=source.id)
    assert ready.chunk_count == SECTIONS
    title = ready.metadata.get("title") or ready.name  # as indexing chose it
    expected = get_embedder().embed_documents(
        [indexing.embedding_text(title, c.heading_path, c.content) for c in chunks]
    )
    for chunk, vector in zip(chunks, expected, strict=True):
        assert np.allclose(np.asarray(chunk.embedding), vector, atol=1e-6), chunk.ordinal
    assert [f"vessel number {n * 7919}" in c.content for n, c in enumerate(chunks)] == [True] * SECTIONS


@pytest.mark.django_db(transaction=True)
def test_an_embedder_failing_midway_keeps_the_previous_chunks_untouched(source, monkeypatch):
    monkeypatch.setattr(indexing, "INSERT_SECONDS_PER_CHUNK", 10**6)  # inserting when the embedder fails
    assert pipeline.source_process(source.id).result is Result.READY
    before = [(c.id, c.content_hash) for c in stored(source.id)]

    edited = handbook().replace("after dusk", "before dawn")  # every chunk changes: all are embedded again
    Source.objects.filter(id=source.id).update(content=edited, **pending_again(timezone.now()))
    embedder = get_embedder()
    real, calls = embedder.embed_documents, []

    def failing(texts):
        calls.append(len(texts))
        if len(calls) == 8:  # past the first INSERT batch's vectors
            raise RuntimeError("the model crashed")
        return real(texts)

    monkeypatch.setattr(embedder, "embed_documents", failing)
    outcome = pipeline.source_process(source.id)

    assert outcome.result is Result.FAILED and len(calls) == 8
    failed = Source.objects.get(id=source.id)
    assert failed.status == "failed" and failed.error_code == "internal_error"
    assert [(c.id, c.content_hash) for c in stored(source.id)] == before  # nothing half-written
