"""Writes of knowledge sources and uploads."""

from collections.abc import Callable

from django.core.files.storage import default_storage

from knowledge.models import UploadedFile
from minds.models import Mind


def stored_files_delete(names: list[str]) -> None:
    for name in names:
        if name:
            default_storage.delete(name)


def mind_files_delete(*, mind: Mind) -> Callable[[], None]:
    """Returns a callable that removes the mind's stored files; run it after the rows are deleted."""
    names = list(UploadedFile.objects.filter(mind=mind).values_list("file", flat=True))
    return lambda: stored_files_delete(names)
