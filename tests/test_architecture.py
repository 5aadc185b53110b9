"""The import rules of docs/architecture.md, checked on the source: layers point down, nothing loops.

Only module-level imports count (an import inside ``if TYPE_CHECKING:`` or a function is a type or a
deliberate late load, and is listed in the architecture page where it matters).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_provider_carol"
NAME = "airflow_provider_carol"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Our modules that ``path`` imports when it is loaded (``from x import y`` counts ``x`` and ``x.y``
    when ``x.y`` is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(NAME))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(NAME):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in top_level_imports(path) if m in modules} - {name} for name, path in modules.items()
    }


GRAPH = graph()


def imports_of(prefix: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in GRAPH.items() if m == prefix or m.startswith(prefix + ".")}


def test_the_graph_is_read():
    assert len(GRAPH) > 100
    assert f"{NAME}.hooks.core.transport" in GRAPH[f"{NAME}.hooks.core.sync_driver"]


def test_no_module_imports_itself_back():
    """No import cycle at load time (Tarjan's strongly connected components of size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in GRAPH[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, cycles


@pytest.mark.parametrize(
    ("layer", "must_not_import"),
    [
        (f"{NAME}.exceptions", (NAME,)),
        (f"{NAME}.compat", (NAME,)),
        (
            f"{NAME}.hooks.core",
            tuple(
                f"{NAME}.{m}"
                for m in (
                    "hooks.staging",
                    "hooks.tasks",
                    "hooks.bigquery",
                    "hooks.apps",
                    "hooks.queries",
                    "hooks.listings",
                    "hooks.carol",
                    "hooks.carol_async",
                    "operators",
                    "sensors",
                    "triggers",
                    "log",
                    "check",
                )
            ),
        ),
        (
            f"{NAME}.hooks",
            tuple(f"{NAME}.{m}" for m in ("operators", "sensors", "triggers", "log", "links", "check")),
        ),
        (f"{NAME}.sandbox", (f"{NAME}.hooks", f"{NAME}.operators", f"{NAME}.triggers", f"{NAME}.log")),
        (
            f"{NAME}.hooks.tasks",
            tuple(f"{NAME}.hooks.{m}" for m in ("staging", "bigquery", "apps", "queries")),
        ),
        (f"{NAME}.triggers", (f"{NAME}.operators", f"{NAME}.sensors")),
    ],
)
def test_layers_point_down(layer: str, must_not_import: tuple[str, ...]) -> None:
    wrong = {
        module: sorted(dep for dep in deps if dep.startswith(must_not_import) and not dep.startswith(layer))
        for module, deps in imports_of(layer).items()
    }
    wrong = {module: deps for module, deps in wrong.items() if deps}
    assert imports_of(layer), layer
    assert not wrong, wrong


def test_no_module_is_over_400_lines():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
