"""Writes of minds."""

import re
import secrets
import string
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

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
        if not Mind.objects.filter(slug=slug).exists():
            return slug
    raise ValidationFailed("Could not generate a unique slug; pass one explicitly.")


def slug_validate(slug: str, *, exclude_mind_id: str | None = None) -> str:
    if not SLUG_RE.match(slug) or len(slug) > 120 or len(slug) < 3:
        raise ValidationFailed(
            "slug must be 3–120 lowercase letters, digits and single hyphens.",
            details={"fields": {"slug": ["Use lowercase letters, digits and hyphens (3–120 characters)."]}},
        )
    taken = Mind.objects.filter(slug=slug)
    if exclude_mind_id:
        taken = taken.exclude(id=exclude_mind_id)
    if taken.exists():
        raise ValidationFailed(
            "This slug is already taken.", details={"fields": {"slug": ["Already taken."]}}
        )
    return slug


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


@transaction.atomic
def mind_create(*, workspace: Workspace, data: dict[str, Any]) -> Mind:
    # The row lock serialises concurrent creations so the limit cannot be overshot.
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    used = Mind.objects.filter(workspace=workspace).count()
    if used >= workspace.effective_minds_limit:
        raise LimitExceeded(
            f"This workspace has reached its limit of {workspace.effective_minds_limit} minds.",
            details={"limit": workspace.effective_minds_limit, "used": used},
        )
    slug = data.pop("slug", None)
    slug = slug_validate(slug) if slug else slug_generate(data["name"])
    mind = Mind(workspace=workspace, slug=slug, **data)
    _groups_validate(workspace=workspace, visibility=mind.visibility, group_ids=mind.allowed_group_ids)
    if mind.is_published:
        mind.published_at = timezone.now()
    try:
        with transaction.atomic():
            mind.save()
    except IntegrityError as exc:  # a concurrent request took the slug between the check and the insert
        raise ValidationFailed(
            "This slug is already taken.", details={"fields": {"slug": ["Already taken."]}}
        ) from exc
    return mind


@transaction.atomic
def mind_update(*, mind: Mind, data: dict[str, Any]) -> Mind:
    if "slug" in data:
        data["slug"] = slug_validate(data["slug"], exclude_mind_id=mind.id)
    if "theme" in data:
        data["theme"] = {**(mind.theme or {}), **data["theme"]}
    if "is_published" in data and data["is_published"] and not mind.is_published:
        mind.published_at = timezone.now()
    for field, value in data.items():
        setattr(mind, field, value)
    if {"visibility", "allowed_group_ids"} & set(data):
        _groups_validate(
            workspace=mind.workspace, visibility=mind.visibility, group_ids=mind.allowed_group_ids
        )
    mind.save()
    return mind


def mind_delete(*, mind: Mind) -> str:
    """Deletes the mind with its sources, chunks, conversations (database cascades) and stored files."""
    mind_id = mind.id
    with transaction.atomic():
        # Uploads hang on the mind through knowledge's reverse relation; read here, so minds imports no knowledge.
        names = [name for name in mind.uploads.values_list("file", flat=True) if name]
        mind.delete()
        # Files go only once the rows are gone for good: a rolled-back delete must not lose them.
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return mind_id


def mind_publish(*, mind: Mind, is_published: bool) -> Mind:
    mind.is_published = is_published
    if is_published:
        mind.published_at = timezone.now()
    mind.save(update_fields=["is_published", "published_at", "updated_at"])
    return mind


def mind_public_url(mind: Mind) -> str:
    return f"{settings.PUBLIC_BASE_URL}/m/{mind.slug}"
