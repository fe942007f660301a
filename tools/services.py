"""Writes of tools: create, update, delete, each validated and audited in its transaction.

Kinds created here: the built-ins (`search_knowledge`, `fetch_url`) and `http`. Tools of kind `mcp` are listed from
their server (tools/mcp_client.py); here they can only be switched (enabled, isPublic) and described.
"""

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.audit import audit_record, changes_between, values_shown
from config.api.errors import LimitExceeded, ValidationFailed
from knowledge.safe_http import LOCAL_NAMES, LOCAL_SUFFIXES, address_refusal
from minds.models import Mind
from tools.builtin import DEFAULTS
from tools.errors import ToolNameTaken
from tools.http_tools import METHODS, PLACEHOLDER, placeholders
from tools.models import Tool
from tools.secrets import SecretsUnreadable, headers_decrypt, secret_headers_set, validate_headers

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_TOOLS_PER_MIND = 50
MAX_DESCRIPTION_CHARS = 2000
MAX_SCHEMA_CHARS = 20_000
MAX_URL_CHARS = 2000
MAX_ALLOWED_HOSTS = 50
MAX_TIMEOUT_SECONDS = 120
CREATABLE_KINDS = (Tool.Kind.SEARCH_KNOWLEDGE, Tool.Kind.FETCH_URL, Tool.Kind.HTTP)
CONFIG_KEYS = {
    Tool.Kind.SEARCH_KNOWLEDGE: {"timeoutSeconds"},
    Tool.Kind.FETCH_URL: {"allowedHosts", "timeoutSeconds"},
    Tool.Kind.HTTP: {"method", "urlTemplate", "headers", "timeoutSeconds"},
}
# What an MCP tool's owner may change; the rest comes from its server.
MCP_FIELDS = {"description", "enabled", "is_public"}
TOOL_FIELDS = ("name", "description", "parameters", "enabled", "is_public", "config")
HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"fields": {field: [message]}})


def _name_clean(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise _invalid(
            "name", "A tool's name is 1–64 letters, digits, _ or - (the function name the model calls)."
        )
    return name


def _parameters_clean(parameters: Any) -> dict:
    if not isinstance(parameters, dict):
        raise _invalid("parameters", "The parameters are a JSON Schema object.")
    if len(json.dumps(parameters)) > MAX_SCHEMA_CHARS:
        raise _invalid("parameters", f"The parameters' schema is longer than {MAX_SCHEMA_CHARS} characters.")
    if parameters.get("type", "object") != "object":
        raise _invalid("parameters", 'The arguments are an object: the schema\'s "type" must be "object".')
    try:
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise _invalid("parameters", f"Not a valid JSON Schema: {exc.message[:300]}") from exc
    except (TypeError, ValueError, LookupError) as exc:  # e.g. a "$schema" that is not a string
        raise _invalid("parameters", "Not a valid JSON Schema.") from exc
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict):
        raise _invalid("parameters", '"properties" must be an object.')
    return {"type": "object", **parameters}


def _timeout_clean(config: dict) -> None:
    if "timeoutSeconds" in config:
        value = config["timeoutSeconds"]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value <= MAX_TIMEOUT_SECONDS
        ):
            raise _invalid(
                "config.timeoutSeconds", f"A number of seconds, above 0 and at most {MAX_TIMEOUT_SECONDS}."
            )


