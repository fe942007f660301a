"""One fixed-window request counter in Redis, shared by every process: the API's per-key limits (a minute) and the
public chat's per-visitor and per-IP limits (a minute and a day) all count through `window_hit`."""

import time
from dataclasses import dataclass

from config.redis import redis_client


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


def window_hit(bucket: str, *, limit: int, window_seconds: int) -> WindowCount:
    """Counts one request in `bucket` and reports what is left of the current window.

    Windows are aligned to the epoch, so a day's window ends at midnight UTC. INCR and EXPIRE go in one MULTI, so a
    key never outlives its window by more than a few seconds, even when a process dies between the two.
    """
    now = int(time.time())
    window_start = now - now % window_seconds
    key = f"ratelimit:{bucket}:{window_seconds}:{window_start}"
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, window_seconds + 5)
    count, _ = pipe.execute()
    return WindowCount(limit=limit, count=int(count), reset_at=window_start + window_seconds)
