"""Errors of minds."""

from config.api.errors import PermissionDenied


class MindAccessDenied(PermissionDenied):
    code = "mind_access_denied"
    default_message = (
        "You do not have access to this mind: it is open only to some groups of the workspace. "
        "Ask your workspace admin to add you to one of them."
    )
