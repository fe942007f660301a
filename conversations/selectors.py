"""Reads of conversations, scoped to the caller's workspace and the key's mind restriction."""

from datetime import UTC, datetime

from django.db.models import Prefetch, Q, QuerySet

from apikeys.authentication import ApiKeyPrincipal
from config.api.errors import NotFound
from conversations.models import MESSAGE_ORDER, Conversation, Message
from minds.models import Mind
from minds.selectors import minds_visible


def conversations_of_principal(principal: ApiKeyPrincipal) -> QuerySet[Conversation]:
    """Conversations with the minds the key may use (minds.selectors decides which)."""
    return Conversation.objects.filter(
        workspace=principal.workspace, mind__in=minds_visible(principal=principal)
    )


def conversation_page(*, mind: Mind, start_after: str | None, limit: int) -> tuple[list[Conversation], bool]:
    """Newest first; `start_after` is the id of the last conversation of the previous page."""
    conversations = Conversation.objects.filter(mind=mind).order_by("-created_at", "-id")
    if start_after:
        anchor = Conversation.objects.filter(mind=mind, id=start_after).first()
        if anchor is None:
            raise NotFound("The startAfter conversation was not found.")
        conversations = conversations.filter(created_at__lte=anchor.created_at).exclude(
            created_at=anchor.created_at, id__gte=anchor.id
        )
    rows = list(conversations.prefetch_related("messages")[: limit + 1])
    return rows[:limit], len(rows) > limit


def conversation_get(*, principal: ApiKeyPrincipal, conversation_id: str) -> Conversation:
    conversation = (
        conversations_of_principal(principal)
        .filter(id=conversation_id)
        .select_related("mind")
        .prefetch_related(Prefetch("messages", queryset=Message.objects.order_by(*MESSAGE_ORDER)))
        .first()
    )
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


def message_get(*, conversation: Conversation, message_id: str) -> Message:
    message = Message.objects.filter(conversation=conversation, id=message_id).first()
    if message is None:
        raise NotFound("Message not found.")
    return message


def chatlogs(
    *,
    principal: ApiKeyPrincipal,
    start: float | None,
    end: float | None,
    user_id: str | None,
    limit: int,
    offset: int,
):
    conversations = conversations_of_principal(principal).select_related("mind", "member")
    if start is not None:
        conversations = conversations.filter(created_at__gte=datetime.fromtimestamp(start, tz=UTC))
    if end is not None:
        conversations = conversations.filter(created_at__lte=datetime.fromtimestamp(end, tz=UTC))
    if user_id:
        # chatlog_data reports a member's id for API chats and the visitor's id for public/widget chats.
        conversations = conversations.filter(Q(member_id=user_id) | Q(visitor_id=user_id))
    conversations = conversations.order_by("-created_at", "-id").prefetch_related(
        Prefetch("messages", queryset=Message.objects.order_by(*MESSAGE_ORDER))
    )
    return list(conversations[offset : offset + limit])
