"""Retrieval and answer quality on public benchmarks, against a BM25 baseline computed in the same run.

SciFact (corpus_train: 5,183 abstracts; claims_train with cited_doc_ids as the relevant documents): nDCG@10 and
recall@100 for `vector`, `hybrid`, `smart` and BM25 (k1=0.9, b=0.4, the Anserini defaults BEIR reports).
XQuAD-en (48 articles, 240 paragraphs, 1,190 questions): answer-paragraph hit@1 and hit@5 (hybrid), and for the
offline extractive chat, the share of answers whose first citation is a passage holding the gold answer span.

Each figure is measured for both local embedding runtimes in the same run, side by side: `torch` (the model through
sentence-transformers, before issue 13) and `onnx-int8` (its int8 ONNX export, the default), each indexing the
corpus into its own mind and embedding its own queries.

Usage: .venv/bin/python bench/quality.py [--claims N] [--docs N] [--questions N] [--runtimes torch,onnx-int8]
       [--write docs/bench/quality.md]
"""

import argparse
import ast
import csv
import io
import json
import math
import re
import time
import zipfile
from collections import Counter
from contextlib import contextmanager

from common import SCIFACT, XQUAD, bench_data, machine, publish, use_bench_database
from corpora import index_documents

STOP = set(
    "a an and are as at be by for from has have in is it its of on or that the this to was were with".split()
)


def tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOP]


class BM25:
    def __init__(self, docs: dict[str, str], k1: float = 0.9, b: float = 0.4):
        self.k1, self.b = k1, b
        self.tf = {key: Counter(tokens(text)) for key, text in docs.items()}
        self.len = {key: sum(tf.values()) for key, tf in self.tf.items()}
        self.avg = sum(self.len.values()) / len(self.len)
        df = Counter(term for tf in self.tf.values() for term in tf)
        n = len(docs)
        self.idf = {term: math.log(1 + (n - d + 0.5) / (d + 0.5)) for term, d in df.items()}
        self.postings: dict[str, list[str]] = {}
        for key, tf in self.tf.items():
            for term in tf:
                self.postings.setdefault(term, []).append(key)

    def search(self, query: str, k: int) -> list[str]:
        scores: Counter = Counter()
        for term in set(tokens(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for key in self.postings[term]:
                f = self.tf[key][term]
                scores[key] += (
                    idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.len[key] / self.avg))
                )
        return [key for key, _ in scores.most_common(k)]


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, key in enumerate(ranked[:10]) if key in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def scifact():
    (path,) = bench_data(SCIFACT)
    with zipfile.ZipFile(path) as archive:
        corpus = list(csv.DictReader(io.TextIOWrapper(archive.open("corpus_train.csv"), encoding="utf-8")))
        claims = list(csv.DictReader(io.TextIOWrapper(archive.open("claims_train.csv"), encoding="utf-8")))
    docs = {}
    for row in corpus:
        try:
            sentences = ast.literal_eval(row["abstract"].replace("'\n '", "', '").replace('"\n "', '", "'))
        except (ValueError, SyntaxError):
            sentences = [row["abstract"]]
        docs[row["doc_id"]] = (
            row["title"],
            " ".join(sentences) if isinstance(sentences, (list, tuple)) else str(sentences),
        )
    queries = {}
    for row in claims:
        cited = set(re.findall(r"\d+", row["cited_doc_ids"])) & set(docs)
        if cited and row["id"] not in queries:
            queries[row["id"]] = (row["claim"], cited)
    return docs, queries


def fresh_mind(name: str):
    from accounts.models import Workspace
    from minds.models import Mind

    Workspace.objects.filter(name=f"bench-{name}").delete()
    workspace = Workspace.objects.create(
        name=f"bench-{name}", sources_limit=100_000, source_limit_per_mind=100_000
    )
    return Mind.objects.create(workspace=workspace, name=name, slug=f"bench-{name}-{int(time.time())}")


@contextmanager
def embedding_runtime(name: str):
    """Indexing and query embedding in the block use the local model through runtime `name`."""
    from django.conf import settings

    previous = settings.EMBEDDING_RUNTIME
    settings.EMBEDDING_RUNTIME = name
    try:
        yield
    finally:
        settings.EMBEDDING_RUNTIME = previous


