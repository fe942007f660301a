"""Reads of knowledge sources and collections, always inside the caller's workspace.

Sources, uploads and their lists take their owner (a mind, or a collection) already resolved through the access
rules: `minds.selectors.mind_get` for a mind, `collection_get` below for a collection.
"""

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from knowledge.errors import KeyRestrictedToMinds
from knowledge.models import Collection, Source, UploadedFile
from knowledge.source_creation import owner_fields, owner_of
from minds.models import Mind
from minds.selectors import minds_reachable

STATUSES = ("ready", "pending", "processing", "transcribing", "failed")


def _owned(model, mind: Mind | None, collection: Collection | None) -> QuerySet:
    owner = owner_of(mind, collection)
    return model.objects.filter(workspace_id=owner.workspace_id, **owner_fields(owner))


def source_list(
    *,
    mind: Mind | None = None,
    collection: Collection | None = None,
    status: str | None = None,
    type: str | None = None,
) -> QuerySet[Source]:
    sources = _owned(Source, mind, collection).select_related("upload")
    if status:
        sources = sources.filter(status=status)
    if type:
        sources = sources.filter(type=type)
    return sources.order_by("-created_at", "-id")


def source_get(*, mind: Mind | None = None, collection: Collection | None = None, source_id: str) -> Source:
    source = _owned(Source, mind, collection).filter(id=source_id).select_related("upload").first()
    if source is None:
        raise NotFound("Knowledge source not found.")
    return source


def upload_get(
    *, mind: Mind | None = None, collection: Collection | None = None, upload_id: str
) -> UploadedFile:
    upload = _owned(UploadedFile, mind, collection).filter(id=upload_id).first()
    if upload is None:
        raise NotFound("Uploaded file not found.")
    return upload


# Collections ------------------------------------------------------------------------------------------------------


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


def collection_manage_check(*, principal: ApiKeyPrincipal) -> None:
    """Creating or deleting a collection reaches beyond a mind-restricted key's minds (a collection may serve
    minds it does not reach), so only unrestricted keys may."""
    if principal.allowed_mind_ids:
        raise KeyRestrictedToMinds()


def _source_count() -> Coalesce:
    rows = (
        Source.objects.filter(collection=OuterRef("pk"))
        .order_by()
        .values("collection")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


def _with_minds(collections: QuerySet[Collection], principal: ApiKeyPrincipal) -> QuerySet[Collection]:
    """Each collection's attached minds, as far as the key reaches (`collection.reachable_minds`)."""
    reachable = minds_reachable(principal=principal).only("id").order_by("created_at", "id")
    return collections.prefetch_related(Prefetch("minds", queryset=reachable, to_attr="reachable_minds"))


def collection_list(*, principal: ApiKeyPrincipal) -> QuerySet[Collection]:
    return _with_minds(
        collections_reachable(principal=principal).annotate(knowledge_source_count=_source_count()),
        principal,
    ).order_by("-created_at", "-id")


def collection_with_minds(*, principal: ApiKeyPrincipal, collection: Collection) -> Collection:
    return _with_minds(
        Collection.objects.filter(pk=collection.pk).annotate(knowledge_source_count=_source_count()),
        principal,
    ).get()


def collection_source_stats(*, collection: Collection) -> dict:
    by_status = dict(
        collection.sources.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    return {"total": sum(by_status.values()), **{status: by_status.get(status, 0) for status in STATUSES}}


def mind_collection_list(*, principal: ApiKeyPrincipal, mind: Mind) -> QuerySet[Collection]:
    """The collections attached to a mind the key has resolved (every one is within the key's reach: a
    mind-restricted key reaches the collections attached to its minds)."""
    return _with_minds(mind.collections.annotate(knowledge_source_count=_source_count()), principal).order_by(
        "name", "id"
    )


def collections_with_sources(*, principal: ApiKeyPrincipal) -> QuerySet[Collection]:
    """The reachable collections with all their sources (`collection.sources.all()` without a query each)."""
    sources = Source.objects.order_by("created_at", "id")
    return (
        collections_reachable(principal=principal)
        .prefetch_related(Prefetch("sources", queryset=sources))
        .order_by("-created_at", "-id")
    )


def collection_status(sources: list[Source]) -> str:
    """A collection's state from its sources': `indexing` while any is unfinished; `failed` when it has sources
    and none became ready; `ready` otherwise (an empty collection is ready: there is nothing to index)."""
    if any(source.status in Source.UNFINISHED for source in sources):
        return "indexing"
    if sources and not any(source.status == Source.Status.READY for source in sources):
        return "failed"
    return "ready"
