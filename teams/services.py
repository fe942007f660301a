"""Writes of members and groups, each recorded in the audit log in the same transaction.

Every surface (the native API, TypingMind's users and groups, the admin's actions) goes through these functions,
so the rules hold everywhere: one email per workspace, bounded tags, roles from the fixed set, groups and members
of the caller's own workspace, and api-users (the members API keys act as) retired only by revoking their key.
"""

from dataclasses import dataclass, fields
from typing import Any

from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.audit import audit_record, changes_between, values_shown
from accounts.models import Group, Member, Workspace
from accounts.roles import ROLES, ROLES_BY_ID
from apikeys.authentication import ApiKeyPrincipal
from apikeys.models import ApiKey
from apikeys.selectors import keys_within_reach
from apikeys.services import api_key_revoke
from config.api.errors import NotFound, ValidationFailed
from minds.models import Mind
from teams.errors import MemberNotFound

MAX_TAGS = 50
MAX_TAG_CHARS = 50
MAX_TITLE_CHARS = 100

# Member model field -> the name the API (and so the audit log) gives it.
MEMBER_WIRE_NAMES = {
    "email": "email",
    "name": "name",
    "tags": "tags",
    "first_name": "firstName",
    "last_name": "lastName",
    "profile_pic_url": "profilePicURL",
    "about_me": "aboutMe",
}
# An api-user is named for its key (`api-user-<key id>`) and has no email or profile: letting a caller give it a
# person's email or name would let that key pass for the person in member lists, chat logs and the audit log.
API_USER_FIXED_FIELDS = ("email", "name", "first_name", "last_name", "profile_pic_url", "about_me")


def _fail(field: str, message: str, *, reason: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, details={"fields": {field: [reason or message]}})


@dataclass(frozen=True, kw_only=True)
class MemberChanges:
    """What a caller gives a member, as model fields; `None` means "not given" (kept on update)."""

    email: str | None = None
    name: str | None = None
    tags: list[str] | None = None
    group_ids: list[str] | None = None
    first_name: str | None = None
    last_name: str | None = None
    profile_pic_url: str | None = None
    about_me: str | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def _email_clean(*, workspace: Workspace, email: str | None, exclude_member_id: str | None = None) -> str:
    email = BaseUserManager.normalize_email((email or "").strip())
    if not email:
        raise _fail("email", "A member needs an email.", reason="Required.")
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise _fail(
            "email", f"{email!r} is not a valid email address.", reason="Enter a valid email."
        ) from exc
    # Case-insensitive: Ann@Example.com and ann@example.com are one person.
    taken = Member.objects.filter(workspace=workspace, email__iexact=email)
    if exclude_member_id:
        taken = taken.exclude(pk=exclude_member_id)
    if taken.exists():
        raise _fail(
            "email", "A member with this email already exists in this workspace.", reason="Already taken."
        )
    return email


def _tags_clean(tags: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags))
    if any(not tag or len(tag) > MAX_TAG_CHARS for tag in cleaned):
        raise _fail("tags", f"Each tag must be 1–{MAX_TAG_CHARS} characters.")
    if len(cleaned) > MAX_TAGS:
        raise _fail("tags", f"A member has at most {MAX_TAGS} tags.")
    return cleaned


def _groups_of(*, workspace: Workspace, group_ids: list[str], field: str = "groupIds") -> list[Group]:
    wanted = list(dict.fromkeys(group_ids))
    groups = {group.id: group for group in Group.objects.filter(workspace=workspace, id__in=wanted)}
    missing = [group_id for group_id in wanted if group_id not in groups]
    if missing:
        raise ValidationFailed(
            "Some groups do not exist in this workspace.",
            details={"fields": {field: [f"Unknown group: {group_id}" for group_id in missing]}},
        )
    return [groups[group_id] for group_id in wanted]


def _members_of(*, workspace: Workspace, member_ids: list[str]) -> list[Member]:
    wanted = list(dict.fromkeys(member_ids))
    members = {member.id: member for member in Member.objects.filter(workspace=workspace, id__in=wanted)}
    missing = [member_id for member_id in wanted if member_id not in members]
    if missing:
        raise ValidationFailed(
            "Some members do not exist in this workspace.",
            details={"fields": {"memberIds": [f"Unknown member: {member_id}" for member_id in missing]}},
        )
    return [members[member_id] for member_id in wanted]


