"""Every status change of a source, each one conditional update that says whether it won.

- claim: pending (or busy with an expired lease, or past its deadline) → processing; stamps
  `processing_started_at`, counts an attempt, takes the lease;
- lease renewal (the heartbeat) while a stage works; the transcription stage takes the lease when it starts;
- hand to transcription: processing → transcribing;
- release for retry: busy → pending, after a transient failure;
- fail, mark ready: busy → failed, ready;
- sweep: busy with an expired lease (or past its deadline) → pending, or failed after the last attempt; lost
  pending work queued again.

A worker owns a source only through its *claim*: the update that moves it from `pending` (or from a busy state
whose claimant is gone) to `processing` and stamps `processing_started_at`. Every later write of that run is
conditioned on the stamp and a busy status, so a run that lost its claim (the source was deleted, reprocessed, or
swept and claimed again after a crash) changes nothing: each function returns False and the caller stops.

A claim is kept alive by its *lease* (`lease_expires_at`): the process running a stage renews it every
SOURCE_HEARTBEAT_SECONDS from a small thread (`lease_kept`), so a claimant that was killed (SIGKILL, OOM, a
lost machine) is known dead within SOURCE_LEASE_SECONDS, not only at the long deadline, while a live long job
(a 500-page PDF, an hour of audio) keeps its lease and is never started a second time. The renewal is itself
conditioned on the claim, so a lost claim is never renewed. The deadline stays as the last resort (a stage's
hard time limit is under it, so a live stage is killed before its deadline passes).

Nothing here enqueues work: the pipeline reports an outcome and knowledge/tasks.py decides what to queue.
"""

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from knowledge.models import Source

logger = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    source_id: str
    started_at: datetime

    def owned(self) -> QuerySet[Source]:
        """The source while this claim still owns it (empty once the claim is lost)."""
        return Source.objects.filter(
            id=self.source_id, processing_started_at=self.started_at, status__in=Source.BUSY
        )


def _deadline(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS)


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.SOURCE_LEASE_SECONDS)


def _abandoned(now: datetime) -> Q:
    """Busy sources whose claimant is gone: its lease expired (no heartbeat), or, as the last resort, its
    deadline passed. A null lease (handed to transcription, waiting in the queue) is not expired."""
    return Q(status__in=Source.BUSY) & (Q(lease_expires_at__lt=now) | Q(deadline_at__lt=now))


def pending_again(now: datetime) -> dict:
    """The fields of a finished source sent back to `pending` to be processed anew (reprocess, scheduled refresh):
    its chunks stay until the new run swaps them."""
    return {
        "status": Source.Status.PENDING,
        "error_code": "",
        "error_message": "",
        "attempts": 0,
        "queued_at": now,
        "ready_at": None,
        "failed_at": None,
        "deadline_at": None,
        "processing_started_at": None,
        "transcribing_started_at": None,
    }


def source_claim(source_id: str) -> Claim | None:
    """pending (or abandoned) → processing; None when a live run owns the source or it is done."""
    now = timezone.now()
    claimable = Q(status=Source.Status.PENDING) | _abandoned(now)
    won = Source.objects.filter(claimable, id=source_id).update(
        status=Source.Status.PROCESSING,
        processing_started_at=now,
        transcribing_started_at=None,
        attempts=F("attempts") + 1,
        deadline_at=_deadline(now),
        lease_expires_at=_lease(now),
        error_code="",
        error_message="",
        updated_at=now,
    )
    return Claim(source_id, now) if won else None


def source_claim_for_transcription(source_id: str, claimed_at: str) -> Claim | None:
    """The claim the processing stage handed to transcription, if it still owns the source and no live process
    transcribes it: the transcription stage takes the lease here. A redelivered transcription task whose first
    run still renews the lease gets None (no second transcription); once that lease expired, it resumes."""
    claim = Claim(source_id, datetime.fromisoformat(claimed_at))
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    taken = (
        claim.owned()
        .filter(free, status=Source.Status.TRANSCRIBING)
        .update(lease_expires_at=_lease(now), updated_at=now)
    )
    return claim if taken else None


def source_lease_renew(claim: Claim) -> bool:
    """The heartbeat: extends the lease while the claim owns the source; False once it is lost."""
    return bool(claim.owned().update(lease_expires_at=_lease(timezone.now())))


def source_lease_expires_at(source_id: str, claim: Claim | None = None) -> datetime | None:
    """When the live lease on a busy source (held by `claim`, when given) expires; None when it is not busy or no
    process holds it. A redelivered task that found the source claimed tries again then, to take it over if the
    claimant died meanwhile."""
    busy = Source.objects.filter(id=source_id, status__in=Source.BUSY, lease_expires_at__gte=timezone.now())
    if claim is not None:
        busy = busy.filter(processing_started_at=claim.started_at)
    return busy.values_list("lease_expires_at", flat=True).first()


