"""The tools one chat turn may call, as the tool loop (conversations/tool_loop.py) sees them.

The loop asks `toolbox_for(...)` once per turn, offers `toolbox.specs` to the model (OpenAI function calling), and
runs each call with `toolbox.call(...)`, which never raises for a tool's own failure: an error comes back as an
outcome the model reads (`is_error`). Every call is audited with its duration.

Which tools a turn has:
- the candidates are the mind's own Tool rows (an MCP tool only while its server is enabled); on the public page
  and the widget (`public=True`) only those both enabled and marked public;
- a candidate is on when it is enabled, unless the chat's `checked` ([{id, checked}]) says otherwise: a private
  chat (an API key of the workspace) may switch any of the mind's tools on or off for itself; a public chat may
  only switch its tools off;
- ids in `checked` that are not candidates (unknown, another mind's, another workspace's, not public) are ignored:
  a chat client keeps its own list of switches and may send stale ones, and nothing outside the candidates can
  ever be switched on.

ToolSpec and ToolOutcome live in tools/outcomes.py (re-exported here): the kinds' own modules (tools/mcp_client.py)
build outcomes without importing this module, which calls them.
"""

import functools
import json
import logging
import time

import jsonschema
from django.conf import settings

from accounts.audit import audit_record
from knowledge.search import KnowledgeScope
from tools import builtin
from tools.errors import ToolFailure
from tools.http_tools import call_http
from tools.models import Tool
from tools.outcomes import ToolOutcome, ToolSpec
from tools.results import cut

logger = logging.getLogger(__name__)

MAX_ARGUMENT_CHARS = 100_000

__all__ = ["ToolOutcome", "ToolSpec", "Toolbox", "spec_of", "tool_timeout", "toolbox_for"]


def spec_of(tool: Tool) -> ToolSpec:
    """What the model is offered: built-ins keep their fixed argument schema; a description left empty gets the
    built-in's default."""
    default = builtin.DEFAULTS.get(tool.kind)
    parameters = (
        default["parameters"] if default else (tool.parameters or {"type": "object", "properties": {}})
    )
    description = tool.description or (default["description"] if default else "")
    return ToolSpec(
        id=tool.id, name=tool.name, description=description, parameters=parameters, kind=tool.kind
    )


def tool_timeout(tool: Tool) -> float:
    """The tool's own limit (config.timeoutSeconds), never above TOOL_CALL_TIMEOUT_SECONDS."""
    ceiling = float(settings.TOOL_CALL_TIMEOUT_SECONDS)
    own = (tool.config or {}).get("timeoutSeconds")
    if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0:
        return min(float(own), ceiling)
    return ceiling


class Toolbox:
    specs: list[ToolSpec]

    def __init__(self, tools: list[Tool], *, mind, conversation_id: str, scope: KnowledgeScope):
        self._tools = {tool.name: tool for tool in tools}
        self.specs = [spec_of(tool) for tool in tools]
        self._specs = {spec.name: spec for spec in self.specs}
        self.mind = mind
        self.conversation_id = conversation_id
        self.scope = scope

    def __bool__(self) -> bool:
        return bool(self.specs)

    def call(self, name: str, arguments: str, *, timeout: float) -> ToolOutcome:
        """Runs one call of the model: `arguments` is the JSON string the model wrote, `timeout` the seconds left
        for it (the loop passes the turn's remaining budget; the tool's own limit applies too). Never raises for
        the tool's failure, which comes back as an outcome with `is_error`."""
        started = time.monotonic()
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolOutcome(
                f"There is no tool named {name[:64]!r}. The tools are: {known}.", is_error=True
            )
        names: list[str] = []
        reason = ""
        try:
            parsed = _parse(arguments)
            names = sorted(str(key)[:64] for key in parsed)[:50]
            _validate(self._specs[name], parsed, strict=tool.kind != Tool.Kind.MCP)
            outcome = self._run(tool, parsed, timeout=max(0.1, min(timeout, tool_timeout(tool))))
        except ToolFailure as failure:
            reason = failure.reason
            outcome = ToolOutcome(failure.message, is_error=True)
        except Exception as exc:  # a tool's failure is the model's to read, never a 500
            # The class only: a message could carry a URL or a header the tool was given.
            logger.warning("tool %s (%s) failed: %s", tool.id, tool.kind, exc.__class__.__name__)
            reason = "internal_error"
            outcome = ToolOutcome(f"The tool failed ({exc.__class__.__name__}).", is_error=True)
        if outcome.is_error and not reason:
            reason = "failed"
        outcome.content = cut(outcome.content, settings.TOOL_RESULT_MAX_CHARS)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        changes = {
            "durationMs": outcome.duration_ms,
            "ok": not outcome.is_error,
            "conversationId": self.conversation_id,
            "kind": tool.kind,
            "arguments": names,
        }
        if reason:
            changes["error"] = reason
        audit_record(
            workspace=tool.workspace_id,
            entity="tool",
            entity_id=tool.id,
            entity_name=tool.name,
            action="call",
            changes=changes,
        )
        return outcome

    def _run(self, tool: Tool, arguments: dict, *, timeout: float) -> ToolOutcome:
        if tool.kind == Tool.Kind.SEARCH_KNOWLEDGE:
            content, hits = builtin.search_knowledge(arguments, scope=self.scope, timeout=timeout)
            return ToolOutcome(content, hits=hits)
        if tool.kind == Tool.Kind.FETCH_URL:
            return ToolOutcome(builtin.fetch_url(arguments, tool=tool, timeout=timeout))
        if tool.kind == Tool.Kind.HTTP:
            return ToolOutcome(call_http(tool, arguments, timeout=timeout))
        if tool.kind == Tool.Kind.MCP:
            # Imported on first use: the MCP SDK takes seconds to import, which processes that never call one skip.
            from tools.mcp_client import call_tool

            return call_tool(tool, arguments, conversation_id=self.conversation_id, timeout=timeout)
        raise ToolFailure(f"Tools of kind {tool.kind} cannot be called.", reason="unavailable")


