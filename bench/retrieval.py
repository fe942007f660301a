"""Search latency and HNSW recall at 10k and 100k chunks in one mind, among other minds' chunks; chat overhead.

Real passages and real query embeddings: 2,000 SciFact abstracts are embedded with the product's model; the 10k /
100k chunks of the measured mind are those passages with perturbed vectors (σ=0.02 Gaussian noise per dimension,
renormalised), because
embedding 100k passages on 2 CPU cores would take over an hour; each synthetic vector mixes its passage with half
of another random passage (plus the noise), so the chunks form a continuum of related topics rather than tight
clusters of near-copies (which make "the" 10 nearest neighbours an arbitrary pick among ties). Two other minds hold 20k chunks each, so every
search is a filtered one. Queries are SciFact claims, embedded per query, inside the timed call.

Reported: p50/p95/p99 of `search_chunks` (query embedding included) for `vector` and `hybrid`; recall@10 of the
HNSW search against exact (sequential scan) nearest neighbours in the same mind; and the chat's server-side time to
first token with an instant fake LLM (OpenAI-compatible server on loopback) at 10k chunks.

Usage: .venv/bin/python bench/retrieval.py [--queries 200] [--write docs/bench/retrieval.md]
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from common import SCIFACT, bench_data, machine, publish, scifact_abstracts, use_bench_database
from corpora import embed_cached

OTHER_MINDS = 2
OTHER_CHUNKS = 20_000
SIGMA = 0.02
MIX = 0.5


def percentiles(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]  # noqa: E731
    return pick(0.50), pick(0.95), pick(0.99)


def copy_chunks(mind, base_vectors: np.ndarray, texts: list[str], count: int, rng, start: int = 0):
    """Adds `count` ready chunks to the mind with COPY (binary vectors), 1,000 per source."""
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    from config.ids import make_id
    from knowledge.models import Source

    sources = [
        Source(
            workspace_id=mind.workspace_id,
            mind=mind,
            type="text",
            name=f"synthetic {start + i}",
            status="ready",
        )
        for i in range(0, count, 1000)
    ]
    Source.objects.bulk_create(sources)
    settings = connection.settings_dict
    dsn = f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY knowledge_chunk (id, workspace_id, mind_id, source_id, ordinal, content, content_hash, token_count, "
                "embedding, embedding_model, heading_path, url, metadata, created_at) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                [
                    "text",
                    "text",
                    "text",
                    "text",
                    "int4",
                    "text",
                    "text",
                    "int4",
                    "vector",
                    "text",
                    "text",
                    "text",
                    "jsonb",
                    "timestamptz",
                ]
            )
            import datetime

            stamp = datetime.datetime.now(datetime.UTC)
            for i in range(count):
                base = (start + i) % len(base_vectors)
                other = int(rng.integers(len(base_vectors)))
                vector = (
                    base_vectors[base]
                    + MIX * base_vectors[other]
                    + rng.normal(0, SIGMA, base_vectors.shape[1]).astype(np.float32)
                )
                vector /= np.linalg.norm(vector)
                copy.write_row(
                    [
                        make_id("chk"),
                        mind.workspace_id,
                        mind.id,
                        sources[i // 1000].id,
                        i % 1000,
                        texts[base],
                        "",
                        200,
                        vector,
                        "sentence-transformers/all-MiniLM-L6-v2",
                        "",
                        "",
                        psycopg.types.json.Jsonb({}),
                        stamp,
                    ]
                )
        conn.commit()


def rebuild_indexes():
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
        cursor.execute(
            "CREATE INDEX chunk_embedding_hnsw ON knowledge_chunk USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        cursor.execute("ANALYZE knowledge_chunk")
        cursor.execute("ANALYZE knowledge_source")
    return time.perf_counter() - started


def exact_top10(mind, vector) -> list[str]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
        cursor.execute(
            "SELECT c.id FROM knowledge_chunk c JOIN knowledge_source s ON s.id = c.source_id "
            "WHERE c.mind_id = %s AND s.status = 'ready' ORDER BY c.embedding <=> %s::vector LIMIT 10",
            [mind.id, literal],
        )
        return [row[0] for row in cursor.fetchall()]


def measure(mind, claims: list[str]) -> dict:
    from knowledge.embeddings import get_embedder
    from knowledge.search import search_chunks

    results = {}
    for mode in ("vector", "hybrid"):
        search_chunks(mind=mind, query=claims[0], limit=10, threshold=0, mode=mode)  # warm
        timings = []
        for claim in claims:
            started = time.perf_counter()
            search_chunks(mind=mind, query=claim, limit=10, threshold=0, mode=mode)
            timings.append((time.perf_counter() - started) * 1000)
        results[mode] = percentiles(timings)
    recalls = []
    embedder = get_embedder()
    for claim in claims[:100]:
        approximate = [
            h.chunk.id for h in search_chunks(mind=mind, query=claim, limit=10, threshold=0, mode="vector")
        ]
        exact = exact_top10(mind, embedder.embed_query(claim))
        recalls.append(len(set(approximate) & set(exact)) / len(exact))
    results["recall"] = sum(recalls) / len(recalls)
    return results


class InstantLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that answers at once, so only our own chat overhead is measured."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("stream"):
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "An answer [1]."}, "finish_reason": None}],
            }
            payload = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            content_type = "text/event-stream"
        else:
            payload = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": '["Next?"]'},
                            "finish_reason": "stop",
                        }
                    ],
                }
            ).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def chat_ttft(mind, claims: list[str]) -> tuple[float, float]:
    from django.conf import settings

    from conversations.chat import Token, chat_stream

    server = ThreadingHTTPServer(("127.0.0.1", 0), InstantLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.OPENAI_API_KEY = "bench"
    timings = []
    try:
        for claim in claims[:100]:
            started = time.perf_counter()
            for event in chat_stream(mind=mind, message=claim):
                if isinstance(event, Token):
                    timings.append((time.perf_counter() - started) * 1000)
                    break
    finally:
        server.shutdown()
        settings.OPENAI_BASE_URL = None
        settings.OPENAI_API_KEY = ""
    p50, p95, _ = percentiles(timings)
    return p50, p95


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--write")
    args = parser.parse_args()
    (scifact,) = bench_data(SCIFACT)
    use_bench_database("bench_retrieval")
    import csv
    import io
    import zipfile

    from accounts.models import Workspace
    from minds.models import Mind

    with zipfile.ZipFile(scifact) as archive:
        claims = [
            row["claim"]
            for row in csv.DictReader(io.TextIOWrapper(archive.open("claims_train.csv"), encoding="utf-8"))
        ]
    claims = list(dict.fromkeys(claims))[: args.queries]
    abstracts = scifact_abstracts(2000)
    texts = [f"{title}\n{text}"[:1500] for title, text in abstracts]
    print("embedding 2,000 real passages (cached after the first run)…", flush=True)
    vectors = embed_cached(texts, "retrieval-base")
    rng = np.random.default_rng(7)

    Workspace.objects.filter(name="bench-retrieval").delete()
    workspace = Workspace.objects.create(name="bench-retrieval")
    target = Mind.objects.create(
        workspace=workspace, name="Measured", slug=f"bench-measured-{int(time.time())}"
    )
    for n in range(OTHER_MINDS):
        other = Mind.objects.create(
            workspace=workspace, name=f"Other {n}", slug=f"bench-other-{n}-{int(time.time())}"
        )
        copy_chunks(other, vectors, texts, OTHER_CHUNKS, rng, start=n * 7)
    lines = [
        "# Retrieval latency, recall and chat overhead",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/retrieval.py --queries {args.queries}`",
        f"Measured mind among {OTHER_MINDS} other minds of {OTHER_CHUNKS:,} chunks each; {len(claims)} SciFact claims as queries; "
        "latency = one `search_chunks` call including the query embedding, in-process (no HTTP).",
        "",
        "| chunks in the mind | mode | p50 | p95 | p99 | HNSW recall@10 vs exact | index build |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    have = 0
    ttft = None
    for scale in (10_000, 100_000):
        copy_chunks(target, vectors, texts, scale - have, rng, start=have)
        have = scale
        build = rebuild_indexes()
        result = measure(target, claims)
        for mode in ("vector", "hybrid"):
            p50, p95, p99 = result[mode]
            lines.append(
                f"| {scale:,} | {mode} | {p50:.1f} ms | {p95:.1f} ms | {p99:.1f} ms | "
                f"{result['recall']:.3f} | {build:.0f} s |"
            )
            print(lines[-1], flush=True)
        if scale == 10_000:
            ttft = chat_ttft(target, claims)
            print(f"chat time to first token at 10k: p50 {ttft[0]:.1f} ms p95 {ttft[1]:.1f} ms", flush=True)
    lines += [
        "",
        "## Chat overhead",
        "",
        f"Server-side time to first token with an instant fake LLM, 10,000 chunks, 100 questions: "
        f"p50 {ttft[0]:.1f} ms, p95 {ttft[1]:.1f} ms (target p95 ≤ 150 ms). It covers creating the conversation, saving "
        "the question, embedding it, hybrid retrieval, building the prompt and the LLM round trip on loopback.",
        "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
