"""The import graph has no circle: no module reaches itself through imports, including imports inside
functions. The layers between apps are checked by `make lint` (lint-imports; docs/architecture.md)."""

import grimp

from config.settings import BASE_DIR

ROOT_PACKAGES = (
    "accounts",
    "apikeys",
    "minds",
    "knowledge",
    "tools",
    "conversations",
    "insights",
    "public",
    "integrations",
    "config",
)


def import_cycles(graph) -> list[list[str]]:
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, path)
        path.pop()
        state[module] = "done"

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [])
    return cycles


def test_no_module_imports_itself_through_others(monkeypatch):
    monkeypatch.syspath_prepend(str(BASE_DIR))
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)
    assert import_cycles(graph) == []
