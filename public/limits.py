"""Per-visitor limits for the public chat: per mind, per visitor id and per IP, per minute and per day.

Counted in Redis (shared by every web process). The IP budget is wider than a visitor's (offices share an IP) but
stops a client that throws away its visitor id to get a fresh budget.
"""

from dataclasses import dataclass

from config.redis import redis_client
from minds.models import Mind

IP_FACTOR = 5
DAY = 86_400
MINUTE = 60


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0
    scope: str = ""


def _hit(key: str, window: int, limit: int) -> tuple[bool, int]:
    import time

    now = int(time.time())
    start = now - now % window
    full = f"public:{key}:{window}:{start}"
    pipe = redis_client().pipeline()
    pipe.incr(full)
    pipe.expire(full, window + 5)
    count, _ = pipe.execute()
    return int(count) <= limit, start + window - now


def public_message_allowed(*, mind: Mind, visitor_id: str, ip: str) -> Verdict:
    checks = [
        (f"{mind.id}:v:{visitor_id}", MINUTE, mind.public_messages_per_minute, "minute"),
        (f"{mind.id}:v:{visitor_id}", DAY, mind.public_messages_per_day, "day"),
        (f"{mind.id}:ip:{ip}", MINUTE, mind.public_messages_per_minute * IP_FACTOR, "minute"),
        (f"{mind.id}:ip:{ip}", DAY, mind.public_messages_per_day * IP_FACTOR, "day"),
    ]
    for key, window, limit, scope in checks:
        allowed, retry_after = _hit(key, window, limit)
        if not allowed:
            return Verdict(False, max(1, retry_after), scope)
    return Verdict(True)
