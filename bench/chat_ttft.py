"""Chat time to first token as a client sees it: over HTTP, through the production server (gunicorn gthread),
Server-Sent Events, with a fake OpenAI-compatible LLM on loopback.

bench/retrieval.py measures the same path in-process; this adds the HTTP layer (auth, rate limit, streaming
response) and checks that the stream is really incremental under gunicorn: with an LLM that takes ~1 s to write
its answer, the first `token` event must reach the client long before the last one.

Runs:
  * instant LLM (answers at once) — our own overhead: request → first `event: token` byte, and → `done`;
  * no LLM configured (extractive answer from the passages) — same figures;
  * slow LLM (10 pieces 100 ms apart) — first token vs last token at the client (buffering check).
The mind holds 10,000 chunks (2,000 real SciFact abstracts, embedded once and cached, copied with perturbed
vectors exactly as in bench/retrieval.py) among 20,000 chunks of another mind. Questions: SciFact claims.

Usage: .venv/bin/python bench/chat_ttft.py [--questions 100] [--write docs/bench/chat.md]
"""

import argparse
import csv
import http.client
import io
import json
import os
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from common import SCIFACT, bench_data, machine, publish, scifact_abstracts, use_bench_database
from corpora import embed_cached
from retrieval import copy_chunks, percentiles, rebuild_indexes
from server import Gunicorn

MIND_CHUNKS = 10_000
OTHER_CHUNKS = 20_000


class FakeLLM(BaseHTTPRequestHandler):
    """OpenAI-compatible /v1/chat/completions. `server.pieces` streamed pieces, `server.gap` seconds apart."""

    protocol_version = (
        "HTTP/1.0"  # the body ends when the connection closes: no length needed while streaming
    )

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not body.get("stream"):  # follow-up suggestions
            payload = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": '["Next?"]'},
                        "finish_reason": "stop",
                    }
                ],
            }
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for n in range(self.server.pieces):
            if n and self.server.gap:
                time.sleep(self.server.gap)
            text = "The passage says so [1]. " if n == 0 else f"More words {n}. "
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def fake_llm(pieces: int, gap: float) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    server.pieces, server.gap = pieces, gap
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ask(port: int, key: str, mind_id: str, question: str) -> tuple[float, float, float, int]:
    """(ms to the first token event, ms to the last token event, ms to done, number of token events)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"message": question, "stream": True})
    started = time.perf_counter()
    conn.request(
        "POST",
        f"/api/v1/minds/{mind_id}/chat",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"chat failed: {response.status} {response.read()[:300]!r}")
    first = last = done = None
    tokens = 0
    while True:
        line = response.readline()
        if not line:
            break
        if line.startswith(b"event: token"):
            last = (time.perf_counter() - started) * 1000
            first = first if first is not None else last
            tokens += 1
        elif line.startswith(b"event: done"):
            done = (time.perf_counter() - started) * 1000
        elif line.startswith(b"event: error"):
            raise SystemExit(f"chat error event: {response.readline()!r}")
    conn.close()
    if first is None or done is None:
        raise SystemExit("the stream ended without tokens or done")
    return first, last, done, tokens


def run(env: dict, key: str, mind_id: str, questions: list[str]) -> list[tuple[float, float, float, int]]:
    server = Gunicorn(env)
    try:
        for question in questions[:6]:  # warm both workers (embedding model, connections)
            ask(server.port, key, mind_id, question)
        return [ask(server.port, key, mind_id, q) for q in questions]
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--write")
    args = parser.parse_args()
    (scifact,) = bench_data(SCIFACT)
    url = use_bench_database("bench_chat")
    from accounts.models import Workspace
    from apikeys.services import api_key_create
    from minds.models import Mind

    with zipfile.ZipFile(scifact) as archive:
        claims = [
            row["claim"]
            for row in csv.DictReader(io.TextIOWrapper(archive.open("claims_train.csv"), encoding="utf-8"))
        ]
    claims = list(dict.fromkeys(claims))[: args.questions + 6]
    questions = claims[6:] if len(claims) > 6 else claims

    Workspace.objects.filter(name="bench-chat").delete()
    workspace = Workspace.objects.create(name="bench-chat")
    mind = Mind.objects.create(workspace=workspace, name="Measured", slug=f"bench-chat-{int(time.time())}")
    other = Mind.objects.create(
        workspace=workspace, name="Other", slug=f"bench-chat-other-{int(time.time())}"
    )
    abstracts = scifact_abstracts(2000)
    texts = [f"{title}\n{text}"[:1500] for title, text in abstracts]
    print("embedding 2,000 real passages (cached after the first run)…", flush=True)
    vectors = embed_cached(texts, "retrieval-base")
    rng = np.random.default_rng(11)
    copy_chunks(mind, vectors, texts, MIND_CHUNKS, rng)
    copy_chunks(other, vectors, texts, OTHER_CHUNKS, rng, start=3)
    print(f"indexes built in {rebuild_indexes():.0f} s", flush=True)
    key = api_key_create(workspace=workspace, name="bench", scopes=["minds:chat"]).plaintext

    base_env = {
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "RATE_LIMIT_PER_MINUTE": "1000000000",
    }
    results = {}
    instant = fake_llm(pieces=3, gap=0)
    slow = fake_llm(pieces=10, gap=0.1)
    try:
        llm_env = lambda server: {  # noqa: E731
            **base_env,
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
        }
        results["instant LLM"] = run(llm_env(instant), key, mind.id, questions)
        results["no LLM (extractive)"] = run({**base_env, "OPENAI_API_KEY": ""}, key, mind.id, questions)
        results["slow LLM (10 pieces, 100 ms apart)"] = run(llm_env(slow), key, mind.id, questions[:20])
    finally:
        instant.shutdown()
        slow.shutdown()

    lines = [
        "# Chat time to first token over HTTP",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/chat_ttft.py --questions {args.questions}`",
        f"gunicorn 2 workers × 8 threads (gthread), one client, SSE (`stream: true`); mind of {MIND_CHUNKS:,} chunks "
        f"among {OTHER_CHUNKS:,} of another mind; SciFact claims as questions; times measured by the client from "
        "sending the request (includes auth, rate limit, conversation + message writes, question embedding, hybrid "
        "retrieval, prompt, the LLM round trip on loopback, and the follow-up suggestions before `done`).",
        "",
        "| LLM | questions | first token p50 | first token p95 | last token p50 | done p50 | done p95 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        first = percentiles([r[0] for r in rows])
        last = percentiles([r[1] for r in rows])
        done = percentiles([r[2] for r in rows])
        lines.append(
            f"| {name} | {len(rows)} | {first[0]:.1f} ms | {first[1]:.1f} ms | {last[0]:.1f} ms | "
            f"{done[0]:.1f} ms | {done[1]:.1f} ms |"
        )
        print(lines[-1], flush=True)
    slow_rows = results["slow LLM (10 pieces, 100 ms apart)"]
    gap = percentiles([r[1] - r[0] for r in slow_rows])[0]
    lines += [
        "",
        f"Streaming check: with the slow LLM the first token reaches the client {gap:.0f} ms (p50) before the last "
        "one (the LLM spends ~900 ms between its first and last piece), so neither gunicorn nor Django buffers the "
        "stream.",
        "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
