"""Reads of OpenIndex agents, which are minds: access is decided by minds.selectors, only the wording is
OpenIndex's."""

from django.db.models import QuerySet

from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from minds.errors import MindAccessDenied
from minds.models import Mind
from minds.selectors import mind_get, minds_visible

AGENT_ACCESS_DENIED = (
    "You do not have access to this agent: it is open only to some groups of the workspace. "
    "Ask your workspace admin to add you to one of them."
)


def agents_list(*, principal: ApiKeyPrincipal) -> QuerySet[Mind]:
    """The minds the key may use, newest first; the general agent is among them once it exists."""
    return minds_visible(principal=principal).prefetch_related("collections").order_by("-created_at", "-id")


def agent_get(*, principal: ApiKeyPrincipal, agent_id: str) -> Mind:
    """The mind by id or slug; 404 outside the key's reach, 403 for a group-only mind the key may not use."""
    try:
        return mind_get(principal=principal, mind_id=agent_id)
    except NotFound:
        raise NotFound("Agent not found.") from None
    except MindAccessDenied:
        raise MindAccessDenied(AGENT_ACCESS_DENIED) from None
