"""The package's shape stays one a newcomer can change: no import cycle, no class over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import panel_langchain_steps

PACKAGE = Path(panel_langchain_steps.__file__).parent
MODULES = {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def imports(tree: ast.Module) -> set[str]:
    """The package's modules a module imports when it runs, at its top or inside a function (not
    for type checking only)."""
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in typing_only:
            found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
    return found & MODULES.keys()


def test_no_import_cycle():
    graph = {name: imports(tree) for name, tree in MODULES.items()}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for other in graph[name]:
            if other in path:
                cycles.append(" -> ".join([*path[path.index(other) :], other]))
            elif other not in done:
                done.add(other)
                visit(other, [*path, other])

    for name in graph:
        done = {name}
        visit(name, [name])
    assert cycles == []


def test_no_class_over_400_lines():
    sizes = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    assert {name: size for name, size in sizes.items() if size > 400} == {}
    assert max(sizes.values()) > 100  # the guard reads the classes