def _host_refusal(host: str) -> str | None:
    """Why a host an owner configured is refused, from its name alone (the call checks every address again)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        reason = address_refusal(str(literal))
        return f"{host} is {reason}; only public addresses can be called." if reason else None
    if settings.SSRF_ALLOW_LOOPBACK:
        return None
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES):
        return f"{host} names this machine or its local network; only public hosts can be called."
    return None


def _url_template_clean(template: Any, properties: dict) -> str:
    field = "config.urlTemplate"
    if not isinstance(template, str) or not template.strip():
        raise _invalid(field, "An HTTP tool needs a urlTemplate.")
    template = template.strip()
    if len(template) > MAX_URL_CHARS:
        raise _invalid(field, f"At most {MAX_URL_CHARS} characters.")
    sample = PLACEHOLDER.sub("x", template)
    if "{" in sample or "}" in sample:
        raise _invalid(field, "Placeholders are {name}, with a name of letters, digits, _ or -.")
    try:
        parts = urlsplit(sample)
        parts.port  # noqa: B018 - urlsplit parses the port only when asked; a bad one raises here
    except ValueError as exc:
        raise _invalid(field, "Not a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise _invalid(field, "Only http and https URLs can be called.")
    if parts.username or parts.password:
        raise _invalid(field, "Put credentials in a secret header, not in the URL.")
    raw = urlsplit(template)  # the template itself: its scheme and host must hold no placeholder
    if not parts.netloc or not raw.netloc:
        raise _invalid(field, "The URL has no host.")
    if PLACEHOLDER.search(raw.scheme) or PLACEHOLDER.search(raw.netloc):
        raise _invalid(field, "The scheme and host are fixed: placeholders may fill the path and query only.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _invalid(field, "The URL has no host.")
    refusal = _host_refusal(host)
    if refusal:
        raise _invalid(field, refusal)
    undeclared = [name for name in placeholders(template) if name not in properties]
    if undeclared:
        raise _invalid(
            field, f"Placeholders not declared in the parameters' properties: {', '.join(undeclared)}."
        )
    return template


def _allowed_hosts_clean(hosts: Any) -> list[str]:
    field = "config.allowedHosts"
    if not isinstance(hosts, list) or not hosts:
        raise _invalid(
            field, "A fetch_url tool needs the list of hosts it may read (example.com, docs.example.com)."
        )
    if len(hosts) > MAX_ALLOWED_HOSTS:
        raise _invalid(field, f"At most {MAX_ALLOWED_HOSTS} hosts.")
    cleaned = []
    for host in hosts:
        name = host.strip().lower().rstrip(".") if isinstance(host, str) else ""
        if not HOST.match(name) and not _is_ip(name):
            raise _invalid(field, f"{str(host)[:100]!r} is not a host name (no scheme, port or path).")
        refusal = _host_refusal(name)
        if refusal:
            raise _invalid(field, refusal)
        cleaned.append(name)
    return list(dict.fromkeys(cleaned))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _config_clean(kind: str, config: Any, parameters: dict) -> dict:
    if not isinstance(config, dict):
        raise _invalid("config", "The config is an object.")
    unknown = sorted(set(config) - CONFIG_KEYS[kind])
    if unknown:
        raise _invalid("config", f"Unknown config keys for a {kind} tool: {', '.join(unknown)[:200]}.")
    config = dict(config)
    _timeout_clean(config)
    if kind == Tool.Kind.FETCH_URL:
        config["allowedHosts"] = _allowed_hosts_clean(config.get("allowedHosts"))
    if kind == Tool.Kind.HTTP:
        method = config.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _invalid("config.method", "GET or POST.")
        config["method"] = method.upper()
        config["urlTemplate"] = _url_template_clean(
            config.get("urlTemplate"), parameters.get("properties", {})
        )
        if "headers" in config:
            config["headers"] = validate_headers(config["headers"], field="config.headers")
    return config


def _description_clean(description: Any) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        raise _invalid("description", f"A text of at most {MAX_DESCRIPTION_CHARS} characters.")
    return description.strip()


def _name_free(*, mind: Mind, name: str, exclude_id: str | None = None) -> None:
    taken = Tool.objects.filter(mind=mind, name=name)
    if exclude_id:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ToolNameTaken(
            f"The mind already has a tool named {name}.", details={"fields": {"name": ["Already taken."]}}
        )


def _shown(tool: Tool) -> dict:
    """What the audit log shows of a tool: never a secret value, only the secret headers' names."""
    return {
        "kind": tool.kind,
        "name": tool.name,
        "enabled": tool.enabled,
        "isPublic": tool.is_public,
        "config": tool.config,
        "secretHeaders": list(tool.secret_header_names),
    }


def _audit(tool: Tool, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=tool.workspace_id,
        entity="tool",
        entity_id=tool.id,
        entity_name=tool.name,
        action=action,
        changes=changes,
    )


def _save(tool: Tool) -> None:
    try:
        with transaction.atomic():
            tool.save()
    except IntegrityError as exc:  # two creations of one name at once: the constraint decides
        raise ToolNameTaken(
            f"The mind already has a tool named {tool.name}.",
            details={"fields": {"name": ["Already taken."]}},
        ) from exc


def _secret_headers_merge(tool: Tool, changes: dict[str, str | None]) -> None:
    """Sets the given secret headers, removes those given as None, keeps the others (their values cannot be read
    back, so a client changes one without sending the rest)."""
    try:
        current = headers_decrypt(tool.secret_headers_ciphertext)
    except SecretsUnreadable:
        current = {}  # sealed under an older SECRET_KEY: lost anyway, the owner is setting them again
    removed = {name.lower() for name, value in changes.items() if value is None}
    given = validate_headers({name: value for name, value in changes.items() if value is not None})
    lowered = {name.lower() for name in given} | removed
    merged = {name: value for name, value in current.items() if name.lower() not in lowered}
    merged.update(given)
    secret_headers_set(tool, validate_headers(merged))