def run_scifact(max_claims: int, max_docs: int, runtimes: list[str]) -> list[str]:
    from knowledge.search import search_chunks

    docs, queries = scifact()
    queries = dict(list(queries.items())[:max_claims])
    if max_docs < len(docs):
        # A quick run: the documents the claims cite, then others up to max_docs as distractors.
        cited = {key for _, relevant in queries.values() for key in relevant}
        keep = list(cited) + [key for key in docs if key not in cited][: max(0, max_docs - len(cited))]
        docs = {key: docs[key] for key in keep}
    bm25 = BM25({k: f"{t} {a}" for k, (t, a) in docs.items()})
    modes = ("bm25", "vector", "hybrid", "smart")
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for runtime in runtimes:
        with embedding_runtime(runtime):
            mind = fresh_mind(f"scifact-{runtime}")
            print(f"SciFact ({runtime}): indexing {len(docs)} abstracts…", flush=True)
            source_key = index_documents(
                mind, [(k, t, f"{t}\n\n{a}") for k, (t, a) in docs.items()], f"scifact-{runtime}"
            )
            results[runtime] = {}
            for mode in modes:
                ndcg, recall, started = [], [], time.perf_counter()
                for claim, relevant in queries.values():
                    if mode == "bm25":
                        ranked = bm25.search(claim, 100)
                    else:
                        hits = search_chunks(mind=mind, query=claim, limit=100, threshold=0, mode=mode)
                        ranked = list(dict.fromkeys(source_key[h.chunk.source_id] for h in hits))
                    ndcg.append(ndcg_at_10(ranked, relevant))
                    recall.append(len(set(ranked[:100]) & relevant) / len(relevant))
                elapsed = (time.perf_counter() - started) / len(queries) * 1000
                results[runtime][mode] = (sum(ndcg) / len(ndcg), sum(recall) / len(recall), elapsed)
                n, r, _ = results[runtime][mode]
                print(
                    f"  {mode:7s} nDCG@10 {n:.4f}  recall@100 {r:.4f}  ({elapsed:.0f} ms/query)", flush=True
                )
    lines = [
        f"## SciFact ({len(docs):,} abstracts, {len(queries):,} claims with cited documents)",
        "",
        "Each local runtime indexes the corpus and embeds the claims itself; Δ is the last runtime minus the first.",
        "",
        "| method | "
        + " | ".join(f"nDCG@10 {r}" for r in runtimes)
        + (" | Δ nDCG@10" if len(runtimes) > 1 else "")
        + " | "
        + " | ".join(f"recall@100 {r}" for r in runtimes)
        + " | "
        + " | ".join(f"ms/query {r}" for r in runtimes)
        + " |",
        "|---|" + "---:|" * (3 * len(runtimes) + (len(runtimes) > 1)),
    ]
    for mode in modes:
        label = {
            "bm25": "BM25 baseline (in-process)",
            "smart": "smart (no LLM configured: hybrid + rerank)",
        }.get(mode, mode)
        row = [results[r][mode] for r in runtimes]
        cells = [f"{n:.4f}" for n, _, _ in row]
        if len(runtimes) > 1:
            cells.append(f"{row[-1][0] - row[0][0]:+.4f}")
        cells += [f"{r:.4f}" for _, r, _ in row] + [f"{ms:.0f}" for _, _, ms in row]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for runtime in runtimes:
        res = results[runtime]
        best = max(("bm25", "vector"), key=lambda m: res[m][0])
        verdict = "beats" if res["hybrid"][0] > res[best][0] else "does NOT beat"
        lines.append(
            f"- {runtime}: `hybrid` {verdict} both BM25 and `vector` on nDCG@10 (best of those: {best}, "
            f"{res[best][0]:.4f})."
        )
    if len(runtimes) > 1:
        worst = max(abs(results[runtimes[-1]][m][0] - results[runtimes[0]][m][0]) for m in modes)
        lines.append(
            f"- largest |Δ nDCG@10| over the four modes: {worst:.4f} (issue 13's tolerance: 0.005) → "
            + ("within" if worst <= 0.005 else "OUTSIDE")
            + " the tolerance."
        )
    lines.append("")
    return lines


