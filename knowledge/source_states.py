"""Every status change of a source, each one conditional update that says whether it won.

- claim: pending (or busy past its deadline) → processing; stamps `processing_started_at`, counts an attempt;
- hand to transcription: processing → transcribing;
- release for retry: busy → pending, after a transient failure;
- fail, mark ready: busy → failed, ready;
- sweep: busy past its deadline → pending, or failed after the last attempt; lost pending work queued again.

A worker owns a source only through its *claim*: the update that moves it from `pending` (or from a busy state
whose deadline has passed) to `processing` and stamps `processing_started_at`. Every later write of that run is
conditioned on the stamp and a busy status, so a run that lost its claim (the source was deleted, reprocessed, or
swept and claimed again after a crash) changes nothing: each function returns False and the caller stops.

Nothing here enqueues work: the pipeline reports an outcome and knowledge/tasks.py decides what to queue.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
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


def source_claim(source_id: str) -> Claim | None:
    """pending (or busy past its deadline) → processing; None when another run owns the source or it is done."""
    now = timezone.now()
    claimable = Q(status=Source.Status.PENDING) | Q(status__in=Source.BUSY, deadline_at__lt=now)
    won = Source.objects.filter(claimable, id=source_id).update(
        status=Source.Status.PROCESSING,
        processing_started_at=now,
        transcribing_started_at=None,
        attempts=F("attempts") + 1,
        deadline_at=_deadline(now),
        error_code="",
        error_message="",
        updated_at=now,
    )
    return Claim(source_id, now) if won else None


def source_claim_for_transcription(source_id: str, claimed_at: str) -> Claim | None:
    """The claim the processing stage handed to transcription, if it still owns the source."""
    claim = Claim(source_id, datetime.fromisoformat(claimed_at))
    return claim if claim.owned().filter(status=Source.Status.TRANSCRIBING).exists() else None


def source_hand_to_transcription(claim: Claim) -> bool:
    """processing → transcribing, with a fresh deadline for the (long) transcription stage."""
    now = timezone.now()
    return bool(
        claim.owned()
        .filter(status=Source.Status.PROCESSING)
        .update(
            status=Source.Status.TRANSCRIBING,
            transcribing_started_at=now,
            deadline_at=_deadline(now),
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

    - busy past its deadline: back to pending while attempts remain, else failed (`processing_timeout`);
    - pending for longer than a deadline without being claimed: its queued time is renewed, to be queued again.

    Each update is conditioned on what was read, so a source claimed meanwhile by a live worker is left alone.
    """
    now = now or timezone.now()
    swept = Swept()
    for source in Source.objects.filter(status__in=Source.BUSY, deadline_at__lt=now).only("id", "attempts"):
        still_stuck = Source.objects.filter(
            id=source.id, status__in=Source.BUSY, deadline_at__lt=now, attempts=source.attempts
        )
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
                updated_at=now,
            ):
                swept.failed.append(source.id)
        elif still_stuck.update(
            status=Source.Status.PENDING, queued_at=now, deadline_at=None, updated_at=now
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
