"""Crash recovery within the lease (issue 12): a claim is kept by a lease its working process renews.

Real worker processes (tests/worker.py) with a 3-second lease renewed every half second, so what takes a minute
by default happens here in seconds. The slow stage is a page fetch that the fake site holds until the test lets it
go: the worker is inside its processing stage (heartbeat running) for as long as the test needs.

- a pool child killed mid-stage: Celery redelivers its task at once; the task finds the dead run's lease still
  live, looks again when it expires and takes the source over: ready within the lease plus processing time;
- the whole worker killed: its message stays unacknowledged, so the sweeper (the beat's task, run here by the
  test at each poll as beat would every minute) takes the source over once the lease expired, long before the
  30-minute deadline, and a second worker finishes it;
- a live long job whose heartbeat runs is never started a second time, however often its task is delivered again
  or the sweeper runs;
- a claimant that only seemed dead and wakes up after the take-over writes nothing.
Each ends with one chunk set and the attempts counted.
"""

import threading
import time
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from knowledge import pipeline, tasks
from knowledge.extractors import extract_text
from knowledge.indexing import source_index
from knowledge.models import Chunk, Source
from knowledge.pipeline import Result
from knowledge.source_states import lease_kept, source_claim, source_fail, sources_sweep
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 3
LEASE_ENV = {
    "SOURCE_LEASE_SECONDS": str(LEASE_SECONDS),
    "SOURCE_HEARTBEAT_SECONDS": "0.5",
    # The held fetch must outlast several leases without timing out on its own.
    "FETCH_TIMEOUT_SECONDS": "120",
}
# Worker start, the local model's first load and the embedding on a busy 2-core machine, beyond the lease.
MARGIN_SECONDS = 90
# Private queues, so the session's worker (if one runs) cannot take the first delivery.
QUEUE = "crash-recovery"

PAGE = (
    "<html><head><title>Tide tables</title></head><body><article><h1>Tide tables</h1>"
    + "".join(f"<p>Entry {i}: the spring tide at the north mole rose {i} centimetres.</p>" for i in range(40))
    + "</article></body></html>"
)


