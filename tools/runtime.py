"""The tools one chat turn may call, as the tool loop (conversations/tool_loop.py) sees them.

The loop asks `toolbox_for(...)` once per turn, offers `toolbox.specs` to the model (OpenAI function calling), and
runs each call with `toolbox.call(...)`, which never raises for a tool's own failure: an error comes back as an
outcome the model reads (`is_error`). Every call is audited with its duration.
"""

from dataclasses import dataclass, field

from knowledge.search import KnowledgeScope, SearchHit


@dataclass(frozen=True)
class ToolSpec:
    id: str  # the Tool row's id (what `tools: [{id, checked}]` names)
    name: str  # the function name the model calls
    description: str
    parameters: dict  # JSON Schema
    kind: str  # Tool.Kind

    def as_openai(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolOutcome:
    content: str  # what the model reads (already cut to a bounded size)
    is_error: bool = False
    # Passages a knowledge search found: the loop numbers them after the turn's earlier passages, shows them to
    # the model as <passage> elements, and lets the answer cite them.
    hits: list[SearchHit] = field(default_factory=list)
    duration_ms: int = 0


class Toolbox:
    specs: list[ToolSpec]

    def call(self, name: str, arguments: str, *, timeout: float) -> ToolOutcome:
        raise NotImplementedError  # tools/runtime.py is being built (issue 14)


def toolbox_for(
    mind,
    *,
    conversation_id: str,
    scope: KnowledgeScope,
    public: bool,
    checked: list[dict] | None = None,
) -> Toolbox:
    """The enabled tools of `mind` (only those marked public when `public`), switched on or off for this chat by
    `checked` ([{id, checked}]; tools it does not name keep their setting)."""
    raise NotImplementedError  # tools/runtime.py is being built (issue 14)
