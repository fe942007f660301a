"""Reads of members, groups, roles and the audit log, always scoped to the caller's workspace."""

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import AuditLog, Group, Member, Workspace
from accounts.roles import ROLES, Role
from apikeys.authentication import ApiKeyPrincipal
from config.api.pagination import Page, paginate
from teams.errors import AuditLogOutOfReach, GroupNotFound, MemberNotFound


def member_list(
    *, workspace: Workspace, email: str | None = None, tag: str | None = None, group_id: str | None = None
) -> QuerySet[Member]:
    """Every member, api-users included (TypingMind lists them too), oldest first."""
    members = Member.objects.filter(workspace=workspace)
    if email:
        members = members.filter(email__iexact=email.strip())
    if tag:
        members = members.filter(tags__contains=[tag])
    if group_id:
        members = members.filter(groups__id=group_id)
    return members.prefetch_related("groups").order_by("created_at", "id")


def member_get(*, workspace: Workspace, member_id: str) -> Member:
    """Another workspace's member is answered like a missing one."""
    member = Member.objects.filter(workspace=workspace, id=member_id).prefetch_related("groups").first()
    if member is None:
        raise MemberNotFound()
    return member


def _with_member_ids(groups: QuerySet[Group]) -> QuerySet[Group]:
    return groups.prefetch_related(
        Prefetch("members", queryset=Member.objects.only("id", "created_at").order_by("created_at", "id"))
    )


def group_list(*, workspace: Workspace) -> QuerySet[Group]:
    return _with_member_ids(Group.objects.filter(workspace=workspace)).order_by("created_at", "id")


def group_get(*, workspace: Workspace, group_id: str) -> Group:
    group = _with_member_ids(Group.objects.filter(workspace=workspace, id=group_id)).first()
    if group is None:
        raise GroupNotFound()
    return group


def role_list() -> tuple[Role, ...]:
    return ROLES


def audit_log_entries(*, principal: ApiKeyPrincipal) -> QuerySet[AuditLog]:
    """The workspace's audit log, newest first, for a key that reaches the whole workspace."""
    if principal.allowed_mind_ids:
        raise AuditLogOutOfReach()
    return AuditLog.objects.filter(workspace=principal.workspace).order_by("-id")


def audit_log_page(
    *,
    principal: ApiKeyPrincipal,
    entity: str | None = None,
    action: str | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    start_after: int | None = None,
    limit: int,
) -> tuple[list[AuditLog], bool]:
    """A page of entries and whether more follow; `start_after` is the id of the last entry of the previous page
    (ids only grow, so the cursor needs no lookup and names nothing of another workspace)."""
    entries = audit_log_entries(principal=principal)
    if entity:
        entries = entries.filter(entity=entity)
    if action:
        entries = entries.filter(action=action)
    if actor_id:
        entries = entries.filter(Q(actor_key_id=actor_id) | Q(actor_member_id=actor_id))
    if since is not None:
        entries = entries.filter(recorded_at__gte=since)
    if until is not None:
        entries = entries.filter(recorded_at__lte=until)
    if start_after is not None:
        entries = entries.filter(id__lt=start_after)
    rows = list(entries[: limit + 1])
    return rows[:limit], len(rows) > limit


def audit_log_numbered_page(*, principal: ApiKeyPrincipal, page: int, limit: int) -> Page:
    """Page-numbered, as TypingMind's audit-log API pages it."""
    return paginate(audit_log_entries(principal=principal), page=page, limit=limit)
