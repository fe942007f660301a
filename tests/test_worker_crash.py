"""A worker killed with SIGKILL mid-source does not leave the source stuck in `processing`.

The source's task is in flight (the worker is blocked fetching a slow page) when the whole worker process group
is killed. The source stays `processing` under a lease nobody renews any more; once the lease has expired (long
before the deadline), the sweeper (the periodic `knowledge.sources_sweep_stuck` task, run here by a real worker)
puts it back to `pending` and queues it again, and a fresh worker takes it to `ready` — once, without duplicated
chunks. (tests/trust/test_crash_recovery.py runs the same with a short lease, and the redelivery path.) A stage that hangs is stopped
at its soft time limit instead: the source fails with `processing_timeout` and the worker takes the next one.
"""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge import tasks
from knowledge.models import Chunk, Source
from knowledge.source_states import sources_sweep as sweep
from knowledge.tasks import sources_sweep_stuck
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.test_ingestion_e2e import knowledge

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGE = (
    "<html><head><title>Slow page</title></head><body><article><h1>Slow page</h1>"
    + "".join(
        f"<p>Paragraph {i} of a page that took a long time to arrive, about lighthouses and tides.</p>"
        for i in range(40)
    )
    + "</article></body></html>"
)


def test_killed_worker_source_is_swept_and_finished_once(api, workspace, celery_worker, settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-crash")
    release = threading.Event()
    first_request = threading.Event()

    def slow(request):
        first_request.set()
        release.wait(timeout=60)
        return 200, {"Content-Type": "text/html"}, PAGE.encode()

    with FakeSite() as site:
        site.route("/slow", handler=slow)
        source_id = api.post(knowledge(mind), {"type": "url", "url": site.url("/slow")}).json()["source"][
            "id"
        ]
        assert first_request.wait(timeout=60), "the worker never fetched the page"
        assert Source.objects.get(id=source_id).status == "processing"

        celery_worker.kill()  # SIGKILL, mid-fetch: nothing gets to clean up
        release.set()
        source = Source.objects.get(id=source_id)
        assert source.status == "processing" and source.attempts == 1 and source.lease_expires_at is not None

        # While its lease runs the sweeper leaves a busy source alone (its claimant may still be working).
        celery_worker.start()
        assert sweep(now=source.lease_expires_at - timedelta(seconds=1)).requeued == []
        assert Source.objects.get(id=source_id).status == "processing"

        # Time passes beyond the lease (not the deadline); the periodic sweep (run by the real worker) recovers it.
        assert source.deadline_at > timezone.now() + timedelta(minutes=20)
        Source.objects.filter(id=source_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        sources_sweep_stuck.delay()
        wait_for(
            lambda: Source.objects.get(id=source_id).status == "ready",
            timeout=120,
            what="the swept source to be ready",
        )

    source = Source.objects.get(id=source_id)
    assert source.attempts == 2 and source.error_code == ""
    assert source.chunk_count == Chunk.objects.filter(source_id=source_id).count() > 0
    assert (
        Chunk.objects.filter(source_id=source_id).values("ordinal").distinct().count() == source.chunk_count
    )


def test_a_stage_past_its_time_limit_fails_the_source_and_frees_the_worker(
    api, workspace, celery_worker, settings
):
    """A fetch that never ends (a stand-in for a hung parser) is stopped at the soft time limit."""
    settings.SSRF_ALLOW_LOOPBACK = True
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-limit")
    release = threading.Event()

    def hung(request):
        release.wait(timeout=120)
        return 200, {"Content-Type": "text/html"}, PAGE.encode()

    try:
        with FakeSite() as site:
            site.route("/hung", handler=hung)
            hung_id = Source.objects.create(
                workspace=workspace, mind=mind, type="url", name="Hung", url=site.url("/hung")
            ).id
            # The limits travel with the message; this one is sent with a short soft limit.
            tasks.source_process.apply_async((hung_id,), soft_time_limit=2)
            # Well before the fetch's own 20 s timeout, which would only release the source for a retry.
            wait_for(
                lambda: Source.objects.get(id=hung_id).status == "failed",
                timeout=15,
                what="the hung source to fail at the time limit",
            )
            text = api.post(knowledge(mind), {"type": "text", "content": "Tides follow the moon."})
            text_id = text.json()["source"]["id"]
            wait_for(
                lambda: Source.objects.get(id=text_id).status == "ready",
                timeout=120,
                what="the worker (one process) to take the next source",
            )
    finally:
        release.set()
    hung_source = Source.objects.get(id=hung_id)
    assert hung_source.error_code == "processing_timeout" and hung_source.attempts == 1
    assert "time limit" in hung_source.error_message and not Chunk.objects.filter(source_id=hung_id).exists()


@pytest.mark.django_db  # no transaction=True: the session's live worker would take the re-queued source
def test_sweeper_fails_a_source_that_keeps_dying(db, workspace, settings):
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-sweep")
    past = timezone.now() - timedelta(seconds=5)
    stuck = Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="text",
        name="t",
        content="x",
        status="transcribing",
        attempts=settings.SOURCE_MAX_ATTEMPTS,
        deadline_at=past,
    )
    retry = Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="text",
        name="u",
        content="y",
        status="processing",
        attempts=1,
        deadline_at=past,
    )
    alive = Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="text",
        name="v",
        content="z",
        status="processing",
        attempts=1,
        deadline_at=timezone.now() + timedelta(minutes=5),
    )
    result = sweep()
    assert result.failed == [stuck.id] and result.requeued == [retry.id]
    stuck.refresh_from_db()
    assert (
        stuck.status == "failed"
        and stuck.error_code == "processing_timeout"
        and "attempts" in stuck.error_message
    )
    assert Source.objects.get(id=retry.id).status == "pending"
    assert Source.objects.get(id=alive.id).status == "processing"