def _member_state(member: Member) -> dict[str, Any]:
    state = {wire: getattr(member, field) for field, wire in MEMBER_WIRE_NAMES.items()}
    state["groupIds"] = sorted(member.groups.values_list("id", flat=True))
    return state


def _member_audit(member: Member, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=member.workspace_id,
        entity="member",
        entity_id=member.id,
        entity_name=str(member),
        action=action,
        changes=changes,
    )


@transaction.atomic
def member_create(*, workspace: Workspace, changes: MemberChanges) -> Member:
    """A person of the workspace (api-users are made with their keys, never here)."""
    member = Member(
        workspace=workspace,
        email=_email_clean(workspace=workspace, email=changes.email),
        name=(changes.name or "").strip(),
        tags=_tags_clean(changes.tags or []),
        first_name=changes.first_name or "",
        last_name=changes.last_name or "",
        profile_pic_url=changes.profile_pic_url or "",
        about_me=changes.about_me or "",
    )
    groups = _groups_of(workspace=workspace, group_ids=changes.group_ids or [])
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:  # a concurrent request took the email between the check and the insert
        raise _fail(
            "email", "A member with this email already exists in this workspace.", reason="Already taken."
        ) from exc
    member.groups.set(groups)
    _member_audit(member, "create", values_shown(_member_state(member)))
    return member


@transaction.atomic
def member_update(*, member: Member, changes: MemberChanges) -> Member:
    # The row lock orders concurrent updates of one member, so neither diff in the audit log is lost.
    member = Member.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=member.pk)
    values = changes.given()
    if member.is_api_user:
        fixed = [field for field in API_USER_FIXED_FIELDS if field in values]
        if fixed:
            raise ValidationFailed(
                "An api-user's email, name and profile cannot be changed: it is named for its API key.",
                details={
                    "fields": {
                        ("profile" if field not in ("email", "name") else field): ["Fixed for api-users."]
                        for field in fixed
                    }
                },
            )
    group_ids = values.pop("group_ids", None)
    if "email" in values:
        values["email"] = _email_clean(
            workspace=member.workspace, email=values["email"], exclude_member_id=member.pk
        )
    if "name" in values:
        values["name"] = values["name"].strip()
    if "tags" in values:
        values["tags"] = _tags_clean(values["tags"])
    groups = _groups_of(workspace=member.workspace, group_ids=group_ids) if group_ids is not None else None
    before = _member_state(member)
    for field, value in values.items():
        setattr(member, field, value)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:
        raise _fail(
            "email", "A member with this email already exists in this workspace.", reason="Already taken."
        ) from exc
    if groups is not None:
        member.groups.set(groups)
    diff = changes_between(before, _member_state(member))
    if diff:
        _member_audit(member, "update", diff)
    return member


@transaction.atomic
def member_delete(*, member: Member, actor: ApiKeyPrincipal | None = None) -> str:
    """Removes the member. An api-user is its key's identity, so removing it retires the key: allowed only when
    the key lies within the actor's reach (apikeys.selectors.keys_within_reach), otherwise the member is answered
    as missing, as the key itself would be. Its conversations stay, without their member."""
    member = Member.objects.select_for_update().filter(pk=member.pk).first()
    if member is None:
        raise MemberNotFound()
    member_id = member.id
    api_key = ApiKey.objects.filter(member=member).first() if member.is_api_user else None
    if api_key is not None:
        if (
            actor is not None
            and not ApiKey.objects.filter(pk=api_key.pk).filter(keys_within_reach(actor)).exists()
        ):
            raise MemberNotFound()
        if api_key.revoked_at is None:
            try:
                api_key_revoke(workspace=member.workspace, key_id=api_key.id, actor=actor)
            except NotFound as exc:  # revoked or taken out of reach by a concurrent request
                raise MemberNotFound() from exc
    _member_audit(member, "delete", values_shown({**_member_state(member), "isApiUser": member.is_api_user}))
    # The key row goes with its member (OneToOne cascade); its revocation is in the audit log above.
    member.delete()
    return member_id


# Groups -----------------------------------------------------------------------------------------------------------


