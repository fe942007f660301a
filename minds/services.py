"""Writes of minds."""

import re
import secrets
import string
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.audit import audit_record, changes_between, values_shown
from accounts.models import Group, Workspace
from config.api.errors import LimitExceeded, ValidationFailed
from minds.models import Mind

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def _slug_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))


def slug_generate(name: str) -> str:
    base = slugify(name)[:100].strip("-") or "mind"
    for _ in range(10):
        slug = f"{base}-{_slug_suffix()}"
        # Checked across every workspace: a generated slug is then also free to publish.
        if not Mind.objects.filter(slug=slug).exists():
            return slug
    raise ValidationFailed("Could not generate a unique slug; pass one explicitly.")


SLUG_TAKEN = "This workspace already has a mind with this slug."
PUBLIC_URL_TAKEN = (
    "Another published mind already uses this public address (/m/{slug}). Choose another slug to publish."
)


def slug_validate(slug: str, *, workspace: Workspace, exclude_mind_id: str | None = None) -> str:
    """A well-formed slug not used by another mind of the same workspace.

    Slugs are unique per workspace, so the answer says nothing about other workspaces' unpublished minds; the
    public address /m/<slug> is checked only on publishing (published_slug_check), against published minds.
    """
    if not SLUG_RE.match(slug) or len(slug) > 120 or len(slug) < 3:
        raise ValidationFailed(
            "slug must be 3–120 lowercase letters, digits and single hyphens.",
            details={"fields": {"slug": ["Use lowercase letters, digits and hyphens (3–120 characters)."]}},
        )
    taken = Mind.objects.filter(workspace=workspace, slug=slug)
    if exclude_mind_id:
        taken = taken.exclude(id=exclude_mind_id)
    if taken.exists():
        raise ValidationFailed(SLUG_TAKEN, details={"fields": {"slug": ["Already used in this workspace."]}})
    return slug


def _public_url_taken(slug: str) -> ValidationFailed:
    # Names only what anyone can see: that /m/<slug> is already a published page.
    return ValidationFailed(
        PUBLIC_URL_TAKEN.format(slug=slug), details={"fields": {"slug": ["Already a published page."]}}
    )


def published_slug_check(mind: Mind) -> None:
    """A mind about to be published must not take the public address of another published mind."""
    if not mind.is_published:
        return
    if Mind.objects.filter(slug=mind.slug, is_published=True).exclude(id=mind.id).exists():
        raise _public_url_taken(mind.slug)


def _save_checked(mind: Mind, **save_kwargs: Any) -> None:
    """Saves, turning a lost race on either slug constraint into the same 400 the checks give."""
    try:
        with transaction.atomic():
            mind.save(**save_kwargs)
    except IntegrityError as exc:
        constraint = str(exc)
        if "mind_published_slug_unique" in constraint:
            raise _public_url_taken(mind.slug) from exc
        if "mind_slug_unique_per_workspace" in constraint:
            raise ValidationFailed(
                SLUG_TAKEN, details={"fields": {"slug": ["Already used in this workspace."]}}
            ) from exc
        raise


def _groups_validate(*, workspace: Workspace, visibility: str, group_ids: list[str]) -> None:
    """A group-only mind names at least one group, and only groups of its own workspace."""
    unknown = sorted(
        set(group_ids)
        - set(Group.objects.filter(workspace=workspace, id__in=group_ids).values_list("id", flat=True))
    )
    if unknown:
        raise ValidationFailed(
            "allowedGroupIds names groups that do not exist in this workspace.",
            details={"fields": {"allowedGroupIds": [f"Unknown group: {group_id}" for group_id in unknown]}},
        )
    if visibility == Mind.Visibility.GROUPS and not group_ids:
        raise ValidationFailed(
            "A mind visible to groups needs at least one group in allowedGroupIds.",
            details={"fields": {"allowedGroupIds": ["Name at least one group."]}},
        )


@dataclass(frozen=True, kw_only=True)
class MindChanges:
    """The settings a caller gives a mind, as model fields. `None` means "not given": a mind being created takes
    the model's default and a mind being updated keeps its value. A field named in `cleared` goes back to the
    model's default instead (a client's `null`: the default theme, `{}` links, an empty text, no sampling override).
    """

    name: str | None = None
    slug: str | None = None
    headline: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    system_prompt: str | None = None
    welcome_message: str | None = None
    suggested_questions: list[str] | None = None
    expertise_areas: list[str] | None = None
    is_published: bool | None = None
    show_sources: bool | None = None
    collect_email_before_chat: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    model: str | None = None
    language: str | None = None
    theme: dict[str, str] | None = None
    social_links: dict[str, str] | None = None
    voice_enabled: bool | None = None
    voice_id: str | None = None
    voice_speed: float | None = None
    visibility: str | None = None
    allowed_group_ids: list[str] | None = None
    allowed_origins: list[str] | None = None
    public_messages_per_minute: int | None = None
    public_messages_per_day: int | None = None
    agent_tools: list[dict] | None = None
    is_autonomous: bool | None = None
    cleared: frozenset[str] = frozenset()

    def given(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "cleared" and getattr(self, f.name) is not None
        }

    def with_defaults_for_cleared(self) -> dict[str, Any]:
        """The given values plus, for each cleared field, the model's default."""
        values = self.given()
        for name in sorted(self.cleared):
            values[name] = Mind._meta.get_field(name).get_default()
        return values


