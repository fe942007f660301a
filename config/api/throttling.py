"""Per-key rate limits in fixed one-minute windows, counted in Redis so every process shares them."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from config.redis import redis_client

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    count: int
    reset_at: int  # unix seconds when the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_at - int(time.time()))


def rate_limit_hit(bucket: str, limit: int) -> RateLimitState:
    """Counts one request in `bucket` and reports what is left in the current window."""
    now = int(time.time())
    window_start = now - now % WINDOW_SECONDS
    key = f"ratelimit:{bucket}:{window_start}"
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS + 5)
    count, _ = pipe.execute()
    return RateLimitState(limit=limit, count=int(count), reset_at=window_start + WINDOW_SECONDS)


def budgets_for(view) -> list[tuple[str, int]]:
    budgets = [("api", settings.RATE_LIMIT_PER_MINUTE)]
    if "search" in getattr(view, "extra_rate_limits", ()):
        budgets.append(("search", settings.SEARCH_RATE_LIMIT_PER_MINUTE))
    return budgets


class ApiKeyRateThrottle(BaseThrottle):
    """Applies every budget of the view; the headers report the tightest one."""

    def allow_request(self, request, view) -> bool:
        states = [rate_limit_hit(f"{name}:{request.user.key_id}", limit) for name, limit in budgets_for(view)]
        exceeded = [state for state in states if state.exceeded]
        request.rate_limit = exceeded[0] if exceeded else min(states, key=lambda state: state.remaining)
        self._wait = request.rate_limit.retry_after if exceeded else None
        return not exceeded

    def wait(self):
        return self._wait


def apply_rate_limit_headers(request, response) -> None:
    state: RateLimitState | None = getattr(request, "rate_limit", None)
    if state is None:
        return
    response["X-RateLimit-Limit"] = str(state.limit)
    response["X-RateLimit-Remaining"] = str(state.remaining)
    response["X-RateLimit-Reset"] = (
        datetime.fromtimestamp(state.reset_at, tz=UTC).isoformat().replace("+00:00", "Z")
    )
    if response.status_code == 429:
        response["Retry-After"] = str(state.retry_after)
