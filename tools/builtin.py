"""The built-in tools: `search_knowledge` (retrieval the model can run again with a better query) and `fetch_url`
(a page of a host the mind allows, read through the SSRF-safe client)."""

import json
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.db import OperationalError, connection, transaction
from psycopg.errors import QueryCanceled

from knowledge import safe_http
from knowledge.errors import ExtractionError, TransientError, UrlNotAllowedError
from knowledge.extractors.html import extract_html
from knowledge.extractors.text import decode
from knowledge.search import KnowledgeScope, search_chunks
from tools.errors import ToolFailure
from tools.models import Tool
from tools.results import cut, json_text

SEARCH_LIMIT = 6
# A passage must be at least this similar to the query to be shown (the chat turn's own retrieval uses the same
# floor, conversations/chat.py: below it the text is only loosely related).
MIN_SIMILARITY = 0.25
MAX_QUERY_CHARS = 500
FETCH_MAX_BYTES = 2 * 2**20
HTML_TYPES = ("text/html", "application/xhtml+xml")
JSON_TYPES = ("application/json", "application/ld+json")

DEFAULTS: dict[str, dict] = {
    Tool.Kind.SEARCH_KNOWLEDGE: {
        "name": "search_knowledge",
        "description": (
            "Search this mind's knowledge (its documents, pages and collections) for passages about a question. "
            "Call it again with other words when the passages found do not answer."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for: a question or keywords, standing alone.",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                }
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    Tool.Kind.FETCH_URL: {
        "name": "fetch_url",
        "description": "Read the text of a web page on one of the allowed sites.",
        "parameters": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "The page's full http(s) URL.", "maxLength": 2000}
            },
            "required": ["url"],
            "additionalProperties": False,
        },
    },
}


def search_knowledge(arguments: dict, *, scope: KnowledgeScope, timeout: float) -> tuple[str, list]:
    """(content, hits): the passages go to the loop, which shows them to the model as citable passages. The
    database's part of the search stops at `timeout` seconds, like any other tool's call."""
    query = str(arguments.get("query", "")).strip()[:MAX_QUERY_CHARS]
    if not query:
        raise ToolFailure("The query is empty.", reason="invalid_arguments")
    if scope.is_empty:
        return "This mind has no knowledge to search.", []
    try:
        with statement_time_limit(timeout):
            hits = search_chunks(scope=scope, query=query, limit=SEARCH_LIMIT, threshold=0.0, mode="hybrid")
    except OperationalError as exc:
        if not isinstance(exc.__cause__, QueryCanceled):
            raise
        raise ToolFailure(f"The search did not finish within {timeout:g} s.", reason="timeout") from exc
    hits = [hit for hit in hits if hit.vector_score >= MIN_SIMILARITY]
    if not hits:
        return f"No passage of the mind's knowledge matches {query!r}; try other words.", []
    names = list(dict.fromkeys(hit.chunk.source.name for hit in hits))
    return f"Found {len(hits)} passage(s) for {query!r}, from: {', '.join(names)[:500]}.", hits


@contextmanager
def statement_time_limit(seconds: float):
    """Every query inside stops after `seconds` (PostgreSQL's statement_timeout, for this transaction only; the
    previous limit is back afterwards, also inside a caller's transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        (previous,) = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true)", [f"{max(1, int(seconds * 1000))}ms"]
        )
        yield
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    """The host itself or one of its subdomains (docs.example.com for example.com), never a lookalike."""
    host = host.lower().rstrip(".")
    for allowed in allowed_hosts:
        allowed = str(allowed).lower().strip().rstrip(".")
        if allowed and (host == allowed or host.endswith("." + allowed)):
            return True
    return False


def fetch_url(arguments: dict, *, tool: Tool, timeout: float) -> str:
    url = str(arguments.get("url", "")).strip()
    allowed_hosts = list(tool.config.get("allowedHosts") or [])
    if not allowed_hosts:
        raise ToolFailure(
            "This tool allows no host; its owner has to list the allowed hosts.", reason="refused"
        )

    def check(hop: str) -> None:
        try:
            host = urlsplit(hop).hostname or ""
        except ValueError as exc:
            raise UrlNotAllowedError("This is not a valid URL.") from exc
        if not host_allowed(host, allowed_hosts):
            raise UrlNotAllowedError(f"{host or 'This URL'} is not one of the hosts this tool may read.")

    try:
        check(url)
        exchange = safe_http.request(
            "GET",
            url,
            headers={"Accept": "text/html, text/plain, application/json;q=0.9, */*;q=0.1"},
            timeout=timeout,
            max_bytes=FETCH_MAX_BYTES,
            hop_check=check,
        )
    except UrlNotAllowedError as exc:
        raise ToolFailure(f"Not fetched: {exc.message}", reason="refused") from exc
    except safe_http.ExchangeTimeout as exc:
        raise ToolFailure(f"The page did not answer within {timeout:g} s.", reason="timeout") from exc
    except (TransientError, ExtractionError) as exc:
        raise ToolFailure(f"The page could not be fetched: {exc}", reason="unreachable") from exc
    if not 200 <= exchange.status < 300:
        raise ToolFailure(f"The page answered HTTP {exchange.status}.", reason="http_status")
    return cut(f"{exchange.url}\n\n{_readable(exchange)}", settings.TOOL_RESULT_MAX_CHARS)


def _readable(exchange: safe_http.Exchange) -> str:
    kind = exchange.content_type
    if kind in HTML_TYPES or (not kind and exchange.body.lstrip()[:1] == b"<"):
        try:
            extracted = extract_html(exchange.body, exchange.url, exchange.charset)
        except ExtractionError as exc:
            raise ToolFailure(exc.message, reason="empty_content") from exc
        return f"# {extracted.title}\n\n{extracted.text}" if extracted.title else extracted.text
    if kind in JSON_TYPES or kind.endswith("+json"):
        text = decode(exchange.body, exchange.charset)
        try:
            return json_text(json.loads(text))
        except ValueError:
            return text
    if kind.startswith("text/") or not kind:
        return decode(exchange.body, exchange.charset)
    raise ToolFailure(f"The page is not text ({kind}).", reason="unsupported_type")
