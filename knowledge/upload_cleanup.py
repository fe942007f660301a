"""Expiry of uploads no source uses: an upload is the first half of adding a `document` or `podcast` source, and
one never followed by its source would hold storage (and count against the workspace's limit) forever.

The beat schedule (config/settings.py CELERY_BEAT_SCHEDULE) runs the task hourly; knowledge/tasks.py imports this
module so the worker registers it. An upload still used by a source is never expired, however old; the TTL counts
from the upload's first arrival (a deduplicated upload of the same bytes returns the stored one, with its age).
"""

import os
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from knowledge.models import Source, UploadedFile

BATCH = 500


@shared_task(name="knowledge.uploads_expire_unattached")
def uploads_expire_unattached() -> int:
    """Deletes the unattached uploads older than UPLOAD_UNATTACHED_TTL_HOURS, in batches. Returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.UPLOAD_UNATTACHED_TTL_HOURS)
    total = 0
    while True:
        deleted = _expire_batch(cutoff)
        total += deleted
        if deleted < BATCH:
            return total


def _expire_batch(cutoff) -> int:
    with transaction.atomic():
        # skip_locked: a row another transaction holds (a concurrent run, a source being written with a key to
        # it) is left for the next run rather than waited for.
        expired = list(
            UploadedFile.objects.select_for_update(skip_locked=True)
            .filter(created_at__lt=cutoff)
            .filter(~Exists(Source.objects.filter(upload=OuterRef("pk"))))
            .order_by("created_at")
            .values_list("pk", "file")[:BATCH]
        )
        UploadedFile.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
        names = [name for _, name in expired if name]
        # The files go once the deletion has committed: a file is never removed while its row could roll back.
        transaction.on_commit(lambda: _delete_files(names))
    return len(expired)


def _delete_files(names: list[str]) -> None:
    for name in names:
        upload_file_delete(name)


def upload_file_delete(name: str) -> None:
    """Deletes an upload's file and, on a local disk, the folder of its own it was stored in (upload_path gives
    each upload one), so expired and refused uploads leave no empty folders behind."""
    default_storage.delete(name)
    try:
        os.rmdir(os.path.dirname(default_storage.path(name)))
    except (
        NotImplementedError,
        OSError,
    ):  # remote storage has no folders; a folder still holding a file stays
        pass
