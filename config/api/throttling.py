"""Per-key rate limits in fixed one-minute windows (config.ratelimit), with the `X-RateLimit-*` headers."""

from datetime import UTC, datetime

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from config.ratelimit import WindowCount, window_hit

MINUTE = 60


def budgets_for(view) -> list[tuple[str, int]]:
    budgets = [("api", settings.RATE_LIMIT_PER_MINUTE)]
    if "search" in getattr(view, "extra_rate_limits", ()):
        budgets.append(("search", settings.SEARCH_RATE_LIMIT_PER_MINUTE))
    return budgets


class ApiKeyRateThrottle(BaseThrottle):
    """Applies every budget of the view; the headers report the tightest one."""

    def allow_request(self, request, view) -> bool:
        states = [
            window_hit(f"{name}:{request.user.key_id}", limit=limit, window_seconds=MINUTE)
            for name, limit in budgets_for(view)
        ]
        exceeded = [state for state in states if state.exceeded]
        request.rate_limit = exceeded[0] if exceeded else min(states, key=lambda state: state.remaining)
        self._wait = request.rate_limit.retry_after if exceeded else None
        return not exceeded

    def wait(self):
        return self._wait


def apply_rate_limit_headers(request, response) -> None:
    state: WindowCount | None = getattr(request, "rate_limit", None)
    if state is None:
        return
    response["X-RateLimit-Limit"] = str(state.limit)
    response["X-RateLimit-Remaining"] = str(state.remaining)
    response["X-RateLimit-Reset"] = (
        datetime.fromtimestamp(state.reset_at, tz=UTC).isoformat().replace("+00:00", "Z")
    )
    if response.status_code == 429:
        response["Retry-After"] = str(state.retry_after)
