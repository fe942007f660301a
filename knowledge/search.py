"""Retrieval over a mind's ready chunks: `vector`, `hybrid` and `smart`.

Scores are 0–1 and comparable across queries, so `threshold` really filters:

- vector: cosine similarity of query and passage embeddings (1 − cosine distance, clipped to 0–1). A scope of up to
  EXACT_SEARCH_MAX_CHUNKS (2,000) is searched exactly; a larger one through the HNSW index filtered to the scope
  (pgvector iterative index scans, so a filtered search still fills `limit`, and an exact search if it does not).
- hybrid: a candidate pool of CANDIDATES passages from each side — vector and PostgreSQL full-text
  (`ts_rank` with length normalisation over an OR of the query's stemmed terms) — independent of `limit`; each
  candidate gets `score = 0.85 × similarity + 0.15 × text` where `text` is its full-text rank divided by the best
  rank in the pool (0–1). A convex combination of an absolute semantic score and a relative lexical one: exact
  terms (names, codes) lift a passage, but a query that matches nothing scores low everywhere, so the threshold
  still filters. (Measured on SciFact — bench/quality.py — this beat reciprocal rank fusion, which mixes in the
  weaker lexical ranking at full weight, and `ts_rank_cd`, which ranks abstracts poorly.)
- smart: hybrid over the query and its expansions (an LLM's rewrites and a hypothetical answer when an LLM is
  configured; without one, the query alone), then a rerank of the pooled candidates that adds how many of the
  query's content words each passage covers: `0.8 × best similarity + 0.1 × text + 0.1 × coverage`.
"""

import re
from dataclasses import dataclass, field

from django.db import connection, transaction

from integrations import llm
from knowledge.embeddings import get_embedder
from knowledge.models import Chunk
from minds.models import Mind

CANDIDATES = 50
# HNSW candidate list size per search (pgvector's default is 40): higher finds more of the true nearest neighbours.
EF_SEARCH = 200
# A scope of up to this many chunks is searched exactly (every distance computed): its true nearest passages, in
# about the time of an index scan (bench/retrieval.py, "Exact search of small scopes": some 4 ms per 1,000 chunks,
# 21 ms p50 at 2,000). The HNSW graph is approximate, worst for a small scope in a large index (recall@10 of a
# 2,000-chunk mind 0.95 beside 40k chunks, 0.85 beside 260k), and between vacuums a filtered scan of a small mind was
# seen to miss its live rows.
EXACT_SEARCH_MAX_CHUNKS = 2_000
TEXT_SCAN_CAP = 200  # passages containing every query term that are ranked (the planner keeps the GIN index)
VECTOR_WEIGHT = 0.85
TEXT_WEIGHT = 0.15
SMART_WEIGHTS = (0.8, 0.1, 0.1)  # similarity, text, query-word coverage
MODES = ("vector", "hybrid", "smart")
STOPWORDS = set(
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when where "
    "which who why will with does did do can could should would about into than then there these those their".split()
)


@dataclass(frozen=True)
class KnowledgeScope:
    """What a search covers: a mind's own sources, whole collections, or both.

    Both live in the same chunk table and HNSW index; the scope is one WHERE clause (OWNED below) in the same
    query as the ranking, so no chunk is copied and no result is filtered after the fact.
    """

    mind_id: str | None = None
    collection_ids: tuple[str, ...] = ()

    @classmethod
    def of_mind(cls, mind: Mind) -> "KnowledgeScope":
        """A mind's sources and those of the collections attached to it (knowledge's relation on Mind)."""
        return cls(mind.id, tuple(sorted(mind.collections.values_list("id", flat=True))))

    @classmethod
    def of_collections(cls, collection_ids) -> "KnowledgeScope":
        return cls(None, tuple(sorted(collection_ids)))

    @property
    def is_empty(self) -> bool:
        return self.mind_id is None and not self.collection_ids

    def params(self) -> dict:
        return {"mind": self.mind_id, "collections": list(self.collection_ids)}


# The chunks a scope covers, for queries whose parameters include scope.params().
OWNED = "(c.mind_id = %(mind)s OR c.collection_id = ANY(%(collections)s::text[]))"


@dataclass
class SearchHit:
    chunk: Chunk
    score: float
    vector_score: float = 0.0
    text_score: float = 0.0
    signals: dict = field(default_factory=dict)


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in vector) + "]"


