"""Reads of minds, always scoped to the caller's workspace (and the key's mind restriction)."""

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
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
    return minds.annotate(
        knowledge_source_count=Count("sources", distinct=True),
        conversation_count=Count("conversations", distinct=True),
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
    stats = {status: by_status.get(status, 0) for status in ("ready", "pending", "processing", "transcribing", "failed")}
    return {
        "knowledge_source_count": sum(by_status.values()),
        "conversation_count": conversations["total"],
        "recent_conversation_count": conversations["recent"],
        "source_stats": {"total": sum(by_status.values()), **stats},
    }


def workspace_usage(*, workspace: Workspace) -> dict:
    return {
        "mindsUsed": Mind.objects.filter(workspace=workspace).count(),
        "mindsLimit": workspace.effective_minds_limit,
        "sourcesUsed": workspace.sources.count(),
        "sourcesLimit": workspace.effective_sources_limit,
    }


def published_mind_by_slug(*, slug: str) -> Mind | None:
    return Mind.objects.filter(slug=slug, is_published=True).select_related("workspace").first()
