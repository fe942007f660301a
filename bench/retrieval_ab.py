"""Search with and without collections at the same scope size, measured in interleaved rounds on the data
bench/retrieval.py leaves in its database, so both see the same machine state.

This machine's speed drifts by tens of percent over minutes (a shared VM), so absolute latencies of two runs are
hard to compare; interleaving the scopes round by round compares them fairly.

Usage (after bench/retrieval.py): .venv/bin/python bench/retrieval_ab.py [--rounds 3] [--queries 200]
       [--ef-search 200,400]   (each HNSW candidate list size in turn, with recall@10 against the exact neighbours)
"""

import argparse
import csv
import io
import time
import zipfile

from common import SCIFACT, bench_data, use_bench_database


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="", help="comma-separated hnsw.ef_search values to compare")
    args = parser.parse_args()
    ef_values = [int(value) for value in args.ef_search.split(",") if value]
    (scifact,) = bench_data(SCIFACT)
    use_bench_database("bench_retrieval")
    from knowledge.models import Collection
    from knowledge.search import KnowledgeScope, search_chunks
    from minds.models import Mind

    with zipfile.ZipFile(scifact) as archive:
        rows = csv.DictReader(io.TextIOWrapper(archive.open("claims_train.csv"), encoding="utf-8"))
        claims = list(dict.fromkeys(row["claim"] for row in rows))[: args.queries]
    scopes = {
        "mind only, 100,000 own": KnowledgeScope.of_mind(
            Mind.objects.filter(name="Measured").latest("created_at")
        ),
        "mind 30,000 own + collection 70,000": KnowledgeScope.of_mind(
            Mind.objects.filter(name="Reader").latest("created_at")
        ),
        "collection only, 70,000": KnowledgeScope.of_collections(
            [Collection.objects.filter(name="Library").latest("created_at").id]
        ),
    }
    search_chunks(scope=next(iter(scopes.values())), query=claims[0], limit=10, threshold=0, mode="hybrid")
    if ef_values:
        compare_ef_search(scopes, claims, ef_values, args.rounds)
        return
    print("| round | mode | scope | p50 | p95 |\n|---:|---|---|---:|---:|")
    for round_number in range(1, args.rounds + 1):
        for mode in ("vector", "hybrid"):
            for name, scope in scopes.items():
                p50, p95 = timed(search_chunks, scope, claims, mode)
                print(f"| {round_number} | {mode} | {name} | {p50:.1f} ms | {p95:.1f} ms |", flush=True)


def timed(search_chunks, scope, claims, mode) -> tuple[float, float]:
    timings = []
    for claim in claims:
        started = time.perf_counter()
        search_chunks(scope=scope, query=claim, limit=10, threshold=0, mode=mode)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return timings[len(timings) // 2], timings[int(len(timings) * 0.95) - 1]


def compare_ef_search(scopes, claims, ef_values, rounds) -> None:
    """`vector` latency and recall@10 (over the first 100 claims) per ef_search value, interleaved round by round."""
    from retrieval import exact_top10

    from knowledge import search
    from knowledge.embeddings import get_embedder

    embedder = get_embedder()
    product_value = search.EF_SEARCH
    exact = {
        name: [exact_top10(scope, embedder.embed_query(c)) for c in claims[:100]]
        for name, scope in scopes.items()
    }
    print("| ef_search | scope | p50 | p95 | recall@10 |\n|---:|---|---:|---:|---:|")
    try:
        for round_number in range(1, rounds + 1):
            for ef in ef_values:
                search.EF_SEARCH = ef
                for name, scope in scopes.items():
                    p50, p95 = timed(search.search_chunks, scope, claims, "vector")
                    found = [
                        {
                            h.chunk.id
                            for h in search.search_chunks(
                                scope=scope, query=c, limit=10, threshold=0, mode="vector"
                            )
                        }
                        for c in claims[:100]
                    ]
                    recall = sum(
                        len(f & set(e)) / len(e) for f, e in zip(found, exact[name], strict=True)
                    ) / len(found)
                    print(
                        f"| {ef} | {name} (round {round_number}) | {p50:.1f} ms | {p95:.1f} ms | {recall:.3f} |",
                        flush=True,
                    )
    finally:
        search.EF_SEARCH = product_value


if __name__ == "__main__":
    main()
