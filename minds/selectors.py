"""Reads of minds, always scoped to the caller's workspace (and the key's mind restriction)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Workspace
from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from minds.errors import MindAccessDenied
from minds.models import Mind

RECENT_CONVERSATION_DAYS = 30


# Access to a mind through any key-authenticated surface (native API, OpenAI-compatible, and every adapter built on
# them) is decided here and nowhere else:
#   reach      - the key's workspace, narrowed to its `mindIds` restriction; outside it a mind does not exist (404);
#   visibility - a mind with visibility "groups" is open only to keys whose member (api-user) is in one of its
#                `allowedGroupIds`; others are told they have no access (403 mind_access_denied).
# Public pages do not use keys and serve published minds only (published_mind_by_slug).


def minds_reachable(*, principal: ApiKeyPrincipal) -> QuerySet[Mind]:
    minds = Mind.objects.filter(workspace=principal.workspace)
    if principal.allowed_mind_ids:
        minds = minds.filter(id__in=principal.allowed_mind_ids)
    return minds


def minds_visible(*, principal: ApiKeyPrincipal) -> QuerySet[Mind]:
    """The minds a key may use: within its reach and open to its member."""
    open_to_member = Q(visibility=Mind.Visibility.WORKSPACE)
    if principal.group_ids:
        open_to_member |= Q(allowed_group_ids__has_any_keys=sorted(principal.group_ids))
    return minds_reachable(principal=principal).filter(open_to_member)


def mind_access_check(*, principal: ApiKeyPrincipal, mind: Mind) -> None:
    if mind.visibility == Mind.Visibility.GROUPS and not principal.group_ids & set(
        mind.allowed_group_ids or []
    ):
        raise MindAccessDenied()


def _reverse_count(model, relation: str) -> Coalesce:
    """A correlated count of a reverse relation, evaluated only for the rows of the page (a JOIN + GROUP BY would
    count every row). The related model is reached through the relation knowledge or conversations declare on
    `model`, so this app never imports them: dependencies point one way (docs/architecture.md)."""
    field = model._meta.get_field(relation)
    rows = (
        field.related_model.objects.filter(**{field.field.name: OuterRef("pk")})
        .order_by()
        .values(field.field.name)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


def mind_list(*, principal: ApiKeyPrincipal) -> QuerySet[Mind]:
    return (
        minds_visible(principal=principal)
        .annotate(
            knowledge_source_count=_reverse_count(Mind, "sources"),
            conversation_count=_reverse_count(Mind, "conversations"),
        )
        # One query for the page's collectionIds, not one per mind.
        .prefetch_related("collections")
        .order_by("-created_at")
    )


def mind_get(*, principal: ApiKeyPrincipal, mind_id: str) -> Mind:
    """The mind by id or slug, if the key may use it; another workspace's mind is answered like a missing one."""
    lookup = Q(id=mind_id) | Q(slug=mind_id)
    mind = minds_reachable(principal=principal).filter(lookup).select_related("workspace").first()
    if mind is None:
        raise NotFound("Mind not found.")
    mind_access_check(principal=principal, mind=mind)
    return mind


def mind_detail_counts(*, mind: Mind) -> dict:
    since = timezone.now() - timedelta(days=RECENT_CONVERSATION_DAYS)
    by_status = dict(mind.sources.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    conversations = mind.conversations.aggregate(
        total=Count("id"), recent=Count("id", filter=Q(created_at__gte=since))
    )
    stats = {
        status: by_status.get(status, 0)
        for status in ("ready", "pending", "processing", "transcribing", "failed")
    }
    return {
        "knowledge_source_count": sum(by_status.values()),
        "conversation_count": conversations["total"],
        "recent_conversation_count": conversations["recent"],
        "source_stats": {"total": sum(by_status.values()), **stats},
    }


def mind_publish_warning(*, mind: Mind) -> str | None:
    """Told to whoever publishes a mind that has no ready source: the public page can only answer from the prompt."""
    if mind.is_published and not mind.sources.filter(status="ready").exists():
        return "This mind has no ready knowledge source yet; it can only answer from its prompt."
    return None


def _reverse_sum(model, relation: str, column: str) -> Coalesce:
    """Like `_reverse_count`: the sum of a column of a reverse relation (the bytes of a workspace's uploads)."""
    field = model._meta.get_field(relation)
    rows = (
        field.related_model.objects.filter(**{field.field.name: OuterRef("pk")})
        .order_by()
        .values(field.field.name)
        .annotate(total=Sum(column))
        .values("total")
    )
    return Coalesce(Subquery(rows), 0)


def workspace_usage(*, workspace: Workspace) -> dict:
    # The counts and the stored bytes in one round trip.
    counts = (
        Workspace.objects.filter(pk=workspace.pk)
        .annotate(
            minds_used=_reverse_count(Workspace, "minds"),
            sources_used=_reverse_count(Workspace, "sources"),
            storage_used=_reverse_sum(Workspace, "uploads", "file_size"),
        )
        .values("minds_used", "sources_used", "storage_used")
        .get()
    )
    return {
        "mindsUsed": counts["minds_used"],
        "mindsLimit": workspace.effective_minds_limit,
        "sourcesUsed": counts["sources_used"],
        "sourcesLimit": workspace.effective_sources_limit,
        "storageUsed": counts["storage_used"],
        "storageLimit": settings.STORAGE_LIMIT_BYTES,
    }


def published_mind_by_slug(*, slug: str) -> Mind | None:
    return Mind.objects.filter(slug=slug, is_published=True).select_related("workspace").first()
