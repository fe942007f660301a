"""Writes for a mind's MCP servers and its dynamic context endpoint.

An MCP server's tools are cached as Tool rows of kind `mcp`: creating a server lists its tools (over the network,
outside any transaction) and saves the server with one row per tool, each disabled until its owner switches it on,
named `<server name>__<tool name>` (the characters a function name may not hold become `_`, cut to 64 and made
unique in the mind), with the server's inputSchema as parameters. A server that cannot be listed is not saved: the
error says why (`url_not_allowed` 400, `mcp_unreachable` / `mcp_timeout` / `mcp_protocol_error` 422). A refresh
lists again: new tools are added disabled, tools the server no longer has are deleted, changed descriptions and
schemas updated, switches kept. Changing a server's URL or headers lists it again the same way, and is refused,
with nothing saved, when the new address cannot be listed.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from config.api.errors import ApplicationError, Conflict, LimitExceeded, ValidationFailed
from knowledge.errors import UrlNotAllowedError
from knowledge.safe_http import validate_url
from minds.models import Mind
from tools import mcp_client
from tools.mcp_sessions import McpError
from tools.models import ContextEndpoint, McpServer, Tool
from tools.secrets import SecretsUnreadable, headers_decrypt, secret_headers_set, validate_headers

MAX_SERVERS_PER_MIND = 10
MAX_DESCRIPTION_CHARS = 4000
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
NOT_IN_A_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")
CONTEXT_VARIABLES = ("conversationId", "mindId", "lastUserMessage", "userId")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class McpServerUnavailable(ApplicationError):
    """422, not 502: the request names a server that cannot be used; the API's own upstreams are 502."""

    status_code = 422
    code = "mcp_unreachable"
    default_message = "The MCP server could not be reached."


def _unavailable(error: McpError) -> ApplicationError:
    if error.code == "mcp_url_not_allowed":
        return UrlNotAllowedError(error.message)
    if error.code == "mcp_secrets_unreadable":
        return ApplicationError(error.message, code="secrets_unreadable")
    return McpServerUnavailable(error.message, code=error.code)


@dataclass
class McpServerChanges:
    """What a create or an update sets; None means "not given"."""

    name: str | None = None
    url: str | None = None
    # Create: the secret headers. Update: merged ({name: value} sets, {name: None} removes, others kept).
    headers: dict | None = None
    enabled: bool | None = None
    # [{id, enabled}] for this server's tools.
    tools: list[dict] = field(default_factory=list)


def secret_headers_merge(row, changes: dict) -> None:
    """Sets the headers given with a value, removes those given as None, keeps the others (whose values cannot be
    read back by the client). Names compare without case."""
    try:
        current = headers_decrypt(row.secret_headers_ciphertext)
    except SecretsUnreadable:
        current = {}  # unreadable: what is sent now replaces it
    given = validate_headers({k: v for k, v in changes.items() if v is not None}, field="headers")
    touched = {name.lower() for name in changes}
    merged = {name: value for name, value in current.items() if name.lower() not in touched}
    merged.update(given)
    secret_headers_set(row, validate_headers(merged, field="headers"))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not SERVER_NAME.match(name):
        raise ValidationFailed(
            details={
                "name": ["1 to 40 letters, digits, _ or - (it prefixes the names of the server's tools)."]
            }
        )
    return name


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if not url or len(url) > 2000:
        raise ValidationFailed(details={"url": ["An http or https URL of at most 2000 characters."]})
    return validate_url(url)  # UrlNotAllowedError: 400 url_not_allowed


def _function_name(server_name: str, remote: str, taken: set[str]) -> str:
    base = NOT_IN_A_FUNCTION_NAME.sub("_", f"{server_name}__{remote}")[:64]
    name, n = base, 2
    while name.lower() in taken:
        suffix = f"_{n}"
        name = base[: 64 - len(suffix)] + suffix
        n += 1
    taken.add(name.lower())
    return name


def _taken_names(mind: Mind, *, excluding_server: McpServer | None = None) -> set[str]:
    tools = Tool.objects.filter(mind=mind)
    if excluding_server is not None and excluding_server.pk:
        tools = tools.exclude(mcp_server=excluding_server)
    return {name.lower() for name in tools.values_list("name", flat=True)}


def _listing(server: McpServer) -> list[dict]:
    try:
        return mcp_client.list_tools(server)
    except McpError as exc:
        raise _unavailable(exc) from exc


def _tool_fields(listed: dict) -> dict:
    schema = listed.get("inputSchema") or {}
    if not isinstance(schema, dict) or schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    return {
        "description": (listed.get("description") or listed.get("title") or "")[:MAX_DESCRIPTION_CHARS],
        "parameters": schema,
    }


