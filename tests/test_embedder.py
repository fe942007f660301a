"""The local embedder's two runtimes: the int8 ONNX export must stand in for torch without changing what the
vectors mean, how tokens are counted (chunking depends on it) or the order of the results; and the on-demand
export must happen once however many processes want it at the same moment."""

import threading

import numpy as np
import pytest

from knowledge import embedder_export
from knowledge.chunking import chunk_segments
from knowledge.embeddings import LocalEmbedder, OnnxEmbedder, _embedder
from knowledge.extractors.base import Segment

TEXTS = [
    "Vitamin D supplementation reduces the risk of respiratory infections in elderly patients.",
    "pgvector adds a vector type to PostgreSQL; an HNSW index answers nearest-neighbour queries.",
    "Short.",
    "Große Datenmengen, naïve café résumé — ünïcödé and emoji 🙂 are tokenized like the torch runtime does.",
    "The mitochondrial membrane potential collapses when the electron transport chain is inhibited. " * 6,
    "Q3 revenue: $4.2M (+12% YoY); EBITDA margin 18.5%. See table 7, row 3.",
    "def embed(texts):\n    return model.encode(texts)  # code, too",
    "A sentence long enough to pass the model's window of 256 tokens once repeated many times. " * 40,
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return _embedder("onnx-int8")


@pytest.fixture(scope="module")
def torch_embedder() -> LocalEmbedder:
    return _embedder("torch")


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


def test_onnx_counts_tokens_exactly_as_torch(onnx_embedder, torch_embedder):
    for text in [*TEXTS, "", "   ", "a" * 5000, "word " * 1000]:
        assert onnx_embedder.count_tokens(text) == torch_embedder.count_tokens(text), text[:40]
    assert onnx_embedder.max_tokens == torch_embedder.max_tokens == 256


def test_batched_token_counts_are_the_single_counts_and_chunk_alike(onnx_embedder, torch_embedder):
    texts = [*TEXTS, "", "   ", "a" * 5000, "word " * 1000]
    singles = [onnx_embedder.count_tokens(text) for text in texts]
    assert onnx_embedder.count_tokens_many(texts) == torch_embedder.count_tokens_many(texts) == singles
    assert onnx_embedder.count_tokens_many([]) == torch_embedder.count_tokens_many([]) == []
    segments = [Segment(text, page=1 + i // 3) for i, text in enumerate(TEXTS)]
    one_by_one = chunk_segments(segments, onnx_embedder.count_tokens, 200, 60)
    batched = chunk_segments(segments, onnx_embedder.count_tokens, 200, 60, onnx_embedder.count_tokens_many)
    assert [(d.text, d.token_count, d.page) for d in batched] == [
        (d.text, d.token_count, d.page) for d in one_by_one
    ]
    assert len(batched) > len(segments) // 3  # the long texts were split into sentences and words


def test_onnx_vectors_mean_what_torch_vectors_mean(onnx_embedder, torch_embedder):
    similarity = cosines(onnx_embedder.embed_documents(TEXTS), torch_embedder.embed_documents(TEXTS))
    assert similarity.min() > 0.98, similarity
    assert similarity.mean() > 0.99, similarity


def test_onnx_vectors_are_unit_length_and_sized_for_the_column(onnx_embedder):
    vectors = np.asarray(onnx_embedder.embed_documents(TEXTS))
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_onnx_vector_of_a_text_does_not_depend_on_the_other_texts_of_the_call(onnx_embedder):
    together = onnx_embedder.embed_documents(TEXTS)
    alone = [onnx_embedder.embed_query(text) for text in TEXTS]
    reversed_call = onnx_embedder.embed_documents(TEXTS[::-1])[::-1]
    assert np.allclose(together, alone, atol=1e-6)
    assert np.allclose(together, reversed_call, atol=1e-6)
    assert onnx_embedder.embed_documents([]) == []


def test_onnx_ranks_a_relevant_passage_above_unrelated_ones(onnx_embedder):
    query = np.asarray(onnx_embedder.embed_query("Does vitamin D prevent colds in old people?"))
    scores = np.asarray(onnx_embedder.embed_documents(TEXTS[:3])) @ query
    assert scores.argmax() == 0


def test_onnx_embeds_from_many_threads_at_once(onnx_embedder):
    expected = onnx_embedder.embed_documents(TEXTS)
    results: dict[int, list[list[float]]] = {}

    def work(i: int) -> None:
        results[i] = onnx_embedder.embed_documents(TEXTS)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == [0, 1, 2, 3]
    for vectors in results.values():
        assert np.allclose(vectors, expected, atol=1e-6)


def test_missing_model_is_exported_once_when_two_callers_want_it_at_once(tmp_path, onnx_embedder):
    paths: list = []
    errors: list = []

    def export() -> None:
        try:
            paths.append(embedder_export.export(tmp_path))
        except Exception as error:  # a failure must fail the test, not vanish in the thread
            errors.append(error)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors
    assert paths[0] == paths[1] == tmp_path / embedder_export.file_name()
    # One model file and no leftovers of the half-written ones.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [paths[0].name]
    exported = OnnxEmbedder(model_path=paths[0])
    assert cosines(exported.embed_documents(TEXTS), onnx_embedder.embed_documents(TEXTS)).min() > 0.9999
