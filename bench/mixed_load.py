"""Mixed load on the production stack: N clients for S seconds over a weighted mix of the product's endpoints.

The stack is the one production runs: gunicorn with config/gunicorn.conf.py (2 workers × 8 threads), a real Celery
worker, the embedded PostgreSQL (database `bench_load`) and Redis (BENCH_REDIS_URL, default db 9), and a fake
OpenAI-compatible LLM on loopback that streams its answer in pieces (so streams hold a server thread for a while,
as real ones do). Seeded: two private minds and two published minds per run, each with ready knowledge (real
SciFact abstracts, processed by the worker), and four API keys the clients share.

Each client is a thread with its own keep-alive connection and its own public-page visitor id; it loops until the
deadline, picking an endpoint by weight (MIX). Streams are read to the end: one that ends without its final event
(`event: done`, `{"event": "done"}`, `{"type": "done"}`, `data: [DONE]`) counts as dropped, one that ends with an
`error` event as a stream error. Uploads (multipart, a small unique Markdown file) create a document source each;
after the load the script waits for the worker to finish them.

Rate limits for the run: the per-key limits are raised out of the way (RATE_LIMIT_PER_MINUTE=10^9,
SEARCH_RATE_LIMIT_PER_MINUTE=10^6) so the API endpoints are never refused but every request is still counted in
Redis and answered with X-RateLimit-* headers. The public chat is measured on two published minds: a roomy one
(10,000 messages a minute per visitor, never reached: its latencies are what a visitor waits for) and a tight one
(--tight-per-minute per visitor, default 1, and 5× that per address). Every client comes from 127.0.0.1, so they
all contend for the tight mind's one address budget, and its 429s are expected and counted apart. Checked on every limited response (ratelimit_violations): the three headers present and sane;
Remaining never increases within a window for a client; no two admitted requests of one budget and window report
the same Remaining (no lost count across the two server processes); a 429 has Remaining 0 and a Retry-After that
matches Reset; once the address budget refused a request, nothing later in that window is admitted; and a window
with address refusals admitted exactly its budget.

Exit status 1 on any 5xx, transport error (including a socket silent for --timeout), dropped stream, stream error,
unexpected status, rate-limit violation, upload not processed, or client still stuck in a request well after the
deadline.

Usage: .venv/bin/python bench/mixed_load.py [--clients 16,64] [--seconds 60] [--write docs/bench/load.md]
"""

import argparse
import http.client
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, machine, publish, scifact_abstracts, use_bench_database
from load import percentile
from server import Gunicorn

BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
KEYS = 4
SOURCES_PER_MIND = 6
LLM_PIECES, LLM_GAP = 8, 0.02  # an answer streamed in 8 pieces 20 ms apart: ~150 ms of generation

# endpoint name → weight. Upload is two requests (the file, then the source that uses it).
MIX = {
    "GET /api/v1/minds": 10,
    "GET /api/v1/minds/{id}": 8,
    "GET /api/v1/minds/{id}/knowledge": 8,
    "POST /api/v1/minds/{id}/search": 10,
    "POST /api/v1/minds/{id}/chat (JSON)": 7,
    "POST /api/v1/minds/{id}/chat (SSE)": 7,
    "POST /api/v1/minds/{id}/chat (JSON Lines)": 4,
    "POST /api/chat (OpenIndex JSON Lines)": 6,
    "POST /api/v1/chat/completions (stream)": 6,
    "GET /m/{slug}": 8,
    "POST /m/{slug}/chat (SSE)": 5,
    "POST /m/{slug}/chat (SSE, tight budget)": 4,
    "upload": 3,
    "GET /healthz": 2,
}
UPLOAD = "POST /api/v1/minds/{id}/knowledge/upload"
CREATE = "POST /api/v1/minds/{id}/knowledge (document)"
PUBLIC_CHAT = "POST /m/{slug}/chat (SSE)"  # a roomy budget: what a visitor waits for
TIGHT_CHAT = "POST /m/{slug}/chat (SSE, tight budget)"  # a tight one, for the 429s under contention
ROOMY_PER_MINUTE = 10_000
UNLIMITED = {"GET /m/{slug}", "GET /healthz"}  # no rate limit, no headers expected


