"""The OpenIndex surface's base view: the same authentication (`Authorization: Bearer <key>`, where OpenIndex
sends its JWT), scopes, rate limits and workspace scoping as every API view, with OpenIndex's `{ok: …}` envelope.

Errors are `{"ok": false, "error": <message>}` with the statuses OpenIndex documents: 400 for invalid input,
403 for an exhausted allowance (a plan limit, or the rate limit: OpenIndex has no 429), 500 otherwise; 401 and
404 keep their meaning. Timestamps on this surface are integers, milliseconds since the epoch.
"""

from datetime import datetime

from rest_framework.response import Response

from config.api.exception_handler import api_exception_handler
from config.api.views import WorkspaceApiView


def epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def ok(**payload) -> Response:
    return Response({"ok": True, **payload})


def openindex_error(status: int, message: str, headers=None) -> Response:
    return Response({"ok": False, "error": message}, status=status, headers=headers)


# No class docstring: drf-spectacular would print it as every operation's description.
class OpenIndexApiView(WorkspaceApiView):
    def handle_exception(self, exc):
        response = api_exception_handler(exc, self.get_exception_handler_context())
        if response is None:
            raise exc
        data = response.data or {}
        headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate")}
        status = response.status_code
        code = data.get("code")
        if status == 429 or code == "limit_exceeded":
            status = 403
        elif status >= 500 and status != 502:
            status = 500
        return openindex_error(status, data.get("message", "Error"), headers)
