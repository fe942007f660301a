"""Reads of knowledge sources and collections, always inside the caller's workspace."""

from django.db.models import QuerySet

from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from knowledge.models import Collection, Source, UploadedFile
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


def collections_reachable(*, principal: ApiKeyPrincipal) -> QuerySet[Collection]:
    """The workspace's collections; a key restricted to some minds reaches only those attached to its minds."""
    collections = Collection.objects.filter(workspace=principal.workspace)
    if principal.allowed_mind_ids:
        collections = collections.filter(minds__id__in=principal.allowed_mind_ids).distinct()
    return collections


def collection_get(*, principal: ApiKeyPrincipal, collection_id: str) -> Collection:
    """By id or slug; another workspace's collection is answered like a missing one."""
    collections = collections_reachable(principal=principal).select_related("workspace")
    collection = (
        collections.filter(id=collection_id).first() or collections.filter(slug=collection_id).first()
    )
    if collection is None:
        raise NotFound("Collection not found.")
    return collection
