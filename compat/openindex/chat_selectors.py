"""Reads of OpenIndex chats: the conversations of the `openindex` channel with minds the key may use
(conversations.selectors decides which), never another workspace's."""

from datetime import UTC, datetime

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from conversations.models import MESSAGE_ORDER, Conversation, Message
from conversations.selectors import conversations_of_principal
from knowledge.models import Collection
from minds.models import Mind


def chat_agent_id(conversation: Conversation) -> str | None:
    """The agent a chat reports: its mind, except for a chat with a collection that named no agent (the general
    agent answers it, but the chat is the collection's)."""
    if conversation.collection_id and conversation.mind.is_default_agent:
        return None
    return conversation.mind_id


def _chats(principal: ApiKeyPrincipal) -> QuerySet[Conversation]:
    return conversations_of_principal(principal).filter(channel=Conversation.Channel.OPENINDEX)


def chat_get(*, principal: ApiKeyPrincipal, chat_id: str) -> Conversation:
    chat = _chats(principal).filter(id=chat_id).select_related("mind").first()
    if chat is None:
        raise NotFound("Chat not found.")
    return chat


def chats_page(
    *,
    principal: ApiKeyPrincipal,
    agent: Mind | None,
    collection: Collection | None,
    start_after_ms: int | None,
    limit: int,
    include_empty: bool,
) -> list[Conversation]:
    """Most recently active first; `start_after_ms` is the `updatedAt` of the last chat of the previous page.

    With neither an agent nor a collection, the general agent's own chats (OpenIndex: "If no agent_id or
    collection_id is specified, the default agent 'Jack Of All Trades' will be used").
    """
    chats = _chats(principal)
    if collection is not None:
        chats = chats.filter(collection=collection)
    if agent is not None:
        chats = chats.filter(mind=agent)
        if agent.is_default_agent and collection is None:
            chats = chats.filter(collection__isnull=True)
    if agent is None and collection is None:
        chats = chats.filter(mind__is_default_agent=True, collection__isnull=True)
    if not include_empty:
        chats = chats.filter(Exists(Message.objects.filter(conversation=OuterRef("pk"))))
    if start_after_ms is not None:
        chats = chats.filter(updated_at__lt=datetime.fromtimestamp(start_after_ms / 1000, tz=UTC))
    chats = (
        chats.select_related("mind")
        .prefetch_related(Prefetch("messages", queryset=Message.objects.order_by(*MESSAGE_ORDER)))
        .order_by("-updated_at", "-id")
    )
    return list(chats[:limit])
