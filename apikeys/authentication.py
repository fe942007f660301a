"""`Authorization: Bearer tr_live_…` or `X-API-KEY: tr_live_…`."""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.audit import Actor
from accounts.models import Member, Workspace
from accounts.roles import scopes_of_roles
from apikeys.hashing import hash_key, looks_like_key
from apikeys.models import ApiKey

LAST_USED_RESOLUTION_SECONDS = 60


class ApiKeyError(exceptions.AuthenticationFailed):
    """A key that is not valid, revoked or expired; the code (invalid_api_key, api_key_expired) is DRF's detail code."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class MissingApiKey(exceptions.NotAuthenticated):
    default_code = "missing_api_key"
    default_detail = "An API key is required: send `Authorization: Bearer tr_live_…` or `X-API-KEY`."


@dataclass
class ApiKeyPrincipal:
    """What `request.user` is on API views: the key, its workspace, member and scopes."""

    key_id: str
    workspace: Workspace
    member: Member
    scopes: frozenset[str]
    allowed_mind_ids: frozenset[str] = field(default_factory=frozenset)
    expires_at: datetime | None = None
    # The groups of the key's member (its api-user), read with the roles that bound `scopes`.
    group_ids: frozenset[str] = field(default_factory=frozenset)
    is_authenticated: bool = True

    def has_scope(self, scope: str) -> bool:
        return scope == "any" or scope in self.scopes

    def can_access_mind(self, mind_id: str) -> bool:
        return not self.allowed_mind_ids or mind_id in self.allowed_mind_ids

    @property
    def actor(self) -> Actor:
        """Who the audit log names for this key's changes: the key and its api-user."""
        return Actor(key_id=self.key_id, member_id=self.member.id, label=self.member.name or self.key_id)


def key_from_headers(meta: dict) -> str | None:
    authorization = meta.get("HTTP_AUTHORIZATION", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return authorization  # malformed: reported as an invalid key, not a missing one
    return meta.get("HTTP_X_API_KEY", "").strip() or None


def principal_for_key(plaintext: str) -> ApiKeyPrincipal:
    if not looks_like_key(plaintext):
        raise ApiKeyError("invalid_api_key", "The API key is not valid.")
    # The lookup by the SHA-256 of the key is the check: a row comes back only when the hashes are equal, so
    # comparing them again (in constant time or not) would prove nothing. What the lookup's timing could reveal is
    # at most a prefix of a hash, which does not help anyone find a key with 190 bits of randomness.
    api_key = (
        ApiKey.objects.select_related("workspace", "member").filter(key_hash=hash_key(plaintext)).first()
    )
    if api_key is None or api_key.revoked_at is not None:
        raise ApiKeyError("invalid_api_key", "The API key is not valid or has been revoked.")
    if api_key.is_expired:
        raise ApiKeyError("api_key_expired", "The API key has expired. Create a new one.")
    _touch_last_used(api_key)
    # One query for both what the groups open (group-only minds) and what their roles allow.
    groups = list(api_key.member.groups.values_list("id", "roles"))
    return ApiKeyPrincipal(
        key_id=api_key.id,
        workspace=api_key.workspace,
        member=api_key.member,
        scopes=_effective_scopes(api_key, [roles or [] for _, roles in groups]),
        allowed_mind_ids=frozenset(api_key.allowed_mind_ids or []),
        expires_at=api_key.expires_at,
        group_ids=frozenset(group_id for group_id, _ in groups),
    )


def _effective_scopes(api_key: ApiKey, group_roles: list[list[str]]) -> frozenset[str]:
    """The key's scopes, bounded by the roles of its api-user's groups when any of them carries roles
    (accounts/roles.py: roles only narrow)."""
    scopes = frozenset(api_key.scopes)
    role_ids = [role for roles in group_roles for role in roles]
    if not role_ids:
        return scopes
    return scopes & scopes_of_roles(role_ids)


def _touch_last_used(api_key: ApiKey) -> None:
    # Writes at most once a minute per key: the Redis `add` succeeds only for the first request in that minute.
    if cache.add(f"apikey-used:{api_key.id}", 1, LAST_USED_RESOLUTION_SECONDS):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        plaintext = key_from_headers(request.META)
        if plaintext is None:
            raise MissingApiKey()
        principal = principal_for_key(plaintext)
        return principal, principal.key_id

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
