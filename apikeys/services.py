from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, values_shown
from accounts.models import Member, Workspace
from apikeys.authentication import ApiKeyPrincipal
from apikeys.errors import InsufficientScope
from apikeys.hashing import generate_plaintext_key, hash_key
from apikeys.models import ALL_SCOPES, ApiKey
from apikeys.selectors import keys_within_reach
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
    creator: ApiKeyPrincipal | None = None,
) -> CreatedKey:
    """Creates a key. `creator` is the key asking for it (None from the admin or the command line): a key can only
    hand on what it has, so the new key's scopes, minds and lifetime must lie within the creator's."""
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
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(
            "expiresAt is in the past; a key must expire in the future.",
            details={"fields": {"expiresAt": ["Must be in the future."]}},
        )
    scopes = parse_scopes(scopes)
    if creator is not None:
        allowed_mind_ids, expires_at = _within_creator_reach(creator, scopes, allowed_mind_ids, expires_at)
    if allowed_mind_ids:
        # Through the reverse relation minds declares on the workspace: apikeys sits below minds and imports none of it.
        known = set(workspace.minds.filter(id__in=allowed_mind_ids).values_list("id", flat=True))
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
        scopes=scopes,
        allowed_mind_ids=list(allowed_mind_ids or []),
        expires_at=expires_at,
    )
    api_key.member = Member.objects.create(
        workspace=workspace, name=f"api-user-{api_key.id}", is_api_user=True
    )
    api_key.save()
    audit_record(
        workspace=workspace,
        entity="api_key",
        entity_id=api_key.id,
        entity_name=api_key.name,
        action="create",
        changes=values_shown(
            {
                "scopes": scopes,
                "mindIds": api_key.allowed_mind_ids,
                "expiresAt": expires_at,
                "last4": api_key.last4,
            }
        ),
    )
    return CreatedKey(api_key=api_key, plaintext=plaintext)


def _within_creator_reach(
    creator: ApiKeyPrincipal, scopes: list[str], mind_ids: list[str] | None, expires_at: datetime | None
) -> tuple[list[str] | None, datetime | None]:
    """The new key's mind restriction and expiry, narrowed to the creator's; refuses anything beyond them.

    Omitted restrictions are inherited (a restricted key's new key is restricted to the same minds, a key that
    expires makes keys that expire no later), so the narrowest valid key is made rather than an error.
    """
    missing = [scope for scope in scopes if scope not in creator.scopes]
    if missing:
        raise InsufficientScope(
            missing[0],
            "A key can only create keys with scopes it holds itself; this key lacks "
            + ", ".join(f"`{scope}`" for scope in missing)
            + ".",
        )
    if creator.allowed_mind_ids:
        if not mind_ids:
            mind_ids = sorted(creator.allowed_mind_ids)
        elif not set(mind_ids) <= creator.allowed_mind_ids:
            raise InsufficientScope(
                "keys:manage",
                "This key is restricted to some minds; the keys it creates can only be restricted to those.",
            )
    if creator.expires_at is not None:
        if expires_at is None:
            expires_at = creator.expires_at
        elif expires_at > creator.expires_at:
            raise InsufficientScope("keys:manage", "A key cannot create a key that expires after it does.")
    return mind_ids, expires_at


@transaction.atomic
def api_key_revoke(*, workspace: Workspace, key_id: str, actor: ApiKeyPrincipal | None = None) -> ApiKey:
    """Revokes a key; through the API only a key within the actor's reach (others are answered as missing)."""
    keys = ApiKey.objects.filter(workspace=workspace, id=key_id, revoked_at__isnull=True)
    if actor is not None:
        keys = keys.filter(keys_within_reach(actor))
    api_key = keys.first()
    if api_key is None:
        raise NotFound("API key not found.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        workspace=workspace, entity="api_key", entity_id=api_key.id, entity_name=api_key.name, action="revoke"
    )
    return api_key
