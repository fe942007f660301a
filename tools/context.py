"""Dynamic context: a mind's context endpoint, read on each chat turn and put into the system prompt.

`dynamic_context(mind, conversation_id=…, last_user_message=…, user_id=…)` fills the endpoint's URL template
({conversationId}, {mindId}, {lastUserMessage}, {userId}, each URL-encoded), GETs it through the SSRF-safe client
(knowledge/safe_http.request: public addresses only, pinned, every redirect checked, the secret headers sent to the
URL's own origin only) within the endpoint's timeout, and returns the answer as text. It never raises: no endpoint,
a switched-off one, a refused address, a timeout, a non-2xx status or an empty answer give "" and a log line (the
chat goes on without it).

Cached in Django's cache (Redis) for the endpoint's `cache_seconds`, per conversation, under a key made of the
conversation, the template and the filled URL (so a template that uses {lastUserMessage} asks again when the
message changes, and one that does not reuses the answer for the whole conversation). Changing the endpoint
(`updated_at`) starts a new cache. Failures are not cached.

The answer is capped at DYNAMIC_CONTEXT_SHARE x LLM_CONTEXT_TOKENS tokens (15 % of 128k by default), counted
roughly and on the safe side: a quarter token per ASCII character (English runs about four characters a token)
and one token for every other character (CJK and most non-Latin scripts take a token or more per character), so
the estimate is at or above the real count for the common cases. A longer answer is cut to fit, with a mark.
"""

import hashlib
import logging
import time
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.cache import cache

from knowledge import safe_http
from tools.models import ContextEndpoint
from tools.secrets import SecretsUnreadable, secret_headers_of

logger = logging.getLogger(__name__)

CUT_MARK = "\n[… the context was cut to fit]"
MAX_BODY_BYTES = 2 * 2**20
CACHE_PREFIX = "tools:dynctx:v1:"


def rough_tokens(text: str) -> float:
    """The token count estimate described above (ASCII 1/4, anything else 1)."""
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    return ascii_chars / 4 + (len(text) - ascii_chars)


def token_budget() -> int:
    return max(0, int(settings.LLM_CONTEXT_TOKENS * settings.DYNAMIC_CONTEXT_SHARE))


def cap_to_tokens(text: str, budget: int) -> str:
    """`text` whole when its estimate fits `budget`, else its longest prefix that fits with the cut mark."""
    if rough_tokens(text) <= budget:
        return text
    room = budget - rough_tokens(CUT_MARK)
    if room <= 0:
        return ""
    used, end = 0.0, 0
    for i, c in enumerate(text):
        used += 0.25 if ord(c) < 128 else 1
        if used > room:
            break
        end = i + 1
    return text[:end] + CUT_MARK


def fill_template(
    template: str, *, conversation_id: str, mind_id: str, last_user_message: str, user_id: str
) -> str:
    values = {
        "conversationId": conversation_id,
        "mindId": mind_id,
        "lastUserMessage": last_user_message,
        "userId": user_id,
    }
    url = template
    for name, value in values.items():
        url = url.replace("{" + name + "}", quote(str(value or ""), safe=""))
    return url


def _cache_key(endpoint: ContextEndpoint, conversation_id: str, url: str) -> str:
    digest = hashlib.sha256(
        "\0".join(
            [
                endpoint.mind_id,
                conversation_id,
                endpoint.url_template,
                url,
                endpoint.updated_at.isoformat() if endpoint.updated_at else "",
            ]
        ).encode("utf-8")
    ).hexdigest()
    return f"{CACHE_PREFIX}{endpoint.mind_id}:{digest}"


def _decode(exchange) -> str:
    charset = exchange.charset or "utf-8"
    try:
        text = exchange.body.decode(charset, errors="replace")
    except LookupError:
        text = exchange.body.decode("utf-8", errors="replace")
    return text.replace("\x00", "").strip()


def dynamic_context(mind, *, conversation_id: str, last_user_message: str, user_id: str = "") -> str:
    """The context endpoint's answer for this turn, capped; "" when there is none or it failed. Never raises."""
    try:
        return _dynamic_context(mind, conversation_id or "", last_user_message or "", user_id or "")
    except Exception:  # the chat must go on whatever happens here
        logger.exception("dynamic context failed for mind %s", getattr(mind, "id", "?"))
        return ""


def _dynamic_context(mind, conversation_id: str, last_user_message: str, user_id: str) -> str:
    endpoint = ContextEndpoint.objects.filter(mind_id=mind.id, enabled=True).first()
    if endpoint is None:
        return ""
    budget = token_budget()
    if budget <= 0:
        return ""
    url = fill_template(
        endpoint.url_template,
        conversation_id=conversation_id,
        mind_id=mind.id,
        last_user_message=last_user_message,
        user_id=user_id,
    )
    host = urlsplit(endpoint.url_template).hostname or "?"  # for logs: never the filled URL (the message)
    key = _cache_key(endpoint, conversation_id, url)
    if endpoint.cache_seconds > 0 and conversation_id:
        cached = cache.get(key)
        if cached is not None:
            return cap_to_tokens(cached, budget)
    try:
        headers = secret_headers_of(endpoint)
    except SecretsUnreadable:
        logger.warning("dynamic context of mind %s skipped: its secret headers cannot be read", mind.id)
        return ""
    started = time.monotonic()
    try:
        exchange = safe_http.request(
            "GET",
            url,
            headers={"Accept": "application/json, text/markdown, text/plain;q=0.9, */*;q=0.5", **headers},
            timeout=max(0.1, float(endpoint.timeout_seconds)),
            max_bytes=min(MAX_BODY_BYTES, budget * 4 + 1024),
        )
    except Exception as exc:  # refused address, timeout, connection: logged and skipped
        logger.warning(
            "dynamic context of mind %s skipped: %s at %s (%s)",
            mind.id,
            exc.__class__.__name__,
            host,
            str(exc)[:200],
        )
        return ""
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if not 200 <= exchange.status < 300:
        logger.warning(
            "dynamic context of mind %s skipped: %s answered HTTP %s in %d ms",
            mind.id,
            host,
            exchange.status,
            elapsed_ms,
        )
        return ""
    text = cap_to_tokens(_decode(exchange), budget)
    if endpoint.cache_seconds > 0 and conversation_id and text:
        cache.set(key, text, timeout=endpoint.cache_seconds)
    return text
