"""Reads of minds, always scoped to the caller's workspace (and the key's mind restriction)."""

from datetime import timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Workspace
from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from minds.models import Mind

RECENT_CONVERSATION_DAYS = 30


def mind_list(*, principal: ApiKeyPrincipal) -> QuerySet[Mind]:
    minds = Mind.objects.filter(workspace=principal.workspace)
    if principal.allowed_mind_ids:
        minds = minds.filter(id__in=principal.allowed_mind_ids)
    from conversations.models import Conversation  # those apps import minds
    from knowledge.models import Source

    # Correlated subqueries, evaluated only for the rows of the page (a JOIN + GROUP BY would count every row).
    sources = (
        Source.objects.filter(mind=OuterRef("pk"))
        .order_by()
        .values("mind")
        .annotate(n=Count("id"))
        .values("n")
    )
    conversations = (
        Conversation.objects.filter(mind=OuterRef("pk"))
        .order_by()
        .values("mind")
        .annotate(n=Count("id"))
        .values("n")
    )
    return minds.annotate(
        knowledge_source_count=Coalesce(Subquery(sources), 0),
        conversation_count=Coalesce(Subquery(conversations), 0),
    ).order_by("-created_at")


def mind_get(*, principal: ApiKeyPrincipal, mind_id: str) -> Mind:
    """The mind by id or slug; another workspace's mind is answered exactly like a missing one."""
    lookup = Q(id=mind_id) | Q(slug=mind_id)
    mind = Mind.objects.filter(lookup, workspace=principal.workspace).select_related("workspace").first()
    if mind is None or not principal.can_access_mind(mind.id):
        raise NotFound("Mind not found.")
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


def workspace_usage(*, workspace: Workspace) -> dict:
    from knowledge.models import Source  # knowledge imports minds

    # Both counts in one round trip.
    counts = (
        Workspace.objects.filter(pk=workspace.pk)
        .annotate(
            minds_used=Subquery(
                Mind.objects.filter(workspace=OuterRef("pk"))
                .order_by()
                .values("workspace")
                .annotate(n=Count("id"))
                .values("n")
            ),
            sources_used=Subquery(
                Source.objects.filter(workspace=OuterRef("pk"))
                .order_by()
                .values("workspace")
                .annotate(n=Count("id"))
                .values("n")
            ),
        )
        .values("minds_used", "sources_used")
        .get()
    )
    return {
        "mindsUsed": counts["minds_used"] or 0,
        "mindsLimit": workspace.effective_minds_limit,
        "sourcesUsed": counts["sources_used"] or 0,
        "sourcesLimit": workspace.effective_sources_limit,
    }


def published_mind_by_slug(*, slug: str) -> Mind | None:
    return Mind.objects.filter(slug=slug, is_published=True).select_related("workspace").first()
