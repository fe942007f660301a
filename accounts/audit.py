"""The audit log: who changed what, written in the same transaction as the change.

Services call `audit_record` next to the write they make, inside its transaction, so a change and its entry
commit or roll back together. Who acted is taken from `acting_as`, which the API's base view enters once the key
is authenticated (and the admin through `AdminActorMiddleware`): threading an actor argument through every
service would add a parameter most callers only pass on.

Written here rather than with django-auditlog or django-simple-history: those record row diffs from model
signals with a Django user as the actor, while this log records domain actions (publish, reprocess, revoke,
rotate) by API keys and their api-users, in the shape TypingMind's audit-log API returns.
"""

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import AuditLog, Workspace

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"key_hash", "webhook_secret", "secret", "password", "plaintext", "headers"})
MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Actor:
    key_id: str = ""
    member_id: str | None = None
    label: str = "system"


SYSTEM = Actor()
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def actor_enter(actor: Actor) -> contextvars.Token:
    """For a request whose start and end are separate calls (the base view's initial/finalize_response)."""
    return _current.set(actor)


def actor_leave(token: contextvars.Token) -> None:
    _current.reset(token)


def current_actor() -> Actor:
    return _current.get()


def _shown(field: str, value: Any) -> Any:
    if field in SECRET_FIELDS:
        return REDACTED
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"from", "to"}} for the fields whose values differ; secrets never appear."""
    return {
        field: {"from": _shown(field, before.get(field)), "to": _shown(field, after.get(field))}
        for field in after
        if before.get(field) != after.get(field)
    }


def values_shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of something created, as an audit entry shows them (secrets redacted, long texts cut)."""
    return {field: _shown(field, value) for field, value in values.items()}


def audit_record(
    *,
    workspace: Workspace | str,
    entity: str,
    entity_id: str,
    entity_name: str = "",
    action: str,
    changes: Mapping[str, Any] | None = None,
) -> AuditLog:
    """`changes` is `changes_between(before, after)` for an update or `values_shown(...)` for a creation."""
    actor = current_actor()
    return AuditLog.objects.create(
        workspace_id=workspace if isinstance(workspace, str) else workspace.pk,
        actor_key_id=actor.key_id,
        actor_member_id=actor.member_id,
        actor_label=actor.label[:200],
        entity=entity,
        entity_id=entity_id,
        entity_name=(entity_name or "")[:255],
        action=action,
        changes=dict(changes or {}),
    )


class AdminActorMiddleware:
    """Changes made in the Django admin are recorded with the admin user as the actor."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/" + settings.ADMIN_PATH):
            return self.get_response(request)
        user = getattr(request, "user", None)
        label = f"admin:{user.get_username()}" if user is not None and user.is_authenticated else "admin"
        with acting_as(Actor(label=label)):
            return self.get_response(request)