class lease_kept:
    """Renews the claim's lease every SOURCE_HEARTBEAT_SECONDS while the block runs.

    A thread rather than renewals between steps: one parser or transcriber call can run for minutes without
    returning to Python code of ours, and a thread still runs then (the C libraries release the GIL, and even
    when one does not, the interpreter switches threads between bytecodes). The thread stops at the end of the
    block, when the claim is found lost, or with the process (a killed worker renews nothing, which is the
    point). Its first renewal comes one interval in, so short stages never open the thread's connection.
    """

    def __init__(self, claim: Claim):
        self.claim = claim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{claim.source_id}", daemon=True)

    def __enter__(self) -> "lease_kept":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=settings.SOURCE_HEARTBEAT_SECONDS + 10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.SOURCE_HEARTBEAT_SECONDS):
                try:
                    if not source_lease_renew(self.claim):
                        logger.info("source %s: claim lost, lease no longer renewed", self.claim.source_id)
                        return
                except DatabaseError:
                    # A passing database fault: the next beat tries again; the lease outlasts a few misses.
                    logger.warning("source %s: lease renewal failed", self.claim.source_id, exc_info=True)
        finally:
            connection.close()  # the thread's own connection (Django's connections are per thread)


def source_hand_to_transcription(claim: Claim) -> bool:
    """processing → transcribing, with a fresh deadline for the (long) transcription stage.

    The lease is cleared: no process works on the source while its transcription task waits in its queue
    (possibly behind long podcasts), and that wait is guarded by the deadline alone; the transcription stage
    takes the lease when it starts (source_claim_for_transcription)."""
    now = timezone.now()
    return bool(
        claim.owned()
        .filter(status=Source.Status.PROCESSING)
        .update(
            status=Source.Status.TRANSCRIBING,
            transcribing_started_at=now,
            deadline_at=_deadline(now),
            lease_expires_at=None,
            updated_at=now,
        )
    )


def source_metadata_update(claim: Claim, metadata: dict) -> bool:
    """Records what a stage learned before the source is ready (a podcast's episode title)."""
    return bool(claim.owned().update(metadata=metadata, updated_at=timezone.now()))


def source_release_for_retry(claim: Claim, message: str) -> bool:
    """busy → pending after a transient failure, so the retried task can claim it again."""
    now = timezone.now()
    return bool(
        claim.owned().update(
            status=Source.Status.PENDING,
            error_message=message[:MESSAGE_MAX_CHARS],
            queued_at=now,
            deadline_at=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


def source_fail(claim: Claim, code: str, message: str) -> bool:
    """busy → failed, with a stable code and a message the user can act on."""
    now = timezone.now()
    return bool(
        claim.owned().update(
            status=Source.Status.FAILED,
            error_code=code,
            error_message=message[:MESSAGE_MAX_CHARS],
            failed_at=now,
            deadline_at=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


def source_mark_ready(
    claim: Claim,
    *,
    chunk_count: int,
    token_count: int,
    page_count: int | None,
    duration_seconds: float | None,
    embedding_model: str,
    metadata: dict,
    content_hash: str,
) -> bool:
    """busy → ready; called in the transaction that swaps the chunk set (knowledge/indexing.py)."""
    now = timezone.now()
    return bool(
        claim.owned().update(
            status=Source.Status.READY,
            ready_at=now,
            deadline_at=None,
            lease_expires_at=None,
            chunk_count=chunk_count,
            token_count=token_count,
            page_count=page_count,
            duration_seconds=duration_seconds,
            embedding_model=embedding_model,
            metadata=metadata,
            content_hash=content_hash,
            error_code="",
            error_message="",
            updated_at=now,
        )
    )


@dataclass
class Swept:
    """What one sweep did: sources to queue again (`requeued`, `resent`) and sources that ended `failed`."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def sources_sweep(now: datetime | None = None) -> Swept:
    """Takes over the sources a crashed (or killed) worker left unfinished, and pending work whose message was lost.

    - busy with an expired lease (its claimant died: no heartbeat for SOURCE_LEASE_SECONDS) or past its deadline:
      back to pending while attempts remain, else failed (`processing_timeout`);
    - pending for longer than a deadline without being claimed: its queued time is renewed, to be queued again.

    Each update is conditioned on what was read, so a source claimed meanwhile by a live worker is left alone.
    """
    now = now or timezone.now()
    swept = Swept()
    for source in Source.objects.filter(_abandoned(now)).only("id", "attempts"):
        still_stuck = Source.objects.filter(_abandoned(now), id=source.id, attempts=source.attempts)
        if source.attempts >= settings.SOURCE_MAX_ATTEMPTS:
            if still_stuck.update(
                status=Source.Status.FAILED,
                error_code="processing_timeout",
                error_message=(
                    f"Processing did not finish in time after {source.attempts} attempts; "
                    "the source may be too large. Reprocess it to try again."
                ),
                failed_at=now,
                deadline_at=None,
                lease_expires_at=None,
                updated_at=now,
            ):
                swept.failed.append(source.id)
        elif still_stuck.update(
            status=Source.Status.PENDING,
            queued_at=now,
            deadline_at=None,
            lease_expires_at=None,
            updated_at=now,
        ):
            swept.requeued.append(source.id)
    stale = now - timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS)
    for source_id in Source.objects.filter(status=Source.Status.PENDING, queued_at__lt=stale).values_list(
        "id", flat=True
    ):
        if Source.objects.filter(id=source_id, status=Source.Status.PENDING, queued_at__lt=stale).update(
            queued_at=now, updated_at=now
        ):
            swept.resent.append(source_id)
    if swept.requeued or swept.failed or swept.resent:
        logger.warning("sweeper requeued=%s failed=%s resent=%s", swept.requeued, swept.failed, swept.resent)
    return swept
