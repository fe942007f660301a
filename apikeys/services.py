from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Member, Workspace
from apikeys.hashing import generate_plaintext_key, hash_key
from apikeys.models import ALL_SCOPES, ApiKey
from config.api.errors import LimitExceeded, NotFound, ValidationFailed


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    plaintext: str


def parse_scopes(value: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    scopes = [s for s in scopes if s]
    if scopes == ["all"]:
        return list(ALL_SCOPES)
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(
            f"Unknown scopes: {', '.join(unknown)}." if unknown else "At least one scope is required.",
            details={"fields": {"scopes": [f"Allowed: {', '.join(ALL_SCOPES)} or all."]}},
        )
    return sorted(set(scopes), key=ALL_SCOPES.index)


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    expires_in_days: int | None = None,
    allowed_mind_ids: list[str] | None = None,
) -> CreatedKey:
    # Lock the workspace row so two concurrent creations cannot both pass the limit check.
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    live = ApiKey.objects.live().filter(workspace=workspace).count()
    if live >= workspace.effective_api_keys_limit:
        raise LimitExceeded(
            f"This workspace already has {live} live API keys (limit {workspace.effective_api_keys_limit}). "
            "Revoke one first.",
            details={"limit": workspace.effective_api_keys_limit, "used": live},
        )
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if allowed_mind_ids:
        from minds.models import Mind  # keys may be created before any mind exists

        known = set(
            Mind.objects.filter(workspace=workspace, id__in=allowed_mind_ids).values_list("id", flat=True)
        )
        missing = sorted(set(allowed_mind_ids) - known)
        if missing:
            raise ValidationFailed(
                "Some minds do not exist in this workspace.", details={"fields": {"mindIds": missing}}
            )
    plaintext = generate_plaintext_key()
    api_key = ApiKey(
        workspace=workspace,
        name=name,
        key_hash=hash_key(plaintext),
        last4=plaintext[-4:],
        scopes=parse_scopes(scopes),
        allowed_mind_ids=list(allowed_mind_ids or []),
        expires_at=expires_at,
    )
    api_key.member = Member.objects.create(
        workspace=workspace, name=f"api-user-{api_key.id}", is_api_user=True
    )
    api_key.save()
    return CreatedKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, workspace: Workspace, key_id: str) -> ApiKey:
    api_key = ApiKey.objects.filter(workspace=workspace, id=key_id, revoked_at__isnull=True).first()
    if api_key is None:
        raise NotFound("API key not found.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    return api_key
