"""Per-visitor limits for the public chat: per mind, per visitor id and per IP, per minute and per day.

Counted in Redis windows (config.ratelimit), shared by every web process. The IP budget is wider than a visitor's
(offices share an IP) but stops a client that throws away its visitor id to get a fresh budget.
"""

from dataclasses import dataclass

from config.ratelimit import window_hit
from minds.models import Mind

IP_FACTOR = 5
DAY = 86_400
MINUTE = 60


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0
    scope: str = ""


def public_message_allowed(*, mind: Mind, visitor_id: str, ip: str) -> Verdict:
    checks = [
        (f"{mind.id}:v:{visitor_id}", MINUTE, mind.public_messages_per_minute, "minute"),
        (f"{mind.id}:v:{visitor_id}", DAY, mind.public_messages_per_day, "day"),
        (f"{mind.id}:ip:{ip}", MINUTE, mind.public_messages_per_minute * IP_FACTOR, "minute"),
        (f"{mind.id}:ip:{ip}", DAY, mind.public_messages_per_day * IP_FACTOR, "day"),
    ]
    for key, window, limit, scope in checks:
        count = window_hit(f"public:{key}", limit=limit, window_seconds=window)
        if count.exceeded:
            return Verdict(False, count.retry_after, scope)
    return Verdict(True)
