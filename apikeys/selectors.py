from django.db.models import QuerySet

from accounts.models import Workspace
from apikeys.models import ApiKey


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    """Live keys of the workspace (revoked ones are kept for audit but not listed)."""
    return ApiKey.objects.filter(workspace=workspace, revoked_at__isnull=True).order_by("-created_at")
