"""Scheduled re-sync: a URL or feed source with `refreshIntervalHours` is fetched again that often.

A beat task (`knowledge.sources_refresh_due` in knowledge/tasks.py, every 5 minutes) sends the finished sources
whose `next_refresh_at` has passed back to `pending`, as `POST …/reprocess` does, moving that time one interval on,
and queues them. Indexing again re-embeds only the chunks whose text changed (knowledge/indexing.py), and a feed
only transcribes new episodes (knowledge/feed_refresh.py), so an unchanged source costs a fetch and a parse. The
next time moves on before the refresh runs, so a source that keeps failing is retried once per interval, not in a
loop; a busy source (processing, or reprocessed meanwhile) is left for the next check.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from knowledge.models import Source
from knowledge.source_states import pending_again

BATCH = 100


def sources_refresh(limit: int = BATCH) -> list[str]:
    """Sends up to `limit` due sources back to pending and returns their ids, for the caller to queue after the
    commit."""
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
            for name, value in pending_again(now).items():
                setattr(source, name, value)
            source.next_refresh_at = now + timedelta(hours=source.refresh_interval_hours)
            source.updated_at = now
        Source.objects.bulk_update(due, [*pending_again(now), "next_refresh_at", "updated_at"])
    return [source.id for source in due]
