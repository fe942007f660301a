"""The tools of remote MCP servers (streamable HTTP), through the official MCP Python SDK.

`list_tools(server)` opens a session of its own, lists every tool (all pages) and closes it; the services cache
the listing as Tool rows. `call_tool(tool, arguments, conversation_id=…, timeout=…)` calls one tool in the session
kept for (conversation, server) (tools/mcp_sessions.py) and never raises: every failure (the tool's own error
result, a server that is down or refuses the session, a timeout, a refused address, unreadable secret headers)
comes back as an error outcome the model reads. The server's URL is checked by knowledge/safe_http.py's rule before
anything is sent, and every connect is checked again (mcp_sessions.SafeBackend). Secret header values are sent to
the server only; no message here contains one.
"""

import json
import time

from django.conf import settings
from mcp_types import PaginatedRequestParams

from knowledge.errors import UrlNotAllowedError
from knowledge.safe_http import validate_url
from tools.mcp_sessions import Endpoint, McpError, call_in_session, call_once, describe
from tools.outcomes import ToolOutcome
from tools.results import cut
from tools.secrets import SecretsUnreadable, secret_headers_of

LIST_TIMEOUT_SECONDS = 15.0
MAX_PAGES = 20
MAX_TOOLS = 200


def endpoint_for(server) -> Endpoint:
    """Where to connect and with which headers. Raises McpError when the URL is refused or the headers unreadable."""
    try:
        validate_url(server.url)
    except UrlNotAllowedError as exc:
        raise McpError("mcp_url_not_allowed", exc.message) from exc
    try:
        headers = secret_headers_of(server)
    except SecretsUnreadable as exc:
        raise McpError(
            "mcp_secrets_unreadable",
            "The MCP server's secret headers can no longer be read; set them again.",
        ) from exc
    return Endpoint(url=server.url.strip(), headers=tuple(sorted(headers.items())))


def list_tools(server, *, timeout: float | None = None) -> list[dict]:
    """The server's tools as [{name, title, description, inputSchema}]. Raises McpError with a code:
    mcp_url_not_allowed, mcp_unreachable, mcp_timeout, mcp_protocol_error, mcp_secrets_unreadable."""
    endpoint = endpoint_for(server)

    async def listing(session) -> list[dict]:
        tools: list[dict] = []
        cursor = None
        for _page in range(MAX_PAGES):
            if cursor is None:
                result = await session.list_tools()
            else:
                result = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            for tool in result.tools:
                tools.append(
                    {
                        "name": tool.name,
                        "title": getattr(tool, "title", None) or "",
                        "description": tool.description or "",
                        "inputSchema": tool.input_schema or {"type": "object", "properties": {}},
                    }
                )
            cursor = result.next_cursor
            if not cursor or len(tools) >= MAX_TOOLS:
                break
        return tools[:MAX_TOOLS]

    try:
        return call_once(endpoint, listing, timeout=timeout or LIST_TIMEOUT_SECONDS)
    except McpError:
        raise
    except Exception as exc:  # the SDK's MCPError (the server refused tools/list) or anything unexpected
        raise describe(exc) from exc


def _content_text(result) -> str:
    """The result's text content joined; other content is named, structured content used when there is no text."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {block.uri}]")
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {getattr(block, 'mime_type', '') or 'binary'}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def call_tool(tool, arguments: dict, *, conversation_id: str, timeout: float) -> ToolOutcome:
    """Calls an MCP tool (a Tool row of kind mcp) in the conversation's session with its server. Never raises."""
    started = time.monotonic()
    max_chars = settings.TOOL_RESULT_MAX_CHARS

    def outcome(content: str, is_error: bool) -> ToolOutcome:
        return ToolOutcome(
            content=cut(content, max_chars),
            is_error=is_error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    server = tool.mcp_server
    if server is None:
        return outcome("This MCP tool has lost its server.", True)
    if not server.enabled:
        return outcome(f"The MCP server {server.name} is switched off.", True)
    remote = (tool.config or {}).get("remoteName") or ""
    if not remote:
        return outcome("This MCP tool names no remote tool.", True)
    if not isinstance(arguments, dict):
        return outcome("The arguments must be a JSON object.", True)
    try:
        endpoint = endpoint_for(server)

        async def call(session, seconds_left: float):
            return await session.call_tool(remote, arguments, read_timeout_seconds=seconds_left)

        result = call_in_session(
            (conversation_id or "-", server.id), endpoint, call, timeout=max(0.1, float(timeout))
        )
    except McpError as exc:
        return outcome(f"The MCP server {server.name} failed: {exc.message}", True)
    except Exception as exc:  # the SDK's MCPError (the server's JSON-RPC error), or anything unexpected
        return outcome(f"The MCP server {server.name} failed: {describe(exc).message}", True)
    text = _content_text(result)
    if result.is_error:
        return outcome(text or f"The tool {remote} failed.", True)
    return outcome(text, False)
