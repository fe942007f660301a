"""What the tool loop is offered (ToolSpec) and what a call gives back (ToolOutcome); tools/runtime.py re-exports
both. Here, not in runtime, so the modules of each kind (tools/mcp_client.py) can build outcomes without importing
the runtime that calls them."""

from dataclasses import dataclass, field

from knowledge.search import SearchHit


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
