"""The OpenIndex surface's writes, as adapters over the minds, knowledge and conversations services: no model is
written here directly, so limits, validation and the audit log are the services' own."""

from dataclasses import dataclass

from django.db import transaction

from apikeys.authentication import ApiKeyPrincipal
from compat.openindex.agent_selectors import agent_get
from compat.openindex.chat_selectors import chat_agent_id, chat_get
from config.api.errors import LimitExceeded, NotFound, PermissionDenied, ValidationFailed
from knowledge.models import Collection
from knowledge.selectors import collection_get
from knowledge.services import mind_collections_set
from minds.models import Mind
from minds.selectors import mind_get
from minds.services import MindChanges, mind_create, mind_default_agent, mind_update

AGENT_ALLOWANCE_EXCEEDED = "exceeded agent allowance"
GENERAL_AGENT_OUT_OF_REACH = (
    "This key may chat only with the agents it is limited to, and the general agent is not one of them: "
    "name one of its agents in agentId."
)


def _collection_ids(*, principal: ApiKeyPrincipal, collection_ids: list[str]) -> list[str]:
    """The ids of the named collections (ids or slugs) the key reaches; one it does not reach is invalid input,
    answered like a missing one so another workspace's ids cannot be probed."""
    ids = []
    for collection_id in collection_ids:
        try:
            ids.append(collection_get(principal=principal, collection_id=collection_id).id)
        except NotFound:
            raise ValidationFailed(
                f"invalid collections: unknown collection {collection_id}.",
                details={"fields": {"collections": [f"Unknown collection: {collection_id}"]}},
            ) from None
    return ids


@transaction.atomic
def agent_save(
    *,
    principal: ApiKeyPrincipal,
    agent_id: str | None,
    changes: MindChanges,
    collection_ids: list[str] | None,
) -> Mind:
    """Creates an agent, or updates the one `agent_id` names (only the fields given), and attaches exactly
    `collection_ids` when given; all or nothing."""
    collections = None
    if collection_ids is not None:
        collections = _collection_ids(principal=principal, collection_ids=collection_ids)
    if agent_id:
        mind = mind_update(mind=agent_get(principal=principal, agent_id=agent_id), changes=changes)
    else:
        if not changes.name:
            raise ValidationFailed("invalid name", details={"fields": {"name": ["Required."]}})
        try:
            mind = mind_create(workspace=principal.workspace, changes=changes)
        except LimitExceeded as exc:
            raise LimitExceeded(AGENT_ALLOWANCE_EXCEEDED, details=exc.details) from None
    if collections is not None:
        mind_collections_set(mind=mind, collection_ids=collections)
    return mind


def general_agent(*, principal: ApiKeyPrincipal) -> Mind:
    """The workspace's general agent ("Jack Of All Trades"), made on first use. A key limited to some minds does
    not reach it (minds.selectors decides), so it may not chat without naming one of its agents."""
    mind = mind_default_agent(workspace=principal.workspace)
    try:
        return mind_get(principal=principal, mind_id=mind.id)
    except NotFound:
        raise PermissionDenied(GENERAL_AGENT_OUT_OF_REACH) from None


@dataclass(frozen=True)
class ChatTarget:
    """Who answers a chat message and over what: the mind, the conversation to continue (None starts one), the
    collection a new chat is with, and the ids the answer reports."""

    mind: Mind
    conversation_id: str | None
    collection: Collection | None
    agent_id: str | None
    collection_id: str | None


def _mismatch(field: str, what: str) -> ValidationFailed:
    return ValidationFailed(
        f"invalid {field}: the chat is with another {what}.",
        details={"fields": {field: ["Does not match the chat."]}},
    )


def chat_target(
    *, principal: ApiKeyPrincipal, chat_id: str | None, agent_id: str | None, collection_id: str | None
) -> ChatTarget:
    """Resolves `POST /api/chat`'s target (docs/openindex.md):

    - `chatId`: that chat of the key (404 otherwise), with its own agent and collection; an `agentId` or
      `collectionId` sent beside it must be the chat's.
    - `agentId` alone: the agent, over its own knowledge and its attached collections.
    - `collectionId` alone: the general agent, over that collection only.
    - both: the agent's persona and settings, over that collection only.
    - neither: the general agent over its own knowledge.
    """
    if chat_id:
        chat = chat_get(principal=principal, chat_id=chat_id)
        reported_agent = chat_agent_id(chat)
        if agent_id and agent_get(principal=principal, agent_id=agent_id).id != reported_agent:
            raise _mismatch("agentId", "agent")
        if collection_id and collection_get(principal=principal, collection_id=collection_id).id != (
            chat.collection_id
        ):
            raise _mismatch("collectionId", "collection")
        return ChatTarget(
            mind=chat.mind,
            conversation_id=chat.id,
            collection=None,  # the conversation keeps its collection (conversations.chat)
            agent_id=reported_agent,
            collection_id=chat.collection_id,
        )
    collection = collection_get(principal=principal, collection_id=collection_id) if collection_id else None
    if agent_id:
        mind = agent_get(principal=principal, agent_id=agent_id)
        reported_agent = mind.id
    else:
        mind = general_agent(principal=principal)
        reported_agent = None if collection else mind.id
    return ChatTarget(
        mind=mind,
        conversation_id=None,
        collection=collection,
        agent_id=reported_agent,
        collection_id=collection.id if collection else None,
    )
