"""Celery tasks: thin wrappers over the pipeline, with the retry policy.

Queues (config.settings.CELERY_TASK_ROUTES): processing on `ingestion`, speech-to-text on `transcription`,
webhook deliveries on `webhooks`, so a long podcast never holds up documents and a slow receiver never holds up
either. `acks_late` + `reject_on_worker_lost` make a killed worker's task come back; the sweeper catches the rest.
"""

from celery import shared_task

from knowledge import pipeline, webhooks

RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 300


def _backoff(retries: int) -> int:
    return min(RETRY_BASE_SECONDS * 2**retries, RETRY_MAX_SECONDS)


@shared_task(name="knowledge.source_process", bind=True, max_retries=None)
def source_process(self, source_id: str) -> str:
    try:
        return pipeline.source_process(source_id)
    except pipeline.RetryLater as exc:
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc


@shared_task(name="knowledge.source_transcribe", bind=True, max_retries=None)
def source_transcribe(self, source_id: str, claimed_at: str) -> str:
    try:
        return pipeline.source_transcribe(source_id, claimed_at)
    except pipeline.RetryLater:
        # The source went back to pending: the whole source is processed again, fetching the audio anew.
        source_process.apply_async((source_id,), countdown=_backoff(self.request.retries))
        return "retry"


@shared_task(name="knowledge.sources_sweep_stuck")
def sources_sweep_stuck() -> dict:
    return pipeline.sources_sweep_stuck()


@shared_task(name="knowledge.webhook_deliver", bind=True, max_retries=None)
def webhook_deliver(self, delivery_id: str) -> str:
    outcome = webhooks.delivery_attempt(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