def _vector_candidates(scope: KnowledgeScope, vector: list[float], limit: int) -> dict[str, float]:
    """The `limit` passages of the scope nearest to `vector`: exactly for a scope of up to EXACT_SEARCH_MAX_CHUNKS,
    through the HNSW index above that, and exactly again when the index returns fewer than asked for."""
    params = {"vector": _vector_literal(vector), "limit": limit, **scope.params()}
    with transaction.atomic(), connection.cursor() as cursor:
        rows = None
        if _holds_more_chunks_than(cursor, scope, EXACT_SEARCH_MAX_CHUNKS):
            rows = _approximate_nearest(cursor, params)
        if rows is None or len(rows) < limit:
            # Fewer than `limit` from the index: its graph missed live rows of the scope, or fewer than `limit` of
            # them are ready. The exact search answers right in both cases.
            rows = _exact_nearest(cursor, params)
    # relaxed_order may return neighbours slightly out of order; the caller sorts by score.
    return {chunk_id: max(0.0, min(1.0, 1.0 - float(distance))) for chunk_id, distance in rows}


def _holds_more_chunks_than(cursor, scope: KnowledgeScope, count: int) -> bool:
    # Counts at most count + 1 rows, through the owner indexes: a few milliseconds whatever the scope's size.
    cursor.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM knowledge_chunk c WHERE {OWNED} LIMIT %(cap)s) AS scoped",
        {"cap": count + 1, **scope.params()},
    )
    return cursor.fetchone()[0] > count


def _approximate_nearest(cursor, params: dict) -> list[tuple[str, float]]:
    # SET LOCAL: only for this transaction, so pooled connections are not left altered.
    cursor.execute(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, params['limit'])}")
    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    cursor.execute(
        f"""
        SELECT c.id, c.embedding <=> %(vector)s::vector AS distance
        FROM knowledge_chunk c JOIN knowledge_source s ON s.id = c.source_id
        WHERE {OWNED} AND s.status = 'ready'
        ORDER BY c.embedding <=> %(vector)s::vector
        LIMIT %(limit)s
        """,
        params,
    )
    return cursor.fetchall()


def _exact_nearest(cursor, params: dict) -> list[tuple[str, float]]:
    # Every distance of the scope computed in a materialized CTE, then sorted: the planner cannot turn this ORDER BY
    # into an HNSW index scan, whatever its statistics say about the scope's size.
    cursor.execute(
        f"""
        WITH scored AS MATERIALIZED (
            SELECT c.id, c.embedding <=> %(vector)s::vector AS distance
            FROM knowledge_chunk c JOIN knowledge_source s ON s.id = c.source_id
            WHERE {OWNED} AND s.status = 'ready'
        )
        SELECT id, distance FROM scored ORDER BY distance LIMIT %(limit)s
        """,
        params,
    )
    return cursor.fetchall()


def _text_candidates(scope: KnowledgeScope, query: str, limit: int, pool: list[str]) -> dict[str, float]:
    """Full-text rank (over an OR of the query's stemmed terms) for two sets of passages:

    - those containing all of the query's terms, found through the GIN index: the strong lexical matches (names,
      codes, exact phrases), whatever their embedding says;
    - the vector candidates (`pool`), so passages sharing some of the words are lifted among the semantic ones.

    Ranking every passage that shares any one word with the query would read most of a big mind on every search
    (a sequential scan: 30 ms at 100k chunks) for little gain; this keeps the text side at a few milliseconds.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH q AS (
                SELECT plainto_tsquery('english', %(query)s) AS all_terms,
                       NULLIF(replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | '), '')::tsquery AS any_term
            ),
            matches AS MATERIALIZED (
                (SELECT c.id FROM knowledge_chunk c, q
                 WHERE q.any_term IS NOT NULL AND {OWNED} AND c.search_vector @@ q.all_terms
                 LIMIT %(cap)s)
                UNION
                SELECT unnest(%(pool)s::text[])
            )
            SELECT c.id, ts_rank(c.search_vector, q.any_term, 1) AS rank
            FROM matches m JOIN knowledge_chunk c ON c.id = m.id JOIN knowledge_source s ON s.id = c.source_id, q
            WHERE s.status = 'ready' AND {OWNED} AND ts_rank(c.search_vector, q.any_term, 1) > 0
            ORDER BY rank DESC
            LIMIT %(limit)s
            """,
            {"query": query, "cap": TEXT_SCAN_CAP, "limit": limit, "pool": pool, **scope.params()},
        )
        return {chunk_id: float(rank) for chunk_id, rank in cursor.fetchall()}


