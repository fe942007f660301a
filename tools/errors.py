"""Errors of the tools app."""

from config.api.errors import Conflict


class ToolFailure(Exception):
    """A tool could not do what the model asked; `message` is what the model reads (no secret, no traceback) and
    `reason` a short code for the audit log (timeout, http_status, refused, invalid_arguments, …)."""

    def __init__(self, message: str, *, reason: str = "failed"):
        super().__init__(message)
        self.message = message
        self.reason = reason


class ToolNameTaken(Conflict):
    """409 `conflict`, with the field in `details`."""

    default_message = "The mind already has a tool with this name."
