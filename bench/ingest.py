"""Ingestion benchmark through the real pipeline: API services → Redis → a real Celery worker → pgvector.

Measures, on a dedicated database (`bench_ingest` on the embedded PostgreSQL unless DATABASE_URL names a server):
  1. a long real-text PDF (default 500 pages of SciFact abstracts): pages/min, words/min, chunks/s, peak worker RSS,
     and the ratio of processing time to pure embedding time for the same chunks (target ≤ 1.10), once per local
     embedding runtime, side by side: `torch` (before issue 13) and `onnx-int8` (the default), each with a fresh worker;
  2. a batch of small documents (SciFact abstracts as TXT plus the corpus' Markdown/DOCX/PDF): documents/min;
  3. audio: real time factor of transcription with the default model (target ≤ 0.15).
Sections 2 and 3 run with the last runtime of --runtimes.

Usage: .venv/bin/python bench/ingest.py [--pages 500] [--small 40] [--runtimes torch,onnx-int8]
       [--write docs/bench/ingest.md]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, SCIFACT, bench_data, machine, scifact_abstracts, use_bench_database
from pdfwriter import write_text_pdf

BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
SMALL_DOCUMENTS = [
    "markdown/pgvector-README.md",
    "docx/word_sample-headings-table-image.docx",
    "pdf/two-column-lorem.pdf",
]
AUDIO = ["audio/sense_and_sensibility_01_austen_64kb-0870.wav", "audio/jfk.flac"]


class Worker:
    """A real worker (solo pool: one process, so its RSS is the whole cost) with an RSS sampler."""

    def __init__(self, runtime: str):
        env = {**os.environ, "REDIS_URL": BENCH_REDIS, "DB_CONN_MAX_AGE": "0", "EMBEDDING_RUNTIME": runtime}
        self.log = open(ROOT / ".data" / "bench-worker.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-l",
                "warning",
                "-Q",
                "default,ingestion,transcription,webhooks",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        status = Path(f"/proc/{self.proc.pid}/status")
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
            except OSError:
                pass
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """The worker's CPU time so far (user + system, all its threads): unlike wall time, what other work on the
        machine does not inflate."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settled_cpu_seconds(self, timeout: float = 120) -> float:
        """cpu_seconds once the worker's start-up is over (its CPU time stands still for a second)."""
        deadline = time.monotonic() + timeout
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(1)
            now = self.cpu_seconds()
            if now - last < 0.05:
                return now
            last = now
        return last

    def stop(self):
        self._stop.set()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def submit_file(mind, path: Path) -> str:
    from django.core.files import File

    from knowledge import services
    from knowledge.serializers import file_url

    with path.open("rb") as handle:
        upload = services.upload_create(mind=mind, file=File(handle, name=path.name))
    kind = "podcast" if upload.category == "audio" else "document"
    return services.source_create(mind=mind, kind=kind, file_url=file_url(upload), name=path.name).id


def wait_all(ids: list[str], timeout: float = 3600):
    from knowledge.models import Source

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sources = list(Source.objects.filter(id__in=ids))
        if all(s.status in ("ready", "failed") for s in sources):
            return sources
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {ids}")


def fresh_mind(name: str):
    from accounts.models import Workspace
    from minds.models import Mind

    Workspace.objects.filter(name="bench-ingest").delete()
    workspace = Workspace.objects.create(
        name="bench-ingest", sources_limit=10_000, source_limit_per_mind=10_000
    )
    return Mind.objects.create(workspace=workspace, name=name, slug=f"bench-{int(time.time())}")


def pure_embedding_seconds(source, runtime: str) -> float:
    """Embeds the same chunk texts in this process with the same model and runtime: the physical floor of the
    pipeline."""
    from django.conf import settings

    from knowledge.embeddings import get_embedder
    from knowledge.indexing import embedding_text

    settings.EMBEDDING_RUNTIME = runtime

    chunks = list(source.chunks.order_by("ordinal"))
    title = source.metadata.get("title") or source.name
    texts = [embedding_text(title, c.heading_path, c.content) for c in chunks]
    embedder = get_embedder()
    embedder.embed_documents(texts[:8])  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    embedder.embed_documents(texts)
    return time.perf_counter() - started, time.process_time() - cpu


