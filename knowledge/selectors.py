"""Reads of knowledge sources, always inside one mind of the caller's workspace."""

from django.db.models import QuerySet

from config.api.errors import NotFound
from knowledge.models import Source, UploadedFile
from minds.models import Mind


def source_list(*, mind: Mind, status: str | None = None, type: str | None = None) -> QuerySet[Source]:
    sources = Source.objects.filter(mind=mind, workspace_id=mind.workspace_id).select_related("upload")
    if status:
        sources = sources.filter(status=status)
    if type:
        sources = sources.filter(type=type)
    return sources.order_by("-created_at", "-id")


def source_get(*, mind: Mind, source_id: str) -> Source:
    source = (
        Source.objects.filter(id=source_id, mind=mind, workspace_id=mind.workspace_id)
        .select_related("upload")
        .first()
    )
    if source is None:
        raise NotFound("Knowledge source not found.")
    return source


def upload_get(*, mind: Mind, upload_id: str) -> UploadedFile:
    upload = UploadedFile.objects.filter(id=upload_id, mind=mind, workspace_id=mind.workspace_id).first()
    if upload is None:
        raise NotFound("Uploaded file not found.")
    return upload
