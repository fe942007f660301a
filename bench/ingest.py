"""Ingestion benchmark through the real pipeline: API services → Redis → a real Celery worker → pgvector.

Measures, on a dedicated database (`bench_ingest` on the embedded PostgreSQL unless DATABASE_URL names a server):
  1. a long real-text PDF (default 500 pages of SciFact abstracts): pages/min, words/min, chunks/s, peak worker RSS,
     and the ratio of processing time to pure embedding time for the same chunks (target ≤ 1.15);
  2. a batch of small documents (SciFact abstracts as TXT plus the corpus' Markdown/DOCX/PDF): documents/min;
  3. audio: real time factor of transcription with the default model (target ≤ 0.15).

Usage: .venv/bin/python bench/ingest.py [--pages 500] [--small 40] [--write docs/bench/ingest.md]
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

    def __init__(self):
        env = {**os.environ, "REDIS_URL": BENCH_REDIS, "DB_CONN_MAX_AGE": "0"}
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


def pure_embedding_seconds(source) -> float:
    """Embeds the same chunk texts in this process with the same model: the physical floor of the pipeline."""
    from knowledge.embeddings import get_embedder
    from knowledge.indexing import embedding_text

    chunks = list(source.chunks.order_by("ordinal"))
    title = source.metadata.get("title") or source.name
    texts = [embedding_text(title, c.heading_path, c.content) for c in chunks]
    embedder = get_embedder()
    embedder.embed_documents(texts[:8])  # warm-up
    started = time.perf_counter()
    embedder.embed_documents(texts)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--audio-only", action="store_true", help="only the audio section")
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()

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

    worker = Worker()
    lines = [
        f"Machine: {machine()}",
        f"Command: `.venv/bin/python bench/ingest.py --pages {args.pages} --small {args.small}`",
        "",
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.audio_only:
                abstracts = scifact_abstracts()
                # 1. the long PDF
                pdf = Path(tmp) / "scifact-long.pdf"
                words = write_text_pdf(str(pdf), [a for _, a in abstracts], pages=args.pages)
                mind = fresh_mind("bench long pdf")
                (big,) = wait_all([submit_file(mind, pdf)])
                assert big.status == "ready", (big.error_code, big.error_message)
                seconds = (big.ready_at - big.processing_started_at).total_seconds()
                embed = pure_embedding_seconds(big)
                lines += [
                    f"## Long PDF: {args.pages} pages, {words:,} words ({pdf.stat().st_size / 2**20:.1f} MB)",
                    f"- processing time (claimed → ready): {seconds:.1f} s",
                    f"- {args.pages / seconds * 60:,.0f} pages/min, {words / seconds * 60:,.0f} words/min",
                    f"- {big.chunk_count} chunks, {big.token_count:,} tokens: {big.chunk_count / seconds:.1f} chunks/s",
                    f"- pure embedding of the same chunks: {embed:.1f} s → ratio {seconds / embed:.2f} (target ≤ 1.15)",
                    f"- peak worker RSS so far: {worker.peak_rss_mb:,.0f} MB (target < 1024 MB)",
                    "",
                ]
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
        worker.stop()
    if args.write:
        Path(args.write).write_text("# Ingestion benchmark\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
