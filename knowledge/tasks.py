"""Celery tasks: the pipeline's stages, and what follows each outcome, with the retry policy.

The services queue a source's first `source_process` (created, reprocessed); everything after that is queued
here, including the first run of the sources a `links()` page added (knowledge/links.py). The pipeline and the state changes (knowledge/source_states.py) only report what happened; the tasks queue
what follows (the transcription stage, a retry after a backoff, the webhook of a finished source).

Queues (config.settings.CELERY_TASK_ROUTES): processing on `ingestion`, speech-to-text on `transcription`,
webhook deliveries on `webhooks`, so a long podcast never holds up documents and a slow receiver never holds up
either. `acks_late` + `reject_on_worker_lost` put the task of a killed worker back in its queue at once. The
redelivered task finds the source still under the dead run's lease (knowledge/source_states.py), so it tries
again when that lease expires (SOURCE_LEASE_SECONDS after the last heartbeat) and then takes the source over:
a transcription resumes under the claim it was handed, a processing task claims the source anew. A task whose
source is held by a live run keeps looking only while that run renews its lease, so the work is never started
twice. When the whole worker died, its message comes back only after the visibility timeout: the sweeper (every
minute) takes over busy sources whose lease expired, or, as the last resort, whose deadline passed.
"""

from dataclasses import asdict

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge import pipeline, source_states, webhooks
from knowledge.pipeline import Outcome, Result
from knowledge.refresh import sources_refresh
from knowledge.upload_cleanup import uploads_expire_unattached  # noqa: F401  (so the worker registers it)

RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 300
LEASE_MARGIN_SECONDS = 1
# The ingestion stages run longer than the global limits allow (config/settings.py explains the numbers).
STAGE_TIME_LIMITS = {
    "soft_time_limit": settings.SOURCE_STAGE_TIME_LIMIT_SECONDS,
    "time_limit": settings.SOURCE_STAGE_TIME_LIMIT_SECONDS + 60,
}


def retry_backoff(attempts: int) -> int:
    """Seconds before a source released after a transient failure is processed again: 5, 10, 20… capped.

    Counted from the source's attempts (its claims), not from the Celery task's retries: a transcription that
    fails is retried as a new processing task, whose own retry count starts again at zero.
    """
    return min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


def lease_wait(outcome: Outcome, *, eager: bool = False) -> float | None:
    """Seconds until the live lease that kept this task from its source expires (a moment after, so the claim
    finds it expired), or None when no live run holds the source (finished, or its claim was lost).

    None as well for a task run in-process (`apply()`): Celery would run its retry again at once, not after the
    wait, over and over while the lease lives."""
    if eager or outcome.result is not Result.NOT_CLAIMED or outcome.lease_expires_at is None:
        return None
    return max((outcome.lease_expires_at - timezone.now()).total_seconds(), 0) + LEASE_MARGIN_SECONDS


@shared_task(name="knowledge.source_process", bind=True, max_retries=None, **STAGE_TIME_LIMITS)
def source_process(self, source_id: str) -> str:
    outcome = pipeline.source_process(source_id)
    if outcome.result is Result.RETRY_LATER:
        raise self.retry(countdown=retry_backoff(outcome.attempts))
    if (wait := lease_wait(outcome, eager=self.request.is_eager)) is not None:
        raise self.retry(countdown=wait)
    _follow_up(outcome)
    return outcome.result.value


@shared_task(name="knowledge.source_transcribe", bind=True, max_retries=None, **STAGE_TIME_LIMITS)
def source_transcribe(self, source_id: str, claimed_at: str) -> str:
    outcome = pipeline.source_transcribe(source_id, claimed_at)
    if (wait := lease_wait(outcome, eager=self.request.is_eager)) is not None:
        raise self.retry(countdown=wait)
    if outcome.result is Result.RETRY_LATER:
        # The source went back to pending: the whole source is processed again, fetching the audio anew.
        source_process.apply_async((source_id,), countdown=retry_backoff(outcome.attempts))
    _follow_up(outcome)
    return outcome.result.value


@shared_task(name="knowledge.sources_sweep_stuck")
def sources_sweep_stuck() -> dict:
    swept = source_states.sources_sweep()
    for source_id in swept.requeued + swept.resent:
        transaction.on_commit(lambda source_id=source_id: source_process.delay(source_id))
    for source_id in swept.failed:
        _source_outcome_notify(source_id)
    # The webhooks whose queued attempt was lost the same way.
    lost = webhooks.deliveries_lost()
    for delivery_id in lost:
        transaction.on_commit(lambda delivery_id=delivery_id: webhook_deliver.delay(delivery_id))
    return {**asdict(swept), "webhooks_resent": lost}


@shared_task(name="knowledge.sources_refresh_due")
def sources_refresh_due() -> list[str]:
    """URL and feed sources whose refreshIntervalHours has passed are fetched again (knowledge/refresh.py)."""
    refreshed = sources_refresh()
    for source_id in refreshed:
        transaction.on_commit(lambda source_id=source_id: source_process.delay(source_id))
    return refreshed


@shared_task(name="knowledge.webhook_deliver", bind=True, max_retries=None)
def webhook_deliver(self, delivery_id: str) -> str:
    outcome = webhooks.delivery_attempt(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


def _follow_up(outcome: Outcome) -> None:
    if outcome.result is Result.NEEDS_TRANSCRIPTION:
        source_id, claimed_at = outcome.source_id, outcome.claim.started_at.isoformat()
        transaction.on_commit(lambda: source_transcribe.delay(source_id, claimed_at))
    elif outcome.result in (Result.READY, Result.FAILED):
        _source_outcome_notify(outcome.source_id)
        # The pages a links() page links to, committed with it (knowledge/links.py).
        for source_id in outcome.linked_source_ids:
            transaction.on_commit(lambda source_id=source_id: source_process.delay(source_id))


def _source_outcome_notify(source_id: str) -> None:
    """Records the webhook of a finished source (when it has a callbackUrl) and queues its delivery."""
    delivery = webhooks.delivery_create(source_id)
    if delivery is not None:
        transaction.on_commit(lambda: webhook_deliver.delay(delivery.id))
