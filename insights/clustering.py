"""Groups the questions the knowledge could not answer by meaning, so the owner sees what to add.

The questions are embedded in-process by the local all-MiniLM-L6-v2 model (knowledge.embeddings, the runtime of
EMBEDDING_RUNTIME), never through an embeddings API, so a read of the insights costs nothing and sends no visitor's
question anywhere, whatever EMBEDDING_BACKEND the knowledge uses. The vectors are normalised, so a dot product is
the cosine.

The clustering is greedy (leader) clustering on the cosine with each group's centroid: the distinct questions are
taken most asked first (then most recent), and each joins the group whose centroid is nearest if that cosine is at
least SIMILARITY_THRESHOLD, or starts a new group. On this model paraphrases of one question ("When are you
open?", "What are your opening hours?") score 0.68–0.81 with each other and unrelated questions below 0.35, so 0.6
keeps paraphrases together and different needs apart. The representative is the group's question nearest its
final centroid. Deterministic: the same questions in the same order give the same groups.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from knowledge.embeddings import get_local_embedder

SIMILARITY_THRESHOLD = 0.6
EXAMPLES_PER_GROUP = 5
# Vectors of questions already embedded, by text: the same questions come back on every read of the insights.
# 384 float32 each, so 5,000 entries hold about 8 MB.
CACHE_SIZE = 5000
EMBED_CHARS = 1000  # the model reads 256 tokens at most; no need to tokenize a pasted essay whole

_cache: OrderedDict[str, object] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass
class Question:
    text: str
    asked_at: datetime


@dataclass
class QuestionGroup:
    representative: str
    count: int
    examples: list[str]
    last_asked_at: datetime
    members: list[str] = field(default_factory=list, repr=False)


def normalized(text: str) -> str:
    """The form two askings of one question share: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def embed(texts: list[str]):
    """A (len(texts), 384) array of unit vectors, from the cache where it has them."""
    import numpy as np

    with _cache_lock:
        known = {text: _cache[text] for text in texts if text in _cache}
        for text in known:
            _cache.move_to_end(text)
    missing = [text for text in dict.fromkeys(texts) if text not in known]
    if missing:
        vectors = get_local_embedder().embed_documents([text[:EMBED_CHARS] for text in missing])
        fresh = {
            text: np.asarray(vector, dtype=np.float32) for text, vector in zip(missing, vectors, strict=True)
        }
        known.update(fresh)
        with _cache_lock:
            _cache.update(fresh)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([known[text] for text in texts])


def group_questions(
    questions: list[Question], threshold: float = SIMILARITY_THRESHOLD
) -> list[QuestionGroup]:
    """The questions in groups of one meaning, most asked first."""
    import numpy as np

    # Distinct questions: one vector for every asking of the same words.
    distinct: dict[str, dict] = {}
    for question in questions:
        text = " ".join(question.text.split())
        if not text:
            continue
        entry = distinct.setdefault(normalized(text), {"text": text, "count": 0, "last": question.asked_at})
        entry["count"] += 1
        if question.asked_at > entry["last"]:
            entry["last"], entry["text"] = question.asked_at, text
    entries = sorted(distinct.values(), key=lambda e: (-e["count"], -e["last"].timestamp(), e["text"]))
    if not entries:
        return []
    vectors = embed([entry["text"] for entry in entries])
    sums: list = []  # each group's sum of member vectors, weighted by askings
    members: list[list[int]] = []
    for index, vector in enumerate(vectors):
        best, best_score = -1, threshold
        if sums:
            centroids = np.stack(sums)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            scores = centroids @ vector
            candidate = int(np.argmax(scores))
            if scores[candidate] >= best_score:
                best, best_score = candidate, float(scores[candidate])
        weight = entries[index]["count"]
        if best < 0:
            sums.append(vector * weight)
            members.append([index])
        else:
            sums[best] = sums[best] + vector * weight
            members[best].append(index)
    groups = []
    for total, indexes in zip(sums, members, strict=True):
        centroid = total / max(float(np.linalg.norm(total)), 1e-12)
        nearest = max(indexes, key=lambda i: (float(vectors[i] @ centroid), entries[i]["count"]))
        recent = sorted(indexes, key=lambda i: entries[i]["last"], reverse=True)
        groups.append(
            QuestionGroup(
                representative=entries[nearest]["text"],
                count=sum(entries[i]["count"] for i in indexes),
                examples=[entries[i]["text"] for i in recent[:EXAMPLES_PER_GROUP]],
                last_asked_at=entries[recent[0]]["last"],
                members=[entries[i]["text"] for i in indexes],
            )
        )
    groups.sort(key=lambda g: (-g.count, -g.last_asked_at.timestamp(), g.representative))
    return groups
