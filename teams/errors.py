"""Errors of members, groups and the audit log."""

from apikeys.errors import InsufficientScope
from config.api.errors import NotFound


class MemberNotFound(NotFound):
    default_message = "Member not found."


class GroupNotFound(NotFound):
    default_message = "Group not found."


class AuditLogOutOfReach(InsufficientScope):
    """The audit log names every mind of the workspace and what changed in it; a key restricted to some minds
    must not learn of the others (docs/security.md: outside its restriction a mind does not exist)."""

    def __init__(self):
        super().__init__(
            "users:manage",
            "The audit log covers the whole workspace; a key restricted to some minds cannot read it.",
        )
