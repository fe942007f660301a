"""Incremental re-sync: a real web page indexed, then edited by one paragraph and indexed again.

Reports how many chunks the second run reused (their vectors kept) and embedded, and both runs' times. The page
is served from a local HTTP server and fetched by the real pipeline (SSRF checks, trafilatura, chunking, the local
embedder, PostgreSQL), in this process.

Usage: .venv/bin/python bench/resync.py [--write docs/bench/resync.md]
"""

import argparse
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

from common import bench_data, git_revision, machine, publish, use_bench_database

PAGE = "html/wikipedia-duck.html"
EDIT = " A survey in 2026 counted more ducks on the river than in any year before it."


class Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(Page.body)))
        self.end_headers()
        self.wfile.write(Page.body)

    def log_message(self, *args):
        pass


def edited(html: str) -> str:
    """The page with one sentence added to its tenth paragraph."""
    paragraphs = list(re.finditer(r"</p>", html))
    cut = paragraphs[min(9, len(paragraphs) - 1)].start()
    return html[:cut] + EDIT + html[cut:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write")
    args = parser.parse_args()
    (path,) = bench_data(PAGE)
    os.environ["SSRF_ALLOW_LOOPBACK"] = "1"  # the page is served on loopback
    use_bench_database("minds_bench_resync")
    from accounts.models import Workspace
    from knowledge.embeddings import get_embedder
    from knowledge.models import Source
    from knowledge.pipeline import source_process
    from knowledge.services import source_create, source_reprocess
    from minds.models import Mind

    original = path.read_text(encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/duck"
    get_embedder().embed_query("warm up")  # the model's load is not part of either run
    Workspace.objects.filter(name="Resync bench").delete()
    workspace = Workspace.objects.create(name="Resync bench")
    mind = Mind.objects.create(workspace=workspace, name="Ducks", slug="ducks")
    with mock.patch("knowledge.services.source_enqueue"):  # run in this process, not through a worker
        source = source_create(mind=mind, kind="url", url=url)
        Page.body = original.encode()
        started = time.perf_counter()
        source_process(source.id)
        first_seconds = time.perf_counter() - started
        first = Source.objects.get(id=source.id)
        Page.body = edited(original).encode()
        source_reprocess(source=first)
        started = time.perf_counter()
        source_process(source.id)
        second_seconds = time.perf_counter() - started
    second = Source.objects.get(id=source.id)
    server.shutdown()
    assert first.status == second.status == "ready", (first.error_message, second.error_message)
    reused, embedded = second.metadata["reusedChunks"], second.metadata["embeddedChunks"]
    publish(
        [
            "# Incremental re-sync",
            "",
            f"Machine: {machine()}. Revision {git_revision()}. Command: `.venv/bin/python bench/resync.py`",
            "",
            f"Page: `{PAGE}` ({len(original) // 1024} KB of HTML), edited by one sentence in its tenth paragraph.",
            "",
            "| Run | Chunks | Reused | Embedded | Time |",
            "|---|---|---|---|---|",
            f"| first | {first.chunk_count} | 0 | {first.metadata['embeddedChunks']} | {first_seconds:.2f} s |",
            f"| after the edit | {second.chunk_count} | {reused} | {embedded} | {second_seconds:.2f} s |",
            "",
            f"Reuse ratio: {reused / second.chunk_count:.1%} of the chunks kept their vectors.",
        ],
        args.write,
    )


if __name__ == "__main__":
    main()
