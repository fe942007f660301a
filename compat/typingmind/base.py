"""The TypingMind surface's base view: the same authentication, scopes, rate limits and workspace scoping as every
API view (`X-API-KEY` is how TypingMind clients send the key), with TypingMind's error style.

TypingMind documents its errors by status and message ("Unauthorized (API Key is missing or invalid)", "User Not
Found", "Agent not found", "Invalid request") and one body, for an agent a member may not use:
`{"userMessage": "You do not have access to this agent. Please contact your admin for more information."}`.
Every error here has that shape, `{"userMessage": <message>}`, plus `details` for invalid input.
"""

from rest_framework.response import Response

from config.api.exception_handler import api_exception_handler
from config.api.views import WorkspaceApiView

AGENT_ACCESS_DENIED = "You do not have access to this agent. Please contact your admin for more information."
UNAUTHORIZED = "Unauthorized (API Key is missing or invalid)"
INTERNAL = "Internal Server Error"


def typingmind_error(status: int, message: str, details: dict | None = None, headers=None) -> Response:
    body: dict = {"userMessage": message}
    if details:
        body["details"] = details
    return Response(body, status=status, headers=headers)


# No class docstring: drf-spectacular would print it as every operation's description.
class TypingMindApiView(WorkspaceApiView):
    # What a 404 from this view says ("User Not Found" for users and groups, as TypingMind answers).
    not_found_message = "Not Found"

    def handle_exception(self, exc):
        response = api_exception_handler(exc, self.get_exception_handler_context())
        if response is None:
            raise exc
        data = response.data or {}
        code = data.get("code")
        headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate")}
        status = response.status_code
        if status == 401:
            # TypingMind's one text for a missing or invalid key; an expired key says so, which helps more.
            message = data.get("message", UNAUTHORIZED) if code == "api_key_expired" else UNAUTHORIZED
        elif code == "mind_access_denied":
            message = AGENT_ACCESS_DENIED
        elif status == 404:
            message = data.get("message") if data.get("message") not in (None, "Not found.") else None
            message = message or self.not_found_message
        elif status >= 500:
            message = INTERNAL
        else:
            message = data.get("message", "Invalid request")
        details = (data.get("details") or {}) if status == 400 else None
        return typingmind_error(status, message, details, headers)
