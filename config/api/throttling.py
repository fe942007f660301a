"""Per-key rate limits in fixed one-minute windows (config.ratelimit), with the `X-RateLimit-*` headers, and the
budget of failed authentications per client address that stands before them."""

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from config.ratelimit import WindowCount, client_address, window_hit

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


class TooManyFailedAuthentications(exceptions.Throttled):
    default_detail = "Too many requests with a missing or invalid API key from this address. Try again later."


def authentication_failed(request) -> None:
    """Counts a failed authentication (401) against the client's address; past the budget, raises a 429.

    Counted after the key is checked, not before: a valid key from the same address (an office behind one NAT,
    where one client is misconfigured) keeps working, while the failing client gets 429 `rate_limited` with
    `Retry-After` instead of an unbounded stream of 401s. Keys carry ~190 random bits, so the budget is not what
    stops guessing; it stops a client or scanner from hammering the API without ever being told to back off.
    """
    state = window_hit(
        f"authfail:{client_address(request)}", limit=settings.AUTH_FAILURES_PER_MINUTE, window_seconds=MINUTE
    )
    request.rate_limit = state
    if state.exceeded:
        raise TooManyFailedAuthentications(wait=state.retry_after)


def apply_rate_limit_headers(request, response) -> None:
    state: WindowCount | None = getattr(request, "rate_limit", None)
    if state is None:
        return
    for name, value in state.headers(limited=response.status_code == 429).items():
        response[name] = value