# The fake LLM --------------------------------------------------------------------------------------------------


class FakeLLM(BaseHTTPRequestHandler):
    """OpenAI-compatible /v1/chat/completions: streams LLM_PIECES pieces LLM_GAP s apart; a non-streamed call
    (the follow-up suggestions, a JSON chat) is answered at once."""

    protocol_version = "HTTP/1.0"  # the stream ends when the connection closes

    def log_message(self, *args):
        pass

    def _chunk(self, model: str, **delta) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        body = {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = str(body["messages"][-1]["content"])
        answer = (
            '["What else?", "Tell me more"]' if "follow-up" in prompt else "The passage says so [1]. " * 4
        )
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer}
            data = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        step = max(1, len(answer) // LLM_PIECES)
        for n, start in enumerate(range(0, len(answer), step)):
            if n:
                time.sleep(LLM_GAP)
            self.wfile.write(self._chunk(body["model"], content=answer[start : start + step]))
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def fake_llm() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# The worker ----------------------------------------------------------------------------------------------------


class Worker:
    """A real Celery worker on every queue, one process (prefork, concurrency 1: the machine has 2 cores)."""

    def __init__(self, env: dict):
        self.log_path = ROOT / ".data" / "bench-load-worker.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "1", "-l", "warning"),
                *("-Q", "default,ingestion,transcription,webhooks", "--without-gossip", "--without-mingle"),
            ],
            cwd=ROOT,
            env={**os.environ, **env, "DB_CONN_MAX_AGE": "0"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


# Seeding -------------------------------------------------------------------------------------------------------


@dataclass
class Seed:
    private: list  # minds the API clients use, with the run's public mind
    public: dict  # clients → the published minds of that run (own budgets): (roomy, tight)
    warm: object  # a published mind for the warm-up, so the runs' budgets start untouched
    keys: list[str]
    questions: list[str]


def seed(client_counts: list[int], tight_per_minute: int) -> Seed:
    from django.db.models import Q

    from accounts.models import Workspace
    from apikeys.services import api_key_create
    from knowledge.models import Source
    from knowledge.services import source_create
    from minds.models import Mind

    stamp = uuid.uuid4().hex[:6]
    Workspace.objects.filter(name="bench-load").delete()
    workspace = Workspace.objects.create(
        name="bench-load", minds_limit=100, sources_limit=100_000, source_limit_per_mind=100_000
    )
    abstracts = scifact_abstracts(SOURCES_PER_MIND * (2 + 2 * len(client_counts)))

    def mind(name: str, published: bool, texts, per_minute: int = ROOMY_PER_MINUTE) -> Mind:
        m = Mind.objects.create(
            workspace=workspace,
            name=name,
            slug=f"bench-load-{name.lower().replace(' ', '-')}-{stamp}",
            is_published=published,
            show_sources=True,
            public_messages_per_minute=per_minute,
            public_messages_per_day=10**6,
            headline="A mind under load",
            welcome_message="Ask me about the papers I have read.",
        )
        for title, text in texts:
            source_create(mind=m, kind=Source.Type.TEXT, name=title[:200], content=f"{title}\n\n{text}")
        return m

    chunks = [abstracts[i : i + SOURCES_PER_MIND] for i in range(0, len(abstracts), SOURCES_PER_MIND)]
    private = [mind(f"Private {i + 1}", False, chunks[i]) for i in range(2)]
    public = {
        c: (
            mind(f"Public {c}", True, chunks[2 + 2 * i]),
            mind(f"Tight {c}", True, chunks[3 + 2 * i], tight_per_minute),
        )
        for i, c in enumerate(client_counts)
    }
    warm = (mind("Warm up", True, []), mind("Warm up tight", True, [], tight_per_minute))
    keys = [
        api_key_create(
            workspace=workspace,
            name=f"load {i}",
            scopes=["minds:read", "minds:write", "minds:chat", "knowledge:search"],
        ).plaintext
        for i in range(KEYS)
    ]
    deadline = time.monotonic() + 600
    sources = Source.objects.filter(mind__workspace=workspace)
    while sources.filter(~Q(status__in=["ready", "failed"])).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not process the seeded sources in 10 minutes")
        time.sleep(0.5)
    failed = list(sources.filter(status="failed").values_list("name", "error_code"))
    if failed:
        raise SystemExit(f"seeded sources failed: {failed}")
    return Seed(private, public, warm, keys, [title for title, _ in abstracts])


# Requests ------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    endpoint: str
    client: int
    sent: float  # wall clock (time.time()) when the request was sent
    ms: float
    status: int = 0  # 0: no response (transport error)
    ttfb_ms: float | None = None  # streams: time to the first body line
    dropped: bool = False
    stream_error: bool = False
    error: str = ""
    limit: dict = field(default_factory=dict)  # the X-RateLimit-* and Retry-After headers
    scope: str = ""  # whose budget the headers report (key / visitor / address)
    body: bytes = b""  # non-streamed responses


# How a stream ends: the final event of each format, and its error event.
FINAL = {
    "sse": (b"event: done", b"event: error"),
    "jsonl": (b'{"event": "done"', b'{"event": "error"'),
    "openindex": (b'{"type": "done"', b'{"type": "error"'),
    "openai": (b"data: [DONE]", b'data: {"error"'),
}
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


def multipart(name: str, content: bytes, mime: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Client(threading.Thread):
    def __init__(
        self, n: int, port: int, seed: Seed, public: tuple, until: float, timeout: float, results: list
    ):
        super().__init__(daemon=True)
        self.n, self.port, self.seed, self.until, self.timeout = n, port, seed, until, timeout
        self.results = results
        self.public, self.tight = public
        self.minds = [*seed.private, self.public]
        self.key = seed.keys[n % len(seed.keys)]
        self.visitor = f"loadvisitor{n:04d}{uuid.uuid4().hex[:8]}"
        self.random = random.Random(n)
        self.conn = None
        self.uploaded: list[str] = []  # source ids

    def run(self):
        names, weights = list(MIX), list(MIX.values())
        while time.time() < self.until:
            self.one(self.random.choices(names, weights)[0])
        if self.conn:
            self.conn.close()

    def request(self, endpoint, method, path, body=None, headers=None, stream=None, scope=None) -> Result:
        """One request on the client's keep-alive connection, read to the end; never raises."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        result = Result(endpoint, self.n, time.time(), 0.0, scope=scope or f"key:{self.key[-4:]}")
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            result.status = response.status
            result.limit = {
                h: response.getheader(h) for h in LIMIT_HEADERS if response.getheader(h) is not None
            }
            if stream and response.status == 200:
                final, error = FINAL[stream]
                done = False
                while line := response.readline():
                    if result.ttfb_ms is None:
                        result.ttfb_ms = (time.perf_counter() - started) * 1000
                    done = done or line.startswith(final)
                    result.stream_error = result.stream_error or line.startswith(error)
                result.dropped = not done
            else:
                result.body = response.read()
        except Exception as exc:  # a transport error: the connection is dropped and opened again
            result.error = f"{exc.__class__.__name__}: {exc}"[:200]
            self.conn.close()
            self.conn = None
        result.ms = (time.perf_counter() - started) * 1000
        self.results.append(result)
        return result

    def one(self, choice: str):
        mind = self.random.choice(self.minds)
        question = self.random.choice(self.seed.questions)
        auth = {"Authorization": f"Bearer {self.key}"}
        api = f"/api/v1/minds/{mind.id}"
        match choice:
            case "GET /api/v1/minds":
                self.request(choice, "GET", "/api/v1/minds", headers=auth)
            case "GET /api/v1/minds/{id}":
                self.request(choice, "GET", api, headers=auth)
            case "GET /api/v1/minds/{id}/knowledge":
                self.request(choice, "GET", f"{api}/knowledge?limit=20", headers=auth)
            case "POST /api/v1/minds/{id}/search":
                self.request(choice, "POST", f"{api}/search", {"query": question, "mode": "hybrid"}, auth)
            case "POST /api/v1/minds/{id}/chat (JSON)":
                self.request(choice, "POST", f"{api}/chat", {"message": question}, auth)
            case "POST /api/v1/minds/{id}/chat (SSE)":
                self.request(
                    choice, "POST", f"{api}/chat", {"message": question, "stream": True}, auth, "sse"
                )
            case "POST /api/v1/minds/{id}/chat (JSON Lines)":
                body = {"message": question, "format": "jsonl"}
                self.request(choice, "POST", f"{api}/chat", body, auth, "jsonl")
            case "POST /api/chat (OpenIndex JSON Lines)":
                body = {"chatId": None, "agentId": mind.id, "message": question, "streaming": True}
                self.request(choice, "POST", "/api/chat", body, auth, "openindex")
            case "POST /api/v1/chat/completions (stream)":
                body = {"model": mind.id, "messages": [{"role": "user", "content": question}], "stream": True}
                self.request(choice, "POST", "/api/v1/chat/completions", body, auth, "openai")
            case "GET /m/{slug}":
                self.request(choice, "GET", f"/m/{self.public.slug}", scope="-")
            case "POST /m/{slug}/chat (SSE)" | "POST /m/{slug}/chat (SSE, tight budget)":
                slug = (self.tight if choice == TIGHT_CHAT else self.public).slug
                self.request(
                    choice,
                    "POST",
                    f"/m/{slug}/chat",
                    {"message": question},
                    {"X-Minds-Visitor": self.visitor},
                    "sse",
                    scope=f"visitor:{self.visitor}",
                )
            case "upload":
                self.upload(self.seed.private[self.random.randrange(len(self.seed.private))], auth)
            case "GET /healthz":
                self.request(choice, "GET", "/healthz", scope="-")

    def upload(self, mind, auth):
        token = uuid.uuid4().hex
        text = f"# Load note {token}\n\nA note written by client {self.n} under load.\n\n{self.seed.questions[0]}\n"
        body, content_type = multipart(f"note-{token}.md", text.encode(), "text/markdown")
        api = f"/api/v1/minds/{mind.id}/knowledge"
        uploaded = self.request(UPLOAD, "POST", f"{api}/upload", body, {**auth, "Content-Type": content_type})
        if uploaded.status not in (200, 201):
            return
        file = json.loads(uploaded.body)
        fields = {k: file[k] for k in ("fileUrl", "fileName", "mimeType", "fileSize")}
        created = self.request(
            CREATE, "POST", api, {"name": f"Note {token}", "type": "document", **fields}, auth
        )
        if created.status == 201:
            self.uploaded.append(json.loads(created.body)["source"]["id"])


# Checks --------------------------------------------------------------------------------------------------------


def expected_statuses(endpoint: str) -> set[int]:
    if endpoint in (UPLOAD, CREATE):
        return {200, 201}
    return {200, 429} if endpoint == TIGHT_CHAT else {200}


def ratelimit_violations(results: list[Result], tight_per_minute: int) -> list[str]:
    """Every inconsistency of the X-RateLimit-* headers (see the module docstring for the rules)."""
    problems: list[str] = []
    per_minute = {PUBLIC_CHAT: ROOMY_PER_MINUTE, TIGHT_CHAT: tight_per_minute}
    # (client, budget, limit, reset) → its responses in send order; (budget, limit, reset) → admitted Remaining
    per_client: dict[tuple, list[Result]] = defaultdict(list)
    admitted: dict[tuple, list[int]] = defaultdict(list)
    # (endpoint, reset) → when the first refusal by the address budget was received; public chats admitted
    address_refused_at: dict[tuple, float] = {}
    admitted_in_window: Counter = Counter()
    for r in sorted(results, key=lambda r: r.sent):
        if r.endpoint in UNLIMITED or not r.status:
            continue
        h = r.limit
        if not all(name in h for name in LIMIT_HEADERS[:3]):
            problems.append(f"{r.endpoint} {r.status}: X-RateLimit headers missing ({sorted(h)})")
            continue
        try:
            limit, remaining = int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"])
            reset = datetime.fromisoformat(h["X-RateLimit-Reset"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            problems.append(f"{r.endpoint}: unreadable headers {h}")
            continue
        if not 0 <= remaining <= limit:
            problems.append(f"{r.endpoint}: Remaining {remaining} outside 0..{limit}")
        if not r.sent - 1 < reset <= r.sent + 86_400 + 1:
            problems.append(
                f"{r.endpoint}: Reset {h['X-RateLimit-Reset']} is not a window end after the request"
            )
        # A key's budget is shared by all its endpoints; each public mind has its own visitor and address budgets.
        budget, window = r.scope, (r.endpoint, reset)
        if r.endpoint in per_minute:
            address = limit == per_minute[r.endpoint] * 5
            budget = f"{'address' if address else r.scope}@{r.endpoint}"
        if r.status == 429:
            retry = h.get("Retry-After")
            if remaining != 0:
                problems.append(f"{r.endpoint}: 429 with Remaining {remaining}")
            if retry is None or not retry.isdigit() or not 1 <= int(retry) <= reset - r.sent + 2:
                problems.append(
                    f"{r.endpoint}: 429 with Retry-After {retry!r} for a window ending in "
                    f"{reset - r.sent:.1f} s"
                )
            if budget.startswith("address"):
                address_refused_at.setdefault(window, r.sent + r.ms / 1000)
        elif r.status < 300:
            if remaining > 0:
                admitted[(budget, limit, reset)].append(remaining)
            if r.endpoint in per_minute:
                admitted_in_window[window] += 1
                refused = address_refused_at.get(window)
                if refused is not None and r.sent > refused:
                    problems.append(
                        f"{r.endpoint}: admitted at {r.sent:.3f} after the address budget of that "
                        f"window refused one at {refused:.3f}"
                    )
        per_client[(r.client, budget, limit, reset)].append(r)
    for (client, scope, _limit, _reset), rows in per_client.items():
        values = [int(r.limit["X-RateLimit-Remaining"]) for r in rows]
        if any(later > earlier for earlier, later in itertools.pairwise(values)):
            problems.append(f"client {client} ({scope}): Remaining increased within a window: {values[:20]}")
    for (budget, limit, _reset), values in admitted.items():
        duplicates = [v for v, n in Counter(values).items() if n > 1]
        if duplicates:
            problems.append(
                f"{budget} (limit {limit}): Remaining {duplicates[:5]} reported twice in one window"
            )
    for endpoint, reset in address_refused_at:
        if admitted_in_window[(endpoint, reset)] != per_minute[endpoint] * 5:
            problems.append(
                f"{endpoint}, window ending {reset:.0f}: the address budget refused requests after "
                f"admitting {admitted_in_window[(endpoint, reset)]}, not {per_minute[endpoint] * 5}"
            )
    return problems


def ratelimit_summary(results: list[Result], tight_per_minute: int) -> str:
    """What the rate-limit check saw: responses checked, and the public chat's admissions and refusals."""
    checked = [r for r in results if r.status and r.endpoint not in UNLIMITED]
    chats = [r for r in checked if r.endpoint == TIGHT_CHAT]
    refused = [r for r in chats if r.status == 429]
    by_address = [r for r in refused if r.limit.get("X-RateLimit-Limit") == str(tight_per_minute * 5)]
    windows = {r.limit.get("X-RateLimit-Reset") for r in by_address}
    return (
        f"Rate-limit headers checked on {len(checked)} responses; tight public chat {len(chats) - len(refused)} "
        "admitted, "
        f"{len(refused)} refused with 429 ({len(by_address)} by the shared address budget, "
        f"{len(refused) - len(by_address)} by a visitor's own), the address budget exhausted in {len(windows)} "
        "minute window(s)."
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its live descendants, from /proc."""
    total = 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in open(f"/proc/{pid}/task/{task}/children").read().split():
                total += cpu_seconds(int(child))
    except OSError:
        pass
    return total


# One run -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    clients: int
    seconds: float
    results: list[Result]
    client_cpu: float  # the load generator's CPU seconds during the run
    violations: list[str]
    uploads: Counter
    tight_per_minute: int
    server_cpu: float  # gunicorn's CPU seconds (master and workers) during the run
    worker_cpu: float  # the Celery worker's
    hung: int  # clients still inside a request well after the deadline


def run(
    server, worker, seed: Seed, clients: int, seconds: float, timeout: float, tight_per_minute: int
) -> Run:
    results: list[Result] = []
    port = server.port
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu, worker_cpu = cpu_seconds(server.proc.pid), cpu_seconds(worker.proc.pid)
    until = time.time() + seconds
    threads = [Client(n, port, seed, seed.public[clients], until, timeout, results) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    # A client still busy long after the deadline is stuck in a request that never ends (a trickling stream would
    # never hit the socket timeout): it is reported, not waited for.
    give_up = time.monotonic() + seconds + 3 * timeout
    for t in threads:
        t.join(max(0.0, give_up - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    results = list(results)  # a hung client's thread could still append
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu, worker_cpu = (
        cpu_seconds(server.proc.pid) - server_cpu,
        cpu_seconds(worker.proc.pid) - worker_cpu,
    )
    client_cpu = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    uploaded = [source_id for t in threads if not t.is_alive() for source_id in t.uploaded]
    return Run(
        clients,
        elapsed,
        results,
        client_cpu,
        ratelimit_violations(results, tight_per_minute),
        uploads_outcome(uploaded),
        tight_per_minute,
        server_cpu,
        worker_cpu,
        hung,
    )


def uploads_outcome(source_ids: list[str], wait: float = 300) -> Counter:
    """The states of the sources created by uploads, once the worker finished them (or `wait` s passed)."""
    from knowledge.models import Source

    deadline = time.monotonic() + wait
    while True:
        states = Counter(Source.objects.filter(id__in=source_ids).values_list("status", flat=True))
        if set(states) <= {"ready", "failed"} or time.monotonic() > deadline:
            return states
        time.sleep(1)


def warm_up(port: int, seed: Seed):
    """Every endpoint a few times, on both server processes (loads the embedding model in each)."""
    results: list[Result] = []
    client = Client(0, port, seed, seed.warm, 0, 120, results)
    for _ in range(3):
        for choice in MIX:
            client.one(choice)
            if client.conn:  # a new connection each time: gunicorn hands them to both workers
                client.conn.close()
                client.conn = None
    bad = [r for r in results if r.status >= 500 or r.error or r.dropped]
    if bad:
        raise SystemExit(f"warm-up failed: {[(r.endpoint, r.status, r.error) for r in bad]}")


def cpu_profile(server, seed: Seed, public: tuple, samples: int) -> dict[str, float]:
    """gunicorn CPU milliseconds per request of each endpoint, one client sending them one at a time: unlike
    latency, CPU time barely depends on what else runs on the machine, so it says what the mix costs."""
    results: list[Result] = []
    client = Client(0, server.port, seed, public, 0, 120, results)
    cost = {}
    for choice in MIX:
        if choice == TIGHT_CHAT:  # the same work as the roomy public chat, or a refusal
            continue
        before = cpu_seconds(server.proc.pid)
        for _ in range(samples):
            client.one(choice)
        cost[choice] = (cpu_seconds(server.proc.pid) - before) / samples * 1000
    if client.conn:
        client.conn.close()
    return cost


def stop(process) -> None:
    """Stops the server or the worker; one that does not stop in time (a loaded machine) is killed."""
    try:
        process.stop()
    except subprocess.TimeoutExpired:
        process.proc.kill()
        process.proc.wait()


# Reporting -----------------------------------------------------------------------------------------------------


def failures(r: Run) -> dict[str, int]:
    res = r.results
    return {
        "5xx": sum(x.status >= 500 for x in res),
        "transport errors": sum(bool(x.error) for x in res),
        "dropped streams": sum(x.dropped for x in res),
        "stream errors": sum(x.stream_error for x in res),
        "unexpected statuses": sum(
            bool(x.status) and x.status not in expected_statuses(x.endpoint) for x in res
        ),
        "rate-limit violations": len(r.violations),
        "uploads not ready": sum(n for state, n in r.uploads.items() if state != "ready"),
        "hung clients": r.hung,
    }


def fmt(values: list[float], p: float) -> str:
    return f"{percentile(values, p):.0f}" if values else "–"


def report(r: Run) -> list[str]:
    by_endpoint: dict[str, list[Result]] = defaultdict(list)
    for x in r.results:
        by_endpoint[x.endpoint].append(x)
    lines = [
        f"### {r.clients} clients, {r.seconds:.0f} s",
        "",
        "| endpoint | weight | requests | req/s | p50 ms | p95 ms | p99 ms | first byte p50 / p95 ms | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    order = [*MIX, UPLOAD, CREATE]
    for endpoint in sorted(by_endpoint, key=order.index):
        rows = by_endpoint[endpoint]
        ms = [x.ms for x in rows if x.status]
        admitted = [x.ms for x in rows if x.status and x.status < 400]
        ttfb = [x.ttfb_ms for x in rows if x.ttfb_ms is not None]
        statuses = Counter(x.status or "error" for x in rows)
        status_text = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str))
        if endpoint == TIGHT_CHAT:  # refusals are answered at once; users wait for the answered chats
            ms = admitted
        ttfb_text = f"{fmt(ttfb, 50)} / {fmt(ttfb, 95)}" if ttfb else "–"
        lines.append(
            f"| `{endpoint}` | {MIX.get(endpoint, MIX['upload'])} | {len(rows)} | {len(rows) / r.seconds:.1f} | {fmt(ms, 50)} | {fmt(ms, 95)} | "
            f"{fmt(ms, 99)} | {ttfb_text} | {status_text} |"
        )
    total = len(r.results)
    refused = sum(x.status == 429 for x in r.results if x.endpoint == TIGHT_CHAT)
    counts = failures(r)
    slowest = max((x.ms for x in r.results), default=0)
    lines += [
        "",
        f"Totals: {total} requests ({total / r.seconds:.0f}/s), slowest {slowest / 1000:.1f} s; "
        + ", ".join(f"{name} **{n}**" for name, n in counts.items())
        + f"; tight public chat 429s (expected) {refused}.",
        ratelimit_summary(r.results, r.tight_per_minute),
        f"Uploaded sources after the load: {dict(r.uploads) or 'none'}.",
        f"CPU during the run: the load generator (clients and fake LLM) {r.client_cpu:.0f} s "
        f"({r.client_cpu / r.seconds:.2f} of a core); gunicorn {r.server_cpu:.0f} s "
        f"({r.server_cpu / max(1, total) * 1000:.0f} ms per request, PostgreSQL and Redis not included); "
        f"the Celery worker {r.worker_cpu:.0f} s.",
        "",
    ]
    if r.violations:
        lines += ["Rate-limit violations:", "", *(f"- {v}" for v in r.violations[:20]), ""]
    return lines


def log_errors(path) -> list[str]:
    """Error lines of a server or worker log (tracebacks, ERROR records)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [
        line for line in text.splitlines() if "Traceback" in line or "ERROR" in line or "CRITICAL" in line
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="16,64", help="comma-separated client counts, one run each")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=60, help="a request slower than this is an error")
    parser.add_argument(
        "--tight-per-minute", type=int, default=1, help="the tight public chat's limit per visitor"
    )
    parser.add_argument("--cpu-samples", type=int, default=10, help="per endpoint for the CPU table; 0: none")
    parser.add_argument("--write")
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]

    os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = BENCH_REDIS
    url = use_bench_database("bench_load")
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    llm = fake_llm()
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": BENCH_REDIS,
        "CELERY_BROKER_URL": BENCH_REDIS,
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{llm.server_address[1]}/v1",
        "RATE_LIMIT_PER_MINUTE": str(10**9),
        "SEARCH_RATE_LIMIT_PER_MINUTE": str(10**6),
    }
    worker = Worker(env)
    server = None
    runs, costs = [], {}
    try:
        print("seeding (the worker processes the knowledge)…", flush=True)
        data = seed(client_counts, args.tight_per_minute)
        server = Gunicorn(env, log="bench-load-gunicorn.log")
        warm_up(server.port, data)
        if args.cpu_samples:
            print("CPU per request…", flush=True)
            public = (data.public[client_counts[0]][0], data.warm[1])
            costs = cpu_profile(server, data, public, args.cpu_samples)
        for clients in client_counts:
            print(f"{clients} clients for {args.seconds:.0f} s…", flush=True)
            runs.append(run(server, worker, data, clients, args.seconds, args.timeout, args.tight_per_minute))
            print("\n".join(report(runs[-1])), flush=True)
    finally:
        for process in (server, worker):
            if process:
                stop(process)
        llm.shutdown()
    server_errors = log_errors(ROOT / ".data" / "bench-load-gunicorn.log")
    worker_errors = log_errors(worker.log_path)

    lines = [
        "# Mixed load",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/mixed_load.py --clients {args.clients} "
        f"--seconds {args.seconds:.0f}`",
        "",
        "gunicorn gthread 2 workers × 8 threads (config/gunicorn.conf.py), one Celery worker (concurrency 1), embedded "
        "PostgreSQL and Redis, all on loopback with the clients; a fake OpenAI-compatible LLM streams each answer in "
        f"{LLM_PIECES} pieces {LLM_GAP * 1000:.0f} ms apart. Each client is a thread with a keep-alive connection "
        "that loops over the weighted mix (the `weight` column: the chance of each endpoint per pick; `upload` is a "
        "multipart upload of a small Markdown file followed by the document source that uses it, which the worker "
        "then processes during the load). Streams are read to the end.",
        "",
        "Rate limits for the run: per key `RATE_LIMIT_PER_MINUTE=10^9` and `SEARCH_RATE_LIMIT_PER_MINUTE=10^6` "
        "(counted and reported, never reached); the public chat of one published mind 10,000/min per visitor "
        "(never reached), of another (`tight budget`) "
        f"{args.tight_per_minute}/min per visitor and {args.tight_per_minute * 5}/min per address: every client "
        "shares 127.0.0.1, so they contend for that one address budget and its 429s are expected. Latencies in ms, "
        "measured by the client from sending the request to the last byte; for the tight public chat only the "
        "answered (200) ones. `first byte` is the first line of a stream's body. Each run gets fresh published "
        "minds, so its budgets start untouched.",
        "",
    ]
    if costs:
        lines += [
            "### gunicorn CPU per request",
            "",
            f"One client, each endpoint {args.cpu_samples} times in a row, after the warm-up: the CPU time the "
            "server processes spent (user + system; PostgreSQL, Redis and the LLM not included). It barely depends "
            "on the machine's other load, so it bounds what 2 idle cores can serve.",
            "",
            "| endpoint | CPU ms per request |",
            "|---|---:|",
            *(f"| `{name}` | {ms:.0f} |" for name, ms in costs.items() if name != "upload"),
            f"| `{UPLOAD}` + `{CREATE}` | {costs.get('upload', 0):.0f} |",
            "",
        ]
    for r in runs:
        lines += report(r)
    lines += [
        f"Server log error lines: {len(server_errors)}; worker log error lines: {len(worker_errors)}.",
        *(f"    {line[:200]}" for line in (server_errors + worker_errors)[:10]),
        "",
    ]
    publish(lines, args.write)
    bad = {name: n for r in runs for name, n in failures(r).items() if n}
    if bad:
        print(f"FAILED: {bad}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
