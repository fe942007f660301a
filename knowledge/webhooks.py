"""Outgoing webhooks for source outcomes, signed the Standard Webhooks way.

`webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` keyed with the workspace's `whsec_` secret. Failed attempts are retried with exponential
backoff; every attempt is recorded (status, error, time) and visible in the admin.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from knowledge import safe_http
from knowledge.errors import ExtractionError, TransientError
from knowledge.models import Source, WebhookAttempt, WebhookDelivery
from knowledge.serializers import source_data

logger = logging.getLogger(__name__)


def delivery_create(source_id: str) -> WebhookDelivery | None:
    """Records `source.ready` / `source.failed` for a finished source with a callbackUrl (knowledge/tasks.py
    queues its delivery); None when there is nothing to send."""
    source = Source.objects.select_related("upload").filter(id=source_id).first()
    if source is None or not source.callback_url or not source.is_finished:
        return None
    event = f"source.{source.status}"
    return WebhookDelivery.objects.create(
        workspace_id=source.workspace_id,
        source=source,
        event=event,
        url=source.callback_url,
        payload={
            "type": event,
            "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
            "data": {"source": source_data(source)},
        },
        next_attempt_at=timezone.now(),
    )


def deliveries_lost(now: datetime | None = None) -> list[str]:
    """Pending deliveries whose next attempt is overdue by more than SOURCE_PROCESSING_DEADLINE_SECONDS: their
    queued message was lost (Redis restarted empty, or the publish failed while it was down). Each is moved to now,
    so one sweep queues it once (knowledge.sources_sweep_stuck). A live retry runs at its time, far inside that
    margin; one held back longer than that (a webhooks queue backed up for half an hour) may be sent twice, with
    the same `webhook-id`, which the receiver uses to drop the repeat."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS)
    lost = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lt=overdue)
    return [
        delivery_id
        for delivery_id in lost.values_list("id", flat=True)
        if lost.filter(id=delivery_id).update(next_attempt_at=now, updated_at=now)
    ]


def sign(secret: str, message_id: str, timestamp: datetime, body: bytes) -> str:
    return Webhook(secret).sign(message_id, timestamp, body.decode())


def retry_delay(failed_attempts: int) -> float:
    """Seconds before the next attempt: WEBHOOK_RETRY_BASE_SECONDS after the first failure, doubled after each."""
    return settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (failed_attempts - 1)


@dataclass
class AttemptOutcome:
    status: str
    retry_in: float | None = None


def delivery_attempt(delivery_id: str) -> AttemptOutcome:
    delivery = WebhookDelivery.objects.select_related("workspace").filter(id=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return AttemptOutcome("skipped")
    number = delivery.attempt_count + 1
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    sent_at = datetime.now(tz=UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "Minds-Webhooks/1.0",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": sign(delivery.workspace.webhook_secret, delivery.id, sent_at, body),
    }
    started = time.monotonic()
    status_code, error, excerpt = None, "", ""
    try:
        status_code, excerpt = safe_http.post_json(
            delivery.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        )
        if not 200 <= status_code < 300:
            error = f"The receiver answered HTTP {status_code}."
    except (ExtractionError, TransientError) as exc:
        error = str(exc)
    except Exception as exc:  # a receiver must never crash the worker
        logger.exception("webhook %s failed", delivery.id)
        error = f"{exc.__class__.__name__}"
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = not error
    retry_in = None
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            status_code=status_code,
            error=error[:2000],
            response_excerpt=(excerpt or "")[:500],
            duration_ms=duration_ms,
        )
        delivery.attempt_count = number
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.next_attempt_at = None
        elif number >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            retry_in = retry_delay(number)
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        delivery.save(update_fields=["attempt_count", "status", "next_attempt_at", "updated_at"])
    if retry_in is not None:
        return AttemptOutcome("retrying", retry_in=retry_in)
    return AttemptOutcome(delivery.status)