@transaction.atomic
def tool_create(
    *,
    mind: Mind,
    kind: str,
    name: str | None = None,
    description: str = "",
    parameters: dict | None = None,
    enabled: bool = False,
    is_public: bool = False,
    config: dict | None = None,
    secret_headers: dict[str, str] | None = None,
) -> Tool:
    if kind not in CREATABLE_KINDS:
        raise _invalid(
            "kind",
            f"kind is one of {', '.join(CREATABLE_KINDS)}; MCP tools come from their server (POST /mcp-servers).",
        )
    Mind.objects.select_for_update().filter(pk=mind.pk).first()  # the count below, one creation at a time
    used = Tool.objects.filter(mind=mind).count()
    if used >= MAX_TOOLS_PER_MIND:
        raise LimitExceeded(
            f"A mind has at most {MAX_TOOLS_PER_MIND} tools.",
            details={"limit": MAX_TOOLS_PER_MIND, "used": used},
        )
    builtin = DEFAULTS.get(kind)
    if builtin:
        if parameters not in (None, {}, builtin["parameters"]):
            raise _invalid("parameters", f"The arguments of the built-in {kind} are fixed.")
        parameters = {}
        if secret_headers:
            raise _invalid("headers", f"The built-in {kind} sends no headers.")
    else:
        parameters = _parameters_clean(
            parameters if parameters is not None else {"type": "object", "properties": {}}
        )
    tool = Tool(
        workspace_id=mind.workspace_id,
        mind=mind,
        kind=kind,
        name=_name_clean(name if name is not None else (builtin["name"] if builtin else None)),
        description=_description_clean(description),
        parameters=parameters,
        enabled=bool(enabled),
        is_public=bool(is_public),
        config=_config_clean(kind, config or {}, parameters),
    )
    secret_headers_set(tool, validate_headers(secret_headers or {}))
    _name_free(mind=mind, name=tool.name)
    _save(tool)
    _audit(tool, "create", values_shown(_shown(tool)))
    return tool


@transaction.atomic
def tool_update(
    *, tool: Tool, changes: dict[str, Any], secret_headers: dict[str, str | None] | None = None
) -> Tool:
    """`changes` maps fields of TOOL_FIELDS to new values; `secret_headers` is merged ({name: None} removes one)."""
    unknown = set(changes) - set(TOOL_FIELDS)
    if unknown:
        raise ValueError(f"not tool fields: {sorted(unknown)}")
    tool = Tool.objects.select_for_update().get(pk=tool.pk)
    before = _shown(tool) | {"description": tool.description, "parameters": tool.parameters}
    if tool.kind == Tool.Kind.MCP:
        # A tool fetched and sent back keeps its server's fields unchanged: only a change of them is refused.
        changes = {f: v for f, v in changes.items() if f in MCP_FIELDS or v != getattr(tool, f)}
        fixed = sorted(set(changes) - MCP_FIELDS)
        if fixed or secret_headers:
            raise _invalid(
                (fixed or ["headers"])[0],
                "An MCP tool's name, arguments and headers come from its server; change the server instead.",
            )
    builtin = DEFAULTS.get(tool.kind)
    if "name" in changes:
        tool.name = _name_clean(changes["name"])
        _name_free(mind=tool.mind, name=tool.name, exclude_id=tool.id)
    if "description" in changes:
        tool.description = _description_clean(changes["description"])
    if "parameters" in changes:
        if builtin:
            if changes["parameters"] not in ({}, builtin["parameters"]):
                raise _invalid("parameters", f"The arguments of the built-in {tool.kind} are fixed.")
        else:
            tool.parameters = _parameters_clean(changes["parameters"])
    for field in ("enabled", "is_public"):
        if field in changes:
            setattr(tool, field, bool(changes[field]))
    if tool.kind != Tool.Kind.MCP and ("config" in changes or "parameters" in changes):
        # Checked again with the new parameters: a placeholder must stay declared.
        tool.config = _config_clean(tool.kind, changes.get("config", tool.config), tool.parameters)
    if secret_headers:
        if builtin:
            raise _invalid("headers", f"The built-in {tool.kind} sends no headers.")
        _secret_headers_merge(tool, secret_headers)
    _save(tool)
    diff = changes_between(
        before, _shown(tool) | {"description": tool.description, "parameters": tool.parameters}
    )
    if secret_headers:
        # A value changed under the same names still shows: the entry says which headers were set, never to what.
        diff["secretHeaders"] = {"from": before["secretHeaders"], "to": list(tool.secret_header_names)}
        diff["secretHeadersSet"] = sorted(name for name, value in secret_headers.items() if value is not None)
    if diff:
        _audit(tool, "update", diff)
    return tool


@transaction.atomic
def tool_delete(*, tool: Tool) -> str:
    if tool.kind == Tool.Kind.MCP:
        raise _invalid(
            "kind",
            "An MCP tool is listed from its server: switch it off (enabled: false) or remove the server.",
        )
    tool_id = tool.id
    _audit(tool, "delete")
    tool.delete()
    return tool_id
