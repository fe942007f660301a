"""The local embedder alone: torch vs ONNX int8 on realistic chunks, interleaved A/B so machine noise hits both.

The chunks are SciFact abstracts cut by the product's chunker at the pipeline's size (knowledge/indexing.py), with
the title prepended as the pipeline does. Prints, per round, the seconds each runtime takes for the same texts, the
median speed-up, and how close the int8 vectors are to torch's (cosine, mean and minimum), and checks that both
count tokens identically (chunking depends on it).

Usage: .venv/bin/python bench/embedder.py [--texts 1000] [--rounds 3]
"""

import argparse
import os
import statistics
import time

import numpy as np
from common import machine, scifact_abstracts


def chunk_texts(limit: int) -> list[str]:
    from django.conf import settings

    from knowledge.chunking import chunk_segments
    from knowledge.embeddings import get_embedder
    from knowledge.extractors.text import extract_plain
    from knowledge.indexing import PREFIX_RESERVE, embedding_text

    embedder = get_embedder()
    max_tokens = min(settings.CHUNK_TOKENS, embedder.max_tokens - PREFIX_RESERVE)
    texts = []
    for title, abstract in scifact_abstracts():
        for draft in chunk_segments(extract_plain(abstract).segments, embedder.count_tokens, max_tokens, 60):
            texts.append(embedding_text(title, draft.heading_path, draft.text))
        if len(texts) >= limit:
            return texts[:limit]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="threads per runtime (default: each runtime's own choice)"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("MINDS_DEV_RUN", "1")
    import django

    django.setup()
    from knowledge import embeddings
    from knowledge.embeddings import LocalEmbedder, OnnxEmbedder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        embeddings.ONNX_THREADS = args.threads

    runtimes = {"torch": LocalEmbedder(), "onnx-int8": OnnxEmbedder()}
    texts = chunk_texts(args.texts)
    counts = {name: [e.count_tokens(t) for t in texts] for name, e in runtimes.items()}
    assert counts["torch"] == counts["onnx-int8"], "the runtimes count tokens differently"
    print(f"Machine: {machine()}")
    print(f"{len(texts)} chunks, {statistics.mean(counts['torch']):.0f} tokens on average", flush=True)
    for embedder in runtimes.values():
        embedder.embed_documents(texts[:16])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in runtimes}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in runtimes}
    vectors = {}
    for round_ in range(args.rounds):
        # Alternate which runtime goes first, so a burst of load on the machine does not favour one.
        names = list(runtimes) if round_ % 2 == 0 else list(reversed(runtimes))
        for name in names:
            started, cpu = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(runtimes[name].embed_documents(texts), dtype=np.float32)
            seconds[name].append(time.perf_counter() - started)
            cpu_seconds[name].append(time.process_time() - cpu)
        print(
            f"round {round_ + 1}: torch {seconds['torch'][-1]:.1f} s, onnx-int8 {seconds['onnx-int8'][-1]:.1f} s "
            f"→ {seconds['torch'][-1] / seconds['onnx-int8'][-1]:.2f}×; CPU time torch {cpu_seconds['torch'][-1]:.1f} s, "
            f"onnx-int8 {cpu_seconds['onnx-int8'][-1]:.1f} s → {cpu_seconds['torch'][-1] / cpu_seconds['onnx-int8'][-1]:.2f}×",
            flush=True,
        )
    ratios = [t / o for t, o in zip(seconds["torch"], seconds["onnx-int8"], strict=True)]
    cpu_ratios = [t / o for t, o in zip(cpu_seconds["torch"], cpu_seconds["onnx-int8"], strict=True)]
    cosine = (vectors["torch"] * vectors["onnx-int8"]).sum(axis=1)
    print(
        f"median speed-up {statistics.median(ratios):.2f}× (torch {statistics.median(seconds['torch']):.1f} s, "
        f"onnx-int8 {statistics.median(seconds['onnx-int8']):.1f} s for {len(texts)} chunks, provisional); "
        f"CPU time {statistics.median(cpu_ratios):.2f}×"
    )
    print(
        f"cosine(int8, torch): mean {cosine.mean():.4f}, min {cosine.min():.4f}, p1 {np.quantile(cosine, 0.01):.4f}"
    )


if __name__ == "__main__":
    main()
