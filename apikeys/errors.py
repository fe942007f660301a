"""Errors of keys and scopes."""

from config.api.errors import PermissionDenied


class InsufficientScope(PermissionDenied):
    code = "insufficient_scope"

    def __init__(self, scope: str, message: str | None = None):
        super().__init__(
            message or f"This API key lacks the `{scope}` scope.", details={"requiredScope": scope}
        )
