from django.db.models import Q, QuerySet

from accounts.models import Workspace
from apikeys.authentication import ApiKeyPrincipal
from apikeys.models import ApiKey


def keys_within_reach(principal: ApiKeyPrincipal) -> Q:
    """Keys that hold no scope the principal lacks and reach no mind it cannot reach: the keys it may see and
    revoke. An unrestricted principal reaches every mind; a restricted one only keys restricted within its minds."""
    reach = Q(scopes__contained_by=sorted(principal.scopes))
    if principal.allowed_mind_ids:
        reach &= ~Q(allowed_mind_ids=[]) & Q(
            allowed_mind_ids__contained_by=sorted(principal.allowed_mind_ids)
        )
    return reach


def api_key_list(*, workspace: Workspace, principal: ApiKeyPrincipal | None = None) -> QuerySet[ApiKey]:
    """Live keys of the workspace (revoked ones are kept for audit but not listed), within the caller's reach."""
    keys = ApiKey.objects.filter(workspace=workspace, revoked_at__isnull=True)
    if principal is not None:
        keys = keys.filter(keys_within_reach(principal))
    return keys.order_by("-created_at")