def _similarities(scope: KnowledgeScope, chunk_ids: list[str], vector: list[float]) -> dict[str, float]:
    """Exact similarity for candidates the vector side did not return (text-only hits)."""
    if not chunk_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, c.embedding <=> %(vector)s::vector FROM knowledge_chunk c WHERE {OWNED} AND c.id = ANY(%(ids)s)",
            {"vector": _vector_literal(vector), "ids": chunk_ids, **scope.params()},
        )
        return {chunk_id: max(0.0, min(1.0, 1.0 - float(d))) for chunk_id, d in cursor.fetchall()}


def _load(hits: list[SearchHit]) -> list[SearchHit]:
    chunks = Chunk.objects.select_related("source").in_bulk([h.chunk for h in hits])
    loaded = []
    for hit in hits:
        chunk = chunks.get(hit.chunk)
        if chunk is not None:
            hit.chunk = chunk
            loaded.append(hit)
    return loaded


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and len(w) > 1}


def _hybrid_pool(scope: KnowledgeScope, query: str, vector: list[float], pool: int) -> list[SearchHit]:
    vector_scores = _vector_candidates(scope, vector, pool)
    text_ranks = _text_candidates(scope, query, pool, list(vector_scores))
    missing = [cid for cid in text_ranks if cid not in vector_scores]
    vector_scores.update(_similarities(scope, missing, vector))
    best_text = max(text_ranks.values(), default=0.0) or 1.0
    hits = []
    for chunk_id, similarity in vector_scores.items():
        text = text_ranks.get(chunk_id, 0.0) / best_text
        hits.append(SearchHit(chunk_id, VECTOR_WEIGHT * similarity + TEXT_WEIGHT * text, similarity, text))
    return hits


def search_chunks(
    *,
    mind: Mind | None = None,
    scope: KnowledgeScope | None = None,
    query: str,
    limit: int = 5,
    threshold: float = 0.3,
    mode: str = "hybrid",
    expansions: list[str] | None = None,
) -> list[SearchHit]:
    """The best passages for `query` within `scope`; a `mind` alone means its own sources and attached collections."""
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    if scope is None:
        if mind is None:
            raise ValueError("search_chunks needs a mind or a scope")
        scope = KnowledgeScope.of_mind(mind)
    if scope.is_empty:
        return []
    embedder = get_embedder()
    vector = embedder.embed_query(query)
    if mode == "vector":
        scores = _vector_candidates(scope, vector, max(limit, 1))
        hits = [SearchHit(cid, s, s, 0.0) for cid, s in scores.items()]
    elif mode == "hybrid":
        hits = _hybrid_pool(scope, query, vector, CANDIDATES)
    else:
        hits = _smart(scope, query, vector, expansions if expansions is not None else expand_query(query))
    hits = [h for h in hits if h.score >= threshold]
    hits.sort(key=lambda h: (-h.score, h.chunk))
    return _load(hits[:limit])


def _smart(scope: KnowledgeScope, query: str, vector: list[float], expansions: list[str]) -> list[SearchHit]:
    embedder = get_embedder()
    pooled: dict[str, SearchHit] = {h.chunk: h for h in _hybrid_pool(scope, query, vector, CANDIDATES * 2)}
    extra_vectors = embedder.embed_documents(expansions) if expansions else []
    for text, extra in zip(expansions, extra_vectors, strict=True):
        for hit in _hybrid_pool(scope, text, extra, CANDIDATES):
            current = pooled.get(hit.chunk)
            if current is None or hit.vector_score > current.vector_score:
                hit.text_score = max(hit.text_score, current.text_score if current else 0.0)
                pooled[hit.chunk] = hit
    if not pooled:
        return []
    contents = dict(Chunk.objects.filter(id__in=list(pooled)).values_list("id", "content"))
    wanted = content_words(query)
    for chunk_id, hit in pooled.items():
        coverage = len(wanted & content_words(contents.get(chunk_id, ""))) / len(wanted) if wanted else 0.0
        hit.signals["coverage"] = coverage
        w_vector, w_text, w_coverage = SMART_WEIGHTS
        hit.score = w_vector * hit.vector_score + w_text * hit.text_score + w_coverage * coverage
    return list(pooled.values())


def expand_query(query: str) -> list[str]:
    """Alternative phrasings from the configured LLM; none without one (smart then = hybrid + rerank)."""
    if not llm.is_configured():
        return []
    return llm.expand_query(query)