def _parse(arguments: str) -> dict:
    if arguments is None or not str(arguments).strip():
        return {}  # a function without parameters: models send "" as often as "{}"
    if len(arguments) > MAX_ARGUMENT_CHARS:
        raise ToolFailure("The arguments are too long.", reason="invalid_arguments")
    try:
        parsed = json.loads(arguments)
    except (TypeError, ValueError) as exc:
        raise ToolFailure("The arguments are not valid JSON.", reason="invalid_json") from exc
    if not isinstance(parsed, dict):
        raise ToolFailure("The arguments must be a JSON object.", reason="invalid_arguments")
    return parsed


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str):
    """The checked validator of a schema, kept: checking a schema against its meta-schema costs more than
    validating the arguments, and a tool's schema changes only when its owner edits it (a new key here)."""
    schema = json.loads(schema_json)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate(spec: ToolSpec, arguments: dict, *, strict: bool) -> None:
    """Against the tool's JSON Schema. An MCP server's schema is its own (and the server checks again): one that
    is not valid JSON Schema is skipped there, while the owner's schema of an HTTP tool must be valid."""
    try:
        validator = _validator(json.dumps(spec.parameters, sort_keys=True))
    except jsonschema.SchemaError as exc:
        if strict:
            raise ToolFailure(
                "The tool's argument schema is not valid JSON Schema.", reason="misconfigured"
            ) from exc
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise ToolFailure(
            "The arguments do not match the tool's schema"
            + (f" at {where}" if where else "")
            + f": {error.message[:300]}",
            reason="invalid_arguments",
        )


def toolbox_for(
    mind,
    *,
    conversation_id: str,
    scope: KnowledgeScope,
    public: bool,
    checked: list[dict] | None = None,
) -> Toolbox:
    """The enabled tools of `mind` (only those marked public when `public`), switched on or off for this chat by
    `checked` ([{id, checked}]; tools it does not name keep their setting, ids that are not the mind's candidates
    are ignored)."""
    candidates = Tool.objects.filter(mind_id=mind.id, workspace_id=mind.workspace_id).exclude(
        kind=Tool.Kind.MCP, mcp_server__enabled=False
    )
    if public:
        candidates = candidates.filter(enabled=True, is_public=True)
    switches: dict[str, bool] = {}
    for item in checked or []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("checked"), bool)
        ):
            switches[item["id"]] = item["checked"]
    chosen = []
    for tool in candidates.select_related("mcp_server"):
        on = switches.get(tool.id, tool.enabled)
        if public:
            on = on and tool.enabled
        if on:
            chosen.append(tool)
    return Toolbox(chosen, mind=mind, conversation_id=conversation_id, scope=scope)
