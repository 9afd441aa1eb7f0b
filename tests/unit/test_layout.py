"""The package's import graph stays acyclic: a module, and a subpackage, can be read after the
ones it imports, never together with them.

Every import counts, also one made only for type checking or inside a function: each is a
dependency a reader must follow.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

import thrad_events

ROOT = Path(thrad_events.__file__).parent
PACKAGE = ROOT.name

Graph = Mapping[str, set[str]]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path) -> Iterable[str]:
    """The dotted names `module` imports (for `from a import b`: a.b, which may be a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names)


@functools.cache
def module_graph() -> Graph:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for name in _imported(module, path):
            if name.split(".")[0] != PACKAGE:
                continue
            target = resolve(name)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def package_graph(graph: Graph) -> Graph:
    """Each subpackage (store, reports, http, ...) as one node; top-level modules stay apart."""

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    collapsed: dict[str, set[str]] = {}
    for module, targets in graph.items():
        node = collapsed.setdefault(top(module), set())
        node.update(top(target) for target in targets if top(target) != top(module))
    return collapsed


def cycles(graph: Graph) -> list[set[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle_and_only_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_sees_the_imports_that_make_the_layers() -> None:
    graph = module_graph()
    assert f"{PACKAGE}.store.base" in graph[f"{PACKAGE}.reports.sql"]
    assert f"{PACKAGE}.store.errors" in graph[f"{PACKAGE}.store.records"]
    assert graph[f"{PACKAGE}.store.base"] >= {
        f"{PACKAGE}.store.admin_sql",
        f"{PACKAGE}.store.records",
        f"{PACKAGE}.deadline",
    }


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(module_graph()) == []


def test_no_subpackage_imports_itself_through_others() -> None:
    graph = package_graph(module_graph())
    assert cycles(graph) == []


def test_the_store_imports_nothing_above_it() -> None:
    """store/ is below reports/, ingest/, http/ and auth/: it may import only what they all
    use (config, deadline, fields, instants, money, ...)."""
    above = {f"{PACKAGE}.{name}" for name in ("reports", "ingest", "http", "auth", "app", "cli")}
    graph = package_graph(module_graph())
    assert graph[f"{PACKAGE}.store"] & above == set()


def test_the_deadline_imports_nothing_of_the_package() -> None:
    assert module_graph()[f"{PACKAGE}.deadline"] == set()