def _reconcile(server: McpServer, listed: list[dict]) -> dict:
    """Makes the server's Tool rows match `listed` (in a transaction the caller holds); returns what changed."""
    existing = {(t.config or {}).get("remoteName"): t for t in server.tools.all()}
    seen: set[str] = set()
    taken = _taken_names(server.mind, excluding_server=server)
    added, updated = [], []
    # Keep the names of tools that stay, so a refresh never renames what an owner already switched on.
    for remote, tool in existing.items():
        if remote in {t["name"] for t in listed}:
            taken.add(tool.name.lower())
    for entry in listed:
        remote = entry["name"]
        if remote in seen:
            continue
        seen.add(remote)
        fields = _tool_fields(entry)
        tool = existing.get(remote)
        if tool is None:
            Tool.objects.create(
                workspace_id=server.workspace_id,
                mind_id=server.mind_id,
                kind=Tool.Kind.MCP,
                name=_function_name(server.name, remote, taken),
                config={"remoteName": remote},
                mcp_server=server,
                enabled=False,
                **fields,
            )
            added.append(remote)
        elif any(getattr(tool, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(tool, k, v)
            tool.save(update_fields=[*fields, "updated_at"])
            updated.append(remote)
    removed = [remote for remote in existing if remote not in seen]
    if removed:
        Tool.objects.filter(mcp_server=server, pk__in=[existing[r].pk for r in removed]).delete()
    return {"added": added, "updated": updated, "removed": removed}


def _audit(server: McpServer, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=server.workspace_id,
        entity="mcp_server",
        entity_id=server.id,
        entity_name=server.name,
        action=action,
        changes=changes or {},
    )


def mcp_server_create(*, mind: Mind, changes: McpServerChanges) -> McpServer:
    name = _check_name(changes.name or "")
    url = _check_url(changes.url or "")
    headers = validate_headers(changes.headers or {}, field="headers")
    if McpServer.objects.filter(mind=mind).count() >= MAX_SERVERS_PER_MIND:
        raise LimitExceeded(
            f"A mind may have at most {MAX_SERVERS_PER_MIND} MCP servers.",
            details={"limit": MAX_SERVERS_PER_MIND},
        )
    if McpServer.objects.filter(mind=mind, name=name).exists():
        raise Conflict("The mind already has an MCP server with this name.", details={"field": "name"})
    server = McpServer(workspace_id=mind.workspace_id, mind=mind, name=name, url=url)
    server.enabled = True if changes.enabled is None else bool(changes.enabled)
    secret_headers_set(server, headers)
    listed = _listing(server)  # the network, before any transaction: nothing is saved when it fails
    try:
        with transaction.atomic():
            server.listed_at = timezone.now()
            server.save()
            _reconcile(server, listed)
            _audit(
                server,
                "create",
                {"name": name, "url": url, "secretHeaders": server.secret_header_names, "tools": len(listed)},
            )
    except IntegrityError as exc:
        raise Conflict(
            "The mind already has an MCP server with this name.", details={"field": "name"}
        ) from exc
    return server


def mcp_server_update(*, server: McpServer, changes: McpServerChanges) -> McpServer:
    before = {"name": server.name, "url": server.url, "enabled": server.enabled}
    relist = False
    if changes.name is not None and changes.name != server.name:
        name = _check_name(changes.name)
        if McpServer.objects.filter(mind_id=server.mind_id, name=name).exclude(pk=server.pk).exists():
            raise Conflict("The mind already has an MCP server with this name.", details={"field": "name"})
        server.name = name
    if changes.url is not None and changes.url.strip() != server.url:
        server.url = _check_url(changes.url)
        relist = True
    if changes.headers:
        secret_headers_merge(server, changes.headers)
        relist = True
    if changes.enabled is not None:
        server.enabled = bool(changes.enabled)
    switches = _tool_switches(server, changes.tools)
    listed = _listing(server) if relist else None
    with transaction.atomic():
        if listed is not None:
            server.listed_at = timezone.now()
            server.last_error = ""
        server.save()
        if listed is not None:
            _reconcile(server, listed)
        if server.name != before["name"]:
            _rename_tools(server, before["name"])
        for tool_id, enabled in switches.items():
            Tool.objects.filter(pk=tool_id, mcp_server=server).update(
                enabled=enabled, updated_at=timezone.now()
            )
        after = {"name": server.name, "url": server.url, "enabled": server.enabled}
        diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
        if changes.headers:
            diff["headerNames"] = server.secret_header_names  # names only: values are never logged
        if switches:
            diff["toolsEnabled"] = {tool_id: enabled for tool_id, enabled in switches.items()}
        _audit(server, "update", diff)
    return server


def _tool_switches(server: McpServer, tools: list[dict]) -> dict[str, bool]:
    if not tools:
        return {}
    own = set(server.tools.values_list("id", flat=True)) if server.pk else set()
    switches: dict[str, bool] = {}
    for entry in tools:
        if not isinstance(entry, dict) or not isinstance(entry.get("enabled"), bool) or "id" not in entry:
            raise ValidationFailed(details={"tools": ["Each entry is {id, enabled: true|false}."]})
        if entry["id"] not in own:
            raise ValidationFailed(
                details={"tools": [f"{str(entry['id'])[:60]} is not a tool of this server."]}
            )
        switches[entry["id"]] = entry["enabled"]
    return switches


def _rename_tools(server: McpServer, old_name: str) -> None:
    taken = _taken_names(server.mind, excluding_server=server)
    for tool in server.tools.all().order_by("created_at", "id"):
        remote = (tool.config or {}).get("remoteName") or tool.name
        tool.name = _function_name(server.name, remote, taken)
        tool.save(update_fields=["name", "updated_at"])


def mcp_server_refresh(*, server: McpServer) -> dict:
    """Lists the server again and reconciles its tools; records the failure on the server when it cannot."""
    try:
        listed = mcp_client.list_tools(server)
    except McpError as exc:
        McpServer.objects.filter(pk=server.pk).update(last_error=exc.message[:500], updated_at=timezone.now())
        server.last_error = exc.message[:500]
        raise _unavailable(exc) from exc
    with transaction.atomic():
        server.listed_at = timezone.now()
        server.last_error = ""
        server.save(update_fields=["listed_at", "last_error", "updated_at"])
        changed = _reconcile(server, listed)
        _audit(server, "refresh", changed)
    return changed


def mcp_server_delete(*, server: McpServer) -> str:
    server_id = server.id
    with transaction.atomic():
        _audit(server, "delete", {"name": server.name})
        server.delete()
    return server_id


# --- The dynamic context endpoint -------------------------------------------------------------------------


@dataclass
class ContextEndpointChanges:
    url_template: str
    headers: dict | None = None  # merged: {name: value} sets, {name: None} removes, the others are kept
    cache_seconds: int | None = None
    timeout_seconds: float | None = None
    enabled: bool | None = None


def check_url_template(template: str) -> str:
    """Only the four variables, never in the scheme or host; the template filled with samples must be a URL the
    SSRF rule allows."""
    template = (template or "").strip()
    if not template or len(template) > 2000:
        raise ValidationFailed(details={"urlTemplate": ["An http or https URL of at most 2000 characters."]})
    unknown = sorted({name for name in PLACEHOLDER.findall(template) if name not in CONTEXT_VARIABLES})
    if unknown:
        raise ValidationFailed(
            details={
                "urlTemplate": [f"Unknown variable {{{unknown[0]}}}; use {', '.join(CONTEXT_VARIABLES)}."]
            }
        )
    sample = PLACEHOLDER.sub("x", template)
    netloc = urlsplit(template).netloc if "://" in template else ""
    if "{" in netloc or "}" in netloc:
        raise ValidationFailed(details={"urlTemplate": ["Variables may be used in the path and query only."]})
    validate_url(sample)  # UrlNotAllowedError: 400 url_not_allowed
    return template


def context_endpoint_set(*, mind: Mind, changes: ContextEndpointChanges) -> ContextEndpoint:
    template = check_url_template(changes.url_template)
    endpoint = ContextEndpoint.objects.filter(mind=mind).first()
    created = endpoint is None
    if endpoint is None:
        endpoint = ContextEndpoint(mind=mind, workspace_id=mind.workspace_id)
    endpoint.url_template = template
    if changes.headers:
        secret_headers_merge(endpoint, changes.headers)
    if changes.cache_seconds is not None:
        endpoint.cache_seconds = changes.cache_seconds
    if changes.timeout_seconds is not None:
        endpoint.timeout_seconds = changes.timeout_seconds
    if changes.enabled is not None:
        endpoint.enabled = changes.enabled
    with transaction.atomic():
        endpoint.save()
        audit_record(
            workspace=mind.workspace_id,
            entity="context_endpoint",
            entity_id=mind.id,
            entity_name=mind.name,
            action="create" if created else "update",
            changes={
                "urlTemplate": template,
                "secretHeaders": endpoint.secret_header_names,
                "cacheSeconds": endpoint.cache_seconds,
                "timeoutSeconds": endpoint.timeout_seconds,
                "enabled": endpoint.enabled,
            },
        )
    return endpoint


def context_endpoint_delete(*, mind: Mind) -> bool:
    with transaction.atomic():
        deleted, _ = ContextEndpoint.objects.filter(mind=mind).delete()
        if deleted:
            audit_record(
                workspace=mind.workspace_id,
                entity="context_endpoint",
                entity_id=mind.id,
                entity_name=mind.name,
                action="delete",
                changes={},
            )
    return bool(deleted)
