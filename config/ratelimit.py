"""One fixed-window request counter in Redis, shared by every process: the API's per-key limits (a minute), its
failed authentications per client address (a minute) and the public chat's per-visitor and per-IP limits (a minute
and a day) all count through `window_hit`; `client_address` says which address a request counts against."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from config.redis import redis_client


def client_address(request) -> str:
    """The client's address: the socket's, or behind a trusted proxy (USE_X_FORWARDED_FOR) the one it reports.

    The last X-Forwarded-For entry is the one the proxy itself appended; earlier entries come from the client and
    could be anything, so a client cannot pick a fresh address to get a fresh budget.
    """
    if settings.USE_X_FORWARDED_FOR:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR") or "unknown"


@dataclass(frozen=True)
class WindowCount:
    """A bucket's requests in the current window, this one included."""

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

    def headers(self, *, limited: bool) -> dict[str, str]:
        """`X-RateLimit-Limit`, `-Remaining`, `-Reset` (ISO 8601, UTC), and `Retry-After` on a refusal."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": datetime.fromtimestamp(self.reset_at, tz=UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        if limited:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def window_hit(bucket: str, *, limit: int, window_seconds: int, now: float | None = None) -> WindowCount:
    """Counts one request in `bucket` and reports what is left of the current window.

    Windows are aligned to the epoch, so a day's window ends at midnight UTC. `now`: one instant for all the budgets
    a request counts against, so a request at a window's edge counts in the same minute for each of them. INCR and EXPIRE go in one MULTI, so a
    key never outlives its window by more than a few seconds, even when a process dies between the two.
    """
    now = int(time.time() if now is None else now)
    window_start = now - now % window_seconds
    key = f"ratelimit:{bucket}:{window_seconds}:{window_start}"
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, window_seconds + 5)
    count, _ = pipe.execute()
    return WindowCount(limit=limit, count=int(count), reset_at=window_start + window_seconds)
