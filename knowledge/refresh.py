"""Scheduled re-sync: a URL or feed source with `refreshIntervalHours` is fetched again that often.

A beat task (`knowledge.sources_refresh_due`, every REFRESH_CHECK_SECONDS) takes the finished sources whose
`next_refresh_at` has passed, moves that time one interval on, and reprocesses them as `POST …/reprocess` does.
Indexing again re-embeds only the chunks whose text changed (knowledge/indexing.py), so an unchanged page costs a
fetch and a parse. The next time is set before the refresh runs, so a page that keeps failing is retried once per
interval, not in a loop; a busy source (still processing) is left for the next check.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from knowledge.errors import SourceBusy
from knowledge.models import Source

logger = logging.getLogger(__name__)

BATCH = 100


def sources_due(limit: int = BATCH) -> list[str]:
    """Claims up to `limit` due sources (their next time moves on) and returns their ids."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Source.objects.select_for_update(skip_locked=True)
            .filter(
                refresh_interval_hours__isnull=False,
                next_refresh_at__lte=now,
                status__in=(Source.Status.READY, Source.Status.FAILED),
            )
            .order_by("next_refresh_at")[:limit]
        )
        for source in due:
            source.next_refresh_at = now + timedelta(hours=source.refresh_interval_hours)
        Source.objects.bulk_update(due, ["next_refresh_at"])
    return [source.id for source in due]


@shared_task(name="knowledge.sources_refresh_due")
def sources_refresh_due() -> list[str]:
    from knowledge.services import (
        source_reprocess,
    )  # the services import the tasks module, which imports this

    refreshed = []
    for source_id in sources_due():
        source = Source.objects.filter(id=source_id).first()
        if source is None:
            continue
        try:
            source_reprocess(source=source)
        except SourceBusy:  # picked up by a reprocess in between: it is being fetched anyway
            continue
        refreshed.append(source_id)
    if refreshed:
        logger.info("refreshing %d sources", len(refreshed))
    return refreshed