def _title_clean(*, workspace: Workspace, title: str | None, exclude_group_id: str | None = None) -> str:
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE_CHARS:
        raise _fail("title", f"A group title must be 1–{MAX_TITLE_CHARS} characters.")
    taken = Group.objects.filter(workspace=workspace, name__iexact=title)
    if exclude_group_id:
        taken = taken.exclude(pk=exclude_group_id)
    if taken.exists():
        raise _fail(
            "title", "A group with this title already exists in this workspace.", reason="Already taken."
        )
    return title


def roles_clean(roles: list[str]) -> list[str]:
    """Role ids of the fixed set (accounts/roles.py), in its order; anything else is refused."""
    unknown = [role for role in dict.fromkeys(roles) if role not in ROLES_BY_ID]
    if unknown:
        raise ValidationFailed(
            f"Unknown roles: {', '.join(unknown)}. Roles: {', '.join(ROLES_BY_ID)}.",
            details={"fields": {"roles": [f"Unknown role: {role}" for role in unknown]}},
        )
    return [role.id for role in ROLES if role.id in set(roles)]


def _group_state(group: Group) -> dict[str, Any]:
    return {
        "title": group.name,
        "roles": list(group.roles),
        "memberIds": sorted(group.members.values_list("id", flat=True)),
    }


def _group_audit(group: Group, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=group.workspace_id,
        entity="group",
        entity_id=group.id,
        entity_name=group.name,
        action=action,
        changes=changes,
    )


def _title_taken() -> ValidationFailed:
    return _fail(
        "title", "A group with this title already exists in this workspace.", reason="Already taken."
    )


@transaction.atomic
def group_create(
    *, workspace: Workspace, title: str, roles: list[str] | None = None, member_ids: list[str] | None = None
) -> Group:
    group = Group(
        workspace=workspace,
        name=_title_clean(workspace=workspace, title=title),
        roles=roles_clean(roles or []),
    )
    members = _members_of(workspace=workspace, member_ids=member_ids or [])
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:  # a concurrent request took the title
        raise _title_taken() from exc
    group.members.set(members)
    _group_audit(group, "create", values_shown(_group_state(group)))
    return group


@transaction.atomic
def group_update(
    *,
    group: Group,
    title: str | None = None,
    roles: list[str] | None = None,
    member_ids: list[str] | None = None,
) -> Group:
    """`None` keeps a value. Changing roles or members changes what the members' API keys may do at their next
    request (roles narrow a key's scopes; groups open group-only minds)."""
    group = Group.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=group.pk)
    before = _group_state(group)
    if title is not None:
        group.name = _title_clean(workspace=group.workspace, title=title, exclude_group_id=group.pk)
    if roles is not None:
        group.roles = roles_clean(roles)
    members = (
        _members_of(workspace=group.workspace, member_ids=member_ids) if member_ids is not None else None
    )
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:
        raise _title_taken() from exc
    if members is not None:
        group.members.set(members)
    diff = changes_between(before, _group_state(group))
    if diff:
        _group_audit(group, "update", diff)
    return group


@transaction.atomic
def group_delete(*, group: Group) -> str:
    """Deletes the group and takes it out of every mind's allowedGroupIds. A group-only mind left with no group
    stays group-only, open to no key: it never falls back to the whole workspace."""
    group = Group.objects.select_for_update().filter(pk=group.pk).first()
    if group is None:
        raise NotFound("Group not found.")
    minds = Mind.objects.select_for_update().filter(
        workspace_id=group.workspace_id, allowed_group_ids__contains=[group.id]
    )
    for mind in minds.order_by("id"):
        before = list(mind.allowed_group_ids)
        mind.allowed_group_ids = [group_id for group_id in before if group_id != group.id]
        mind.save(update_fields=["allowed_group_ids", "updated_at"])
        # Named as mind_update names it, so a mind's history reads the same whoever changed it.
        audit_record(
            workspace=mind.workspace_id,
            entity="mind",
            entity_id=mind.id,
            entity_name=mind.name,
            action="update",
            changes=changes_between(
                {"allowed_group_ids": before}, {"allowed_group_ids": mind.allowed_group_ids}
            ),
        )
    group_id = group.id
    _group_audit(group, "delete", values_shown(_group_state(group)))
    group.delete()
    return group_id