def run_xquad(max_questions: int, runtimes: list[str]) -> list[str]:
    figures = {}
    for runtime in runtimes:
        with embedding_runtime(runtime):
            figures[runtime] = xquad_figures(max_questions, runtime)
    (documents, n, _) = next(iter(figures.values()))
    labels = [
        "answer paragraph hit@1 (hybrid)",
        "answer paragraph hit@5 (hybrid)",
        "extractive chat: first citation holds the gold answer span",
        "extractive chat: the answer text itself holds the gold span",
        "time per question (search + chat, in-process), ms",
    ]
    lines = [
        f"## XQuAD-en ({documents} paragraphs, {n:,} questions)",
        "",
        "| metric | " + " | ".join(runtimes) + " |",
        "|---|" + "---:|" * len(runtimes),
    ]
    for i, label in enumerate(labels):
        cells = [f"{figures[r][2][i]:.0f}" if i == 4 else f"{figures[r][2][i]:.3f}" for r in runtimes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def xquad_figures(max_questions: int, runtime: str) -> tuple[int, int, list[float]]:
    from conversations.chat import chat_complete
    from knowledge.models import Chunk
    from knowledge.search import search_chunks

    (path,) = bench_data(XQUAD)
    data = json.loads(path.read_text())
    documents, questions = [], []
    for article in data["data"]:
        for i, paragraph in enumerate(article["paragraphs"]):
            key = f"{article['title']}#{i}"
            documents.append((key, f"{article['title'].replace('_', ' ')} ({i + 1})", paragraph["context"]))
            for qa in paragraph["qas"]:
                questions.append((qa["question"], key, [a["text"] for a in qa["answers"]]))
    questions = questions[:max_questions]
    mind = fresh_mind(f"xquad-{runtime}")
    print(f"XQuAD ({runtime}): indexing {len(documents)} paragraphs…", flush=True)
    source_key = index_documents(mind, documents, f"xquad-{runtime}")
    hit1 = hit5 = cited_gold = answer_gold = 0
    started = time.perf_counter()
    for question, key, answers in questions:
        hits = search_chunks(mind=mind, query=question, limit=5, threshold=0, mode="hybrid")
        ranked = [source_key[h.chunk.source_id] for h in hits]
        hit1 += bool(ranked[:1] == [key])
        hit5 += key in ranked
        result = chat_complete(mind=mind, message=question)
        if result.citations:
            first = Chunk.objects.get(id=result.citations[0].chunk_id).content.lower()
            cited_gold += any(a.lower() in first for a in answers)
        answer_gold += any(a.lower() in result.content.lower() for a in answers)
    n = len(questions)
    ms = (time.perf_counter() - started) / n * 1000
    print(
        f"  hit@1 {hit1 / n:.3f} hit@5 {hit5 / n:.3f} first citation holds the gold span {cited_gold / n:.3f} "
        f"answer text holds it {answer_gold / n:.3f} ({ms:.0f} ms per search + chat)",
        flush=True,
    )
    return len(documents), n, [hit1 / n, hit5 / n, cited_gold / n, answer_gold / n, ms]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--docs", type=int, default=100_000, help="SciFact abstracts indexed (a quick run)")
    parser.add_argument(
        "--runtimes", default="torch,onnx-int8", help="local embedding runtimes, compared in order"
    )
    parser.add_argument("--write")
    args = parser.parse_args()
    runtimes = args.runtimes.split(",")
    bench_data(SCIFACT, XQUAD)  # both up front: a missing one must not surface after the SciFact run
    use_bench_database("bench_quality")
    lines = [
        "# Retrieval and answer quality",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/quality.py`"
        + (f" `--claims {args.claims}`" if args.claims < 10_000 else "")
        + (f" `--docs {args.docs}`" if args.docs < 100_000 else "")
        + (f" `--questions {args.questions}`" if args.questions < 10_000 else ""),
        "Embedding model: all-MiniLM-L6-v2 (local, 384 dims), through the runtimes "
        + ", ".join(f"`{r}`" for r in runtimes)
        + "; no LLM configured (extractive answers, smart = hybrid + rerank).",
        "",
    ]
    lines += run_scifact(args.claims, args.docs, runtimes)
    lines += run_xquad(args.questions, runtimes)
    publish(lines, args.write)


if __name__ == "__main__":
    main()
