"""HTTP tools: a URL template filled with the model's arguments and called through the SSRF-safe client.

    config = {"method": "GET" | "POST", "urlTemplate": "https://api.example.com/orders/{orderId}",
              "headers": {"Accept": "application/json"}}          # plain headers, returned by the API
    secret headers (tools/secrets.py)                              # encrypted at rest, never returned

Each `{name}` of the template is replaced by the argument `name`, URL-encoded (an absent one by nothing); the
scheme and host are the owner's, never the model's (services refuse placeholders there). POST sends all the
arguments as a JSON object. The answer's text (JSON re-printed compactly) is cut to TOOL_RESULT_MAX_CHARS, and
any secret header value the remote end echoes back is masked before the model reads it.
"""

import json
import re
from urllib.parse import quote

from django.conf import settings

from knowledge import safe_http
from knowledge.errors import ExtractionError, TransientError, UrlNotAllowedError
from knowledge.extractors.text import decode
from tools.errors import ToolFailure
from tools.models import Tool
from tools.results import cut, json_text
from tools.secrets import SecretsUnreadable, secret_headers_of

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]{0,63})\}")
METHODS = ("GET", "POST")
# Read at most this much of an answer; what the model reads is cut much shorter.
RESPONSE_MAX_BYTES = 1 * 2**20
ERROR_EXCERPT_CHARS = 500
MASK = "[secret]"


def placeholders(template: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def _encoded(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return quote(text, safe="")


def fill(template: str, arguments: dict) -> str:
    """The template with each {name} replaced by its argument, URL-encoded (so it cannot add a path segment,
    a query parameter or a host)."""
    return PLACEHOLDER.sub(lambda match: _encoded(arguments.get(match.group(1))), template)


def _masked(text: str, secrets: list[str]) -> str:
    """Each secret value, and each long word of one (the token of "Bearer <token>"), replaced by a mark."""
    pieces = set()
    for value in secrets:
        pieces.add(value)
        pieces.update(word for word in value.split() if len(word) >= 8)
    for piece in sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


def _answer_text(exchange: safe_http.Exchange) -> str:
    text = decode(exchange.body, exchange.charset) if exchange.body else ""
    if not exchange.truncated and (exchange.content_type.endswith("json") or text.lstrip()[:1] in ("{", "[")):
        try:
            return json_text(json.loads(text))
        except ValueError:
            pass
    return text


def call_http(tool: Tool, arguments: dict, *, timeout: float) -> str:
    """The answer's text for the model; raises ToolFailure (refused, timeout, unreachable, http_status)."""
    config = tool.config or {}
    method = str(config.get("method", "GET")).upper()
    if method not in METHODS:
        raise ToolFailure(f"The tool's method {method[:10]} is not supported.", reason="misconfigured")
    template = str(config.get("urlTemplate", ""))
    try:
        secret = secret_headers_of(tool)
    except SecretsUnreadable as exc:
        raise ToolFailure(
            "The tool's secret headers can no longer be read; its owner has to set them again.",
            reason="secrets_unreadable",
        ) from exc
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    headers.update({str(k): str(v) for k, v in (config.get("headers") or {}).items()})
    headers.update(secret)
    content = None
    if method == "POST":
        headers["Content-Type"] = "application/json"
        content = json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    url = fill(template, arguments)
    try:
        exchange = safe_http.request(
            method, url, headers=headers, content=content, timeout=timeout, max_bytes=RESPONSE_MAX_BYTES
        )
    except UrlNotAllowedError as exc:
        raise ToolFailure(f"Not called: {exc.message}", reason="refused") from exc
    except safe_http.ExchangeTimeout as exc:
        raise ToolFailure(f"The tool did not answer within {timeout:g} s.", reason="timeout") from exc
    except (TransientError, ExtractionError) as exc:
        raise ToolFailure(f"The tool could not be reached: {exc}", reason="unreachable") from exc
    text = _masked(_answer_text(exchange), list(secret.values()))
    if not 200 <= exchange.status < 300:
        excerpt = text.strip()[:ERROR_EXCERPT_CHARS]
        raise ToolFailure(
            f"The tool answered HTTP {exchange.status}." + (f" Its answer: {excerpt}" if excerpt else ""),
            reason="http_status",
        )
    return cut(
        text if text.strip() else f"HTTP {exchange.status}, no content.", settings.TOOL_RESULT_MAX_CHARS
    )
