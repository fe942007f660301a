from accounts.models import Workspace
from config.api.errors import ValidationFailed


def workspace_create(*, name: str) -> Workspace:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("A workspace name must be 1–100 characters.")
    if Workspace.objects.filter(name=name).exists():
        raise ValidationFailed(f"A workspace named {name!r} already exists.")
    return Workspace.objects.create(name=name)