def long_pdf_table(pages: int, words: int, size: int, figures: dict) -> list[str]:
    """One column per runtime: (source, processing seconds, pure embedding seconds, peak worker RSS in MB, worker
    CPU seconds for the source, CPU seconds of the pure embedding)."""
    runtimes = list(figures)
    rows = [
        ("processing time (claimed → ready), s", lambda b, s, e, r, c, ec: f"{s:.1f}"),
        ("pages/min (target ≥ 450)", lambda b, s, e, r, c, ec: f"{pages / s * 60:,.0f}"),
        ("words/min", lambda b, s, e, r, c, ec: f"{words / s * 60:,.0f}"),
        ("chunks/s", lambda b, s, e, r, c, ec: f"{b.chunk_count / s:.1f}"),
        ("pure embedding of the same chunks, s", lambda b, s, e, r, c, ec: f"{e:.1f}"),
        ("ratio processing / pure embedding (target ≤ 1.10)", lambda b, s, e, r, c, ec: f"{s / e:.2f}"),
        ("worker CPU time for the source, s", lambda b, s, e, r, c, ec: f"{c:.1f}"),
        ("CPU time of the pure embedding, s", lambda b, s, e, r, c, ec: f"{ec:.1f}"),
        ("ratio of CPU times, processing / pure embedding", lambda b, s, e, r, c, ec: f"{c / ec:.2f}"),
        ("peak worker RSS, MB (target < 1024)", lambda b, s, e, r, c, ec: f"{r:,.0f}"),
    ]
    big = figures[runtimes[0]][0]
    lines = [
        f"## Long PDF: {pages} pages, {words:,} words ({size / 2**20:.1f} MB), "
        f"{big.chunk_count} chunks, {big.token_count:,} tokens",
        "",
        "| | " + " | ".join(runtimes) + " |",
        "|---|" + "---:|" * len(runtimes),
    ]
    lines += [
        f"| {label} | " + " | ".join(cell(*figures[r]) for r in runtimes) + " |" for label, cell in rows
    ]
    if len(runtimes) > 1:
        first, last = figures[runtimes[0]][1], figures[runtimes[-1]][1]
        lines += [
            "",
            f"Speed-up of `{runtimes[-1]}` over `{runtimes[0]}` on the whole PDF: {first / last:.2f}×.",
        ]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--audio-only", action="store_true", help="only the audio section")
    parser.add_argument(
        "--runtimes", default="torch,onnx-int8", help="local embedding runtimes, compared in order"
    )
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()
    runtimes = args.runtimes.split(",")

    # Every data file up front (BENCH_DATA): a missing one must not surface after the long PDF has run.
    bench_data(*(AUDIO if args.audio_only else [SCIFACT, *SMALL_DOCUMENTS, *AUDIO]))
    use_bench_database("bench_ingest")
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()
    os.environ["REDIS_URL"] = BENCH_REDIS
    from django.conf import settings

    settings.CELERY_BROKER_URL = BENCH_REDIS
    from config.celery import app

    app.conf.broker_url = BENCH_REDIS

    lines = [
        f"Machine: {machine()}",
        f"Command: `.venv/bin/python bench/ingest.py --pages {args.pages} --small {args.small}`",
        "",
    ]
    worker = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.audio_only:
                abstracts = scifact_abstracts()
                # 1. the long PDF, once per runtime, each in a worker of its own (its RSS is that runtime's)
                pdf = Path(tmp) / "scifact-long.pdf"
                words = write_text_pdf(str(pdf), [a for _, a in abstracts], pages=args.pages)
                figures = {}
                for runtime in runtimes:
                    if worker:
                        worker.stop()
                    worker = Worker(runtime)
                    mind = fresh_mind("bench long pdf")
                    # The worker is idle but for this source (solo pool): its CPU time across it is the source's.
                    cpu_before = worker.settled_cpu_seconds()
                    (big,) = wait_all([submit_file(mind, pdf)])
                    worker_cpu = worker.cpu_seconds() - cpu_before
                    assert big.status == "ready", (big.error_code, big.error_message)
                    seconds = (big.ready_at - big.processing_started_at).total_seconds()
                    embedding, embedding_cpu = pure_embedding_seconds(big, runtime)
                    figures[runtime] = (
                        big,
                        seconds,
                        embedding,
                        worker.peak_rss_mb,
                        worker_cpu,
                        embedding_cpu,
                    )
                    print(
                        f"{runtime}: {seconds:.1f} s, {args.pages / seconds * 60:,.0f} pages/min; CPU time "
                        f"{worker_cpu:.1f} s vs {embedding_cpu:.1f} s of pure embedding "
                        f"(ratio {worker_cpu / embedding_cpu:.2f})",
                        flush=True,
                    )
                lines += long_pdf_table(args.pages, words, pdf.stat().st_size, figures)
                print("\n".join(lines), flush=True)

                # 2. a batch of small documents
                small_dir = Path(tmp) / "small"
                small_dir.mkdir()
                files = []
                for i, (title, text) in enumerate(abstracts[1000 : 1000 + args.small]):
                    path = small_dir / f"abstract-{i:03d}.txt"
                    path.write_text(f"{title}\n\n{text}\n")
                    files.append(path)
                files += bench_data(*SMALL_DOCUMENTS)
                mind = fresh_mind("bench small docs")
                started = time.perf_counter()
                ids = [submit_file(mind, f) for f in files]
                sources = wait_all(ids)
                elapsed = time.perf_counter() - started
                ready = sum(s.status == "ready" for s in sources)
                chunks = sum(s.chunk_count for s in sources)
                batch = [
                    f"## Batch of {len(files)} small documents",
                    f"- {ready}/{len(files)} ready in {elapsed:.1f} s (submit → all finished): {len(files) / elapsed * 60:.0f} documents/min, {chunks / elapsed:.1f} chunks/s",
                    "",
                ]
                print("\n".join(batch), flush=True)
                lines += batch

            # 3. audio
            worker = worker or Worker(runtimes[-1])
            mind = fresh_mind("bench audio")
            audio = bench_data(*AUDIO)
            sources = wait_all([submit_file(mind, f) for f in audio])
            section = ["## Audio transcription (default model: whisper tiny.en, int8, CPU)"]
            for source in sources:
                spent = (source.ready_at - source.transcribing_started_at).total_seconds()
                rtf = spent / source.duration_seconds if source.duration_seconds else float("nan")
                section.append(
                    f"- {source.name}: {source.duration_seconds:.1f} s of audio, transcribed+indexed in {spent:.2f} s "
                    f"→ {rtf:.3f} × real time (target ≤ 0.15; includes the first model load when first)"
                )
            # Transcription alone, model already loaded (the figures above include queueing, chunking, embedding).
            from knowledge.extractors.audio import transcribe

            transcribe(str(audio[1]))  # load the model
            for path in audio:
                started = time.perf_counter()
                result = transcribe(str(path))
                spent = time.perf_counter() - started
                section.append(
                    f"- transcription alone, {path.name}: {spent:.2f} s for {result.duration_seconds:.1f} s "
                    f"→ {spent / result.duration_seconds:.3f} × real time"
                )
            section += [
                "",
                f"Peak worker RSS over the whole run (the speech model loads after the PDF): {worker.peak_rss_mb:,.0f} MB",
            ]
            print("\n".join(section), flush=True)
            lines += section
    finally:
        if worker:
            worker.stop()
    if args.write:
        Path(args.write).write_text("# Ingestion benchmark\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
