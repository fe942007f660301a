"""Per-visitor limits for the public chat: per mind, per visitor id and per IP, per minute and per day.

Counted in Redis windows (config.ratelimit), shared by every web process. The IP budget is wider than a visitor's
(offices share an IP) but stops a client that throws away its visitor id to get a fresh budget.
"""

import time
from dataclasses import dataclass

from config.ratelimit import WindowCount, window_hit
from minds.models import Mind

IP_FACTOR = 5
DAY = 86_400
MINUTE = 60


@dataclass
class Verdict:
    allowed: bool
    # The budget the `X-RateLimit-*` headers report: the one exceeded, else the one with the fewest left.
    state: WindowCount
    scope: str = ""

    @property
    def retry_after(self) -> int:
        return self.state.retry_after if not self.allowed else 0

    def headers(self) -> dict[str, str]:
        return self.state.headers(limited=not self.allowed)


def public_message_allowed(*, mind: Mind, visitor_id: str, ip: str) -> Verdict:
    checks = [
        (f"{mind.id}:v:{visitor_id}", MINUTE, mind.public_messages_per_minute, "minute"),
        (f"{mind.id}:v:{visitor_id}", DAY, mind.public_messages_per_day, "day"),
        (f"{mind.id}:ip:{ip}", MINUTE, mind.public_messages_per_minute * IP_FACTOR, "minute"),
        (f"{mind.id}:ip:{ip}", DAY, mind.public_messages_per_day * IP_FACTOR, "day"),
    ]
    states = []
    now = time.time()  # one instant: a request at a minute's edge counts in the same minute for every budget
    for key, window, limit, scope in checks:
        count = window_hit(f"public:{key}", limit=limit, window_seconds=window, now=now)
        if count.exceeded:
            return Verdict(False, count, scope)
        states.append((count, scope))
    tightest, scope = min(states, key=lambda item: item[0].remaining)
    return Verdict(True, tightest, scope)
