"""Embedding a source's passages in a background thread, in order, so indexing can store the first ones while the
last are still being embedded.

Storing a long PDF's chunks takes seconds (PostgreSQL maintains the HNSW and full-text indexes row by row), and the
model's threads release the GIL. knowledge/indexing.py therefore opens its storing transaction when the embedding
that remains would take about as long as the insert, and writes each batch of chunks as soon as its vectors exist:
the transaction (and its lock on the source row) lasts as long as before, and the insert no longer adds to the
processing time. `EmbeddingStream` is that producer: `wait_until` paces the caller, `vectors_until` hands out the
vectors as they come, and an error of the embedder is raised in the caller's thread.
"""

import threading
import time

from knowledge.embeddings import Embedder

# Texts per call of the embedder: large enough to keep its threads busy, small enough that the first vectors come
# soon and the stream stops quickly when the stage is abandoned.
BLOCK = 32


class EmbeddingStream:
    def __init__(self, embedder: Embedder, texts: list[str]):
        self._embedder = embedder
        self._texts = texts
        self._vectors: list[list[float]] = []
        self._error: BaseException | None = None
        self._stopped = False
        self._condition = threading.Condition()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="embedding-stream", daemon=True)

    def __enter__(self) -> "EmbeddingStream":
        self._started = time.monotonic()
        if self._texts:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        # The stage is done or failed: the thread stops after the block it is embedding.
        with self._condition:
            self._stopped = True
        if self._thread.is_alive():
            self._thread.join()

    def wait_until(self, seconds_left: float) -> None:
        """Returns once the remaining texts should take at most `seconds_left` to embed, at the pace so far (or
        all are embedded)."""
        with self._condition:
            while self._error is None and self._seconds_left() > seconds_left:
                self._condition.wait()
            self._raise()

    def _seconds_left(self) -> float:
        done = len(self._vectors)
        if done >= len(self._texts):
            return 0.0
        if not done:
            return float("inf")
        pace = (time.monotonic() - self._started) / done
        return pace * (len(self._texts) - done)

    def vectors_until(self, count: int) -> list[list[float]]:
        """The vectors of the first `count` texts, waiting for them."""
        with self._condition:
            while self._error is None and len(self._vectors) < count:
                self._condition.wait()
            if len(self._vectors) < count:  # they will never come
                self._raise()
            return self._vectors[:count]

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        for start in range(0, len(self._texts), BLOCK):
            with self._condition:
                if self._stopped:
                    return
            try:
                block = self._embedder.embed_documents(self._texts[start : start + BLOCK])
            except BaseException as exc:  # raised again in the caller's thread
                with self._condition:
                    self._error = exc
                    self._condition.notify_all()
                return
            with self._condition:
                self._vectors.extend(block)
                self._condition.notify_all()