@transaction.atomic
def mind_create(*, workspace: Workspace, changes: MindChanges) -> Mind:
    if not changes.name:
        raise ValidationFailed("A mind needs a name.", details={"fields": {"name": ["Required."]}})
    # The row lock serialises concurrent creations so the limit cannot be overshot.
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    used = Mind.objects.filter(workspace=workspace, is_default_agent=False).count()
    if used >= workspace.effective_minds_limit:
        raise LimitExceeded(
            f"This workspace has reached its limit of {workspace.effective_minds_limit} minds.",
            details={"limit": workspace.effective_minds_limit, "used": used},
        )
    values = changes.given()
    slug = values.pop("slug", None)
    slug = slug_validate(slug, workspace=workspace) if slug else slug_generate(changes.name)
    mind = Mind(workspace=workspace, slug=slug, **values)
    _groups_validate(workspace=workspace, visibility=mind.visibility, group_ids=mind.allowed_group_ids)
    if mind.is_published:
        mind.published_at = timezone.now()
    published_slug_check(mind)
    _save_checked(mind)  # a concurrent request may take the slug between the check and the insert
    _audit(mind, "create", values_shown({"slug": mind.slug, **values}))
    return mind


def _audit(mind: Mind, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=mind.workspace_id,
        entity="mind",
        entity_id=mind.id,
        entity_name=mind.name,
        action=action,
        changes=changes,
    )


@transaction.atomic
def mind_update(*, mind: Mind, changes: MindChanges) -> Mind:
    values = changes.with_defaults_for_cleared()
    if changes.slug is not None:
        values["slug"] = slug_validate(changes.slug, workspace=mind.workspace, exclude_mind_id=mind.id)
    if changes.theme is not None and "theme" not in changes.cleared:
        # A theme update names only the keys it changes.
        values["theme"] = {**(mind.theme or {}), **changes.theme}
    if changes.is_published and not mind.is_published:
        mind.published_at = timezone.now()
    before = {field: getattr(mind, field) for field in values}
    for field, value in values.items():
        setattr(mind, field, value)
    if changes.visibility is not None or changes.allowed_group_ids is not None:
        _groups_validate(
            workspace=mind.workspace, visibility=mind.visibility, group_ids=mind.allowed_group_ids
        )
    published_slug_check(mind)
    _save_checked(mind)
    diff = changes_between(before, values)
    if diff:
        _audit(mind, "update", diff)
    if "is_published" in diff:
        _audit(mind, "publish" if mind.is_published else "unpublish")
    return mind


def mind_delete(*, mind: Mind) -> str:
    """Deletes the mind with its sources, chunks, conversations (database cascades) and stored files."""
    mind_id = mind.id
    with transaction.atomic():
        # Uploads hang on the mind through knowledge's reverse relation; read here, so minds imports no knowledge.
        names = [name for name in mind.uploads.values_list("file", flat=True) if name]
        _audit(mind, "delete")
        mind.delete()
        # Files go only once the rows are gone for good: a rolled-back delete must not lose them.
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return mind_id


@transaction.atomic
def mind_publish(*, mind: Mind, is_published: bool) -> Mind:
    # Locked and re-read so concurrent toggles serialize: only an effective change is written and audited, and
    # published_at marks the last time the mind went public (as mind_update does), not the last no-op call.
    locked = Mind.objects.select_for_update().get(id=mind.id)
    mind.is_published, mind.published_at = locked.is_published, locked.published_at
    if mind.is_published == is_published:
        return mind
    mind.is_published = is_published
    if is_published:
        mind.published_at = timezone.now()
    published_slug_check(mind)
    _save_checked(mind, update_fields=["is_published", "published_at", "updated_at"])
    _audit(mind, "publish" if is_published else "unpublish")
    return mind


def mind_public_url(mind: Mind) -> str:
    return f"{settings.PUBLIC_BASE_URL}/m/{mind.slug}"


DEFAULT_AGENT_NAME = "Jack Of All Trades"


def mind_default_agent(*, workspace: Workspace) -> Mind:
    """The workspace's general agent, made on first use: it answers OpenIndex chats that name no agent (and chats
    with a collection). Made by the system, so it is not counted against the minds limit."""
    mind = Mind.objects.filter(workspace=workspace, is_default_agent=True).first()
    if mind is not None:
        return mind
    try:
        with transaction.atomic():
            mind = Mind.objects.create(
                workspace=workspace,
                name=DEFAULT_AGENT_NAME,
                slug=slug_generate(DEFAULT_AGENT_NAME),
                headline="A general assistant",
                system_prompt="You are a helpful, accurate and concise general assistant.",
                is_default_agent=True,
            )
            _audit(mind, "create", values_shown({"name": mind.name, "isDefaultAgent": True}))
    except IntegrityError:  # a concurrent first use made it
        mind = Mind.objects.get(workspace=workspace, is_default_agent=True)
    return mind