class HeldPage:
    """A page whose first request is held until `release()`; later requests are answered at once."""

    def __init__(self, site: FakeSite, path: str = "/tides"):
        self.first = threading.Event()
        self._release = threading.Event()
        self.count = 0
        self.url = site.url(path)
        site.route(path, handler=self._serve)

    def _serve(self, request):
        self.count += 1
        if self.count == 1:
            self.first.set()
            self._release.wait(timeout=120)
        return 200, {"Content-Type": "text/html"}, PAGE.encode()

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def lease_settings(settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    settings.SOURCE_LEASE_SECONDS = LEASE_SECONDS
    settings.SOURCE_HEARTBEAT_SECONDS = 0.5
    return settings


@pytest.fixture
def workers():
    started: list[WorkerProcess] = []

    def start(name: str, queues: str) -> WorkerProcess:
        worker = WorkerProcess(name=name, queues=queues, extra_env=LEASE_ENV).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def url_source(workspace, slug: str, url: str) -> Source:
    mind = Mind.objects.create(workspace=workspace, name="Harbour", slug=slug)
    return Source.objects.create(
        workspace=workspace, mind=mind, type="url", name="Tides", url=url, queued_at=timezone.now()
    )


def lease_of(source_id: str):
    return Source.objects.values_list("lease_expires_at", flat=True).get(id=source_id)


def wait_renewed(source_id: str) -> None:
    """The heartbeat runs: the lease moves forward while the stage is blocked."""
    first = wait_for(lambda: lease_of(source_id), timeout=30, what="the claim's lease")
    wait_for(lambda: lease_of(source_id) > first, timeout=30, what="the lease to be renewed")


def assert_ready_once(source_id: str, attempts: int) -> None:
    source = Source.objects.get(id=source_id)
    assert source.status == "ready" and source.attempts == attempts and source.error_code == ""
    assert source.lease_expires_at is None and source.deadline_at is None
    chunks = Chunk.objects.filter(source_id=source_id)
    assert source.chunk_count == chunks.count() > 0
    assert chunks.values("ordinal").distinct().count() == source.chunk_count


def pool_children(worker: WorkerProcess) -> list[psutil.Process]:
    return psutil.Process(worker.proc.pid).children()


def test_a_redelivered_task_takes_over_a_killed_child_s_source_when_its_lease_expires(
    workspace, lease_settings, workers
):
    worker = workers("lease-child", QUEUE)
    with FakeSite() as site:
        page = HeldPage(site)
        source = url_source(workspace, "harbour-child", page.url)
        tasks.source_process.apply_async((source.id,), queue=QUEUE)
        assert page.first.wait(timeout=60), "the worker never fetched the page"
        wait_renewed(source.id)

        (child,) = pool_children(worker)
        child.kill()  # SIGKILL mid-stage; the worker's main process lives and requeues the task at once
        killed_at = time.monotonic()
        page.release()
        wait_for(
            lambda: Source.objects.get(id=source.id).status == "ready",
            timeout=LEASE_SECONDS + MARGIN_SECONDS,
            what="the redelivered task to take the source over and finish it",
        )
        recovered_in = time.monotonic() - killed_at
    print(f"recovered {recovered_in:.1f}s after the kill (lease {LEASE_SECONDS}s)")
    assert_ready_once(source.id, attempts=2)
    assert page.count == 2  # the killed run's fetch and the take-over's; no third start


def test_the_sweeper_takes_over_a_killed_worker_s_source_once_its_lease_expired(
    workspace, lease_settings, workers
):
    first = workers("lease-first", QUEUE)
    with FakeSite() as site:
        page = HeldPage(site)
        source = url_source(workspace, "harbour-sweep", page.url)
        tasks.source_process.apply_async((source.id,), queue=QUEUE)
        assert page.first.wait(timeout=60), "the worker never fetched the page"
        wait_renewed(source.id)

        first.kill()  # the whole worker: its message stays unacknowledged until the visibility timeout
        killed_at = time.monotonic()
        page.release()
        lease = lease_of(source.id)
        held = Source.objects.get(id=source.id)
        assert held.status == "processing" and held.attempts == 1
        assert held.deadline_at - lease > timedelta(minutes=20)  # the lease, not the deadline, decides
        # While the lease runs the claimant may be alive: neither the sweeper nor a claim takes the source.
        assert sources_sweep(now=lease - timedelta(seconds=0.1)).requeued == []

        workers("lease-second", "default,ingestion")
        swept: list[str] = []

        def beat_then_ready() -> bool:
            # What beat does every minute; each call is a no-op until the lease has expired.
            if not swept:
                swept.extend(tasks.sources_sweep_stuck.apply().get()["requeued"])
            return Source.objects.get(id=source.id).status == "ready"

        wait_for(
            beat_then_ready,
            timeout=LEASE_SECONDS + MARGIN_SECONDS,
            what="the sweeper to re-queue the source and the second worker to finish it",
        )
        recovered_in = time.monotonic() - killed_at
    print(f"recovered {recovered_in:.1f}s after the kill (lease {LEASE_SECONDS}s)")
    assert swept == [source.id]
    assert_ready_once(source.id, attempts=2)
    assert page.count == 2


def test_a_live_long_job_is_never_started_twice_while_its_heartbeat_runs(workspace, lease_settings, workers):
    workers("lease-busy", QUEUE)
    workers("lease-other", "default,ingestion")
    with FakeSite() as site:
        page = HeldPage(site)
        source = url_source(workspace, "harbour-live", page.url)
        tasks.source_process.apply_async((source.id,), queue=QUEUE)
        assert page.first.wait(timeout=60), "the worker never fetched the page"
        started_at = Source.objects.get(id=source.id).processing_started_at
        try:
            first_lease = wait_for(lambda: lease_of(source.id), timeout=30, what="the claim's lease")
            # A duplicate delivery goes to the other worker; a sweep and a claim run here.
            tasks.source_process.delay(source.id)
            assert sources_sweep().requeued == [] and source_claim(source.id) is None
            outcome = pipeline.source_process(source.id)
            assert outcome.result is Result.NOT_CLAIMED and outcome.lease_expires_at is not None
            assert 0 < tasks.lease_wait(outcome) <= LEASE_SECONDS + tasks.LEASE_MARGIN_SECONDS
            # Several lease periods go by: the heartbeat keeps the claim, whoever looks.
            wait_for(
                lambda: lease_of(source.id) > first_lease + timedelta(seconds=3 * LEASE_SECONDS),
                timeout=60,
                what="the lease to be renewed past three lease periods",
            )
            assert sources_sweep().requeued == [] and source_claim(source.id) is None
            held = Source.objects.get(id=source.id)
            assert held.status == "processing" and held.attempts == 1
            assert held.processing_started_at == started_at and page.count == 1
        finally:
            page.release()
        wait_for(
            lambda: Source.objects.get(id=source.id).status == "ready",
            timeout=MARGIN_SECONDS,
            what="the live job to finish",
        )
    assert_ready_once(source.id, attempts=1)
    assert page.count == 1  # the duplicate delivery found the source busy, then ready: never fetched it again


def test_a_stale_claimant_that_wakes_up_after_a_take_over_writes_nothing(workspace, lease_settings):
    """The dead-looking claimant was only paused (a long GC, a frozen VM): its late writes all lose."""
    mind = Mind.objects.create(workspace=workspace, name="Harbour", slug="harbour-stale")
    source = Source.objects.create(
        workspace=workspace, mind=mind, type="text", name="Log", content="\n\n".join(PAGE.split("<p>"))
    )
    stale = source_claim(source.id)
    Source.objects.filter(id=source.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert pipeline.source_process(source.id).result is Result.READY  # the take-over, run to the end
    after = Source.objects.values().get(id=source.id)
    chunk_ids = set(Chunk.objects.filter(source_id=source.id).values_list("id", flat=True))

    extracted = extract_text(b"A different text the stale run extracted.", markdown=True)
    assert source_index(claim=stale, source=source, extracted=extracted) is None
    assert source_fail(stale, "internal_error", "late") is False
    with lease_kept(stale) as kept:
        # Its heartbeat finds the claim lost at the first beat and stops without renewing anything.
        wait_for(lambda: not kept._thread.is_alive(), timeout=30, what="the stale heartbeat to stop")
    assert Source.objects.values().get(id=source.id) == after
    assert set(Chunk.objects.filter(source_id=source.id).values_list("id", flat=True)) == chunk_ids
    assert_ready_once(source.id, attempts=2)
