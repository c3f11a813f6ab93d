"""The import graph: no cycles, and no arrow from a lower layer (an upstream stage) to a higher one.

Every ``import`` counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import
hides a cycle from the interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom first. A module may import its own layer and those below, never one above.
LAYERS: list[tuple[str, ...]] = [
    (
        "sage_platform",
        "sage_platform._faults",
        "sage_platform._settings",
        "sage_platform.hashing",
        "sage_platform.filters",
        "sage_platform.text_search",
        "sage_platform.package_files",
        "sage_platform.config",
        "sage_platform.request_guard",
        "sage_platform.dependencies",
    ),  # fmt: skip
    ("sage_platform.tokenization", "sage_platform.db", "sage_platform.llm_clients"),
    ("sage_platform.identity", "sage_platform.ingest", "sage_platform.bearer_auth"),
    ("sage_platform.chunking",),
    ("sage_platform.embeddings",),
    ("sage_platform.index",),
    ("sage_platform.retrieval",),
    ("sage_platform.generation",),
    ("sage_platform.evaluation", "sage_platform.quality"),
    (
        "sage_platform.platform",
        "sage_platform.pipeline",
        "sage_platform.datasets",
        "sage_platform.memory_store",
        "sage_platform.fingerprints",
    ),  # fmt: skip
    (
        "sage_platform.agent",
        "sage_platform.dataflow",
        "sage_platform.memory_server",
        "sage_platform.ops",
        "sage_platform.network",
        "sage_platform.workspace",
    ),  # fmt: skip
    ("sage_platform.server",),
    (
        "sage_platform.resources",
        "sage_platform.assets",
        "sage_platform.jobs",
        "sage_platform.sensors",
        "sage_platform.definitions",
    ),  # fmt: skip
    (
        "sage_platform.runtime",
        "sage_platform.kept_instance",
        "sage_platform.doctor",
        "sage_platform.worker",
        "sage_platform.worker.protocol",
        "sage_platform.worker.client",
    ),  # fmt: skip
    ("sage_platform.worker.server",),
    ("sage_platform.cli",),
]
# The Dagster layer lives in top-level folders, installed as sage_platform.assets/.jobs/.sensors.
SOURCES = {
    "sage_platform": ROOT / "sage_platform",
    **{f"sage_platform.{d}": ROOT / d for d in ("assets", "jobs", "sensors")},
}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[0] in ("assets", "jobs", "sensors", "migrations") and package == "sage_platform":
                continue  # links to the top-level folders, or Alembic's scripts (run by Alembic, not imported)
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from package import submodule` imports the submodule; `from module import value`, the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a third-party module, or a name inside one of ours
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: set(imports_of(name, path, known)) - {name} for name, path in found.items()}


def layer_of(module: str) -> int:
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "sage_platform" and module.startswith(prefix + "."))
            if covers and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def test_every_module_has_a_layer() -> None:
    assert [m for m in graph() if layer_of(m) < 0] == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(source)
    ]
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    assert find_cycles(graph()) == []


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


@pytest.mark.parametrize(
    ("edges", "expected"),
    [({"a": {"b"}, "b": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": {"c"}, "c": set()}, [])],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert find_cycles(edges) == expected
