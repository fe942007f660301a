"""Writes of workspaces: creation and the webhook signing secret."""

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Workspace, webhook_secret
from config.api.errors import ValidationFailed


def workspace_create(*, name: str) -> Workspace:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("A workspace name must be 1–100 characters.")
    if Workspace.objects.filter(name=name).exists():
        raise ValidationFailed(f"A workspace named {name!r} already exists.")
    return Workspace.objects.create(name=name)


@transaction.atomic
def workspace_webhook_secret_rotate(*, workspace: Workspace) -> str:
    """A new `whsec_` secret for the workspace's webhooks; every delivery attempt from now on (retries of earlier
    events included) is signed with it, so receivers must switch to it. The audit entry records the rotation,
    never a secret."""
    secret = webhook_secret()
    workspace.webhook_secret = secret
    workspace.save(update_fields=["webhook_secret", "updated_at"])
    audit_record(
        workspace=workspace,
        entity="workspace",
        entity_id=workspace.id,
        entity_name=workspace.name,
        action="rotate_webhook_secret",
    )
    return secret
