"""Imports point one way only: channels <- streamnet <- actors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "channels": {"streamnet", "actors"},
    "streamnet": {"actors"},
    "actors": set(),
}


def _imports(path: Path, *, inside_functions: bool) -> list[tuple[int, str]]:
    """Top-level package names imported by a file, with line numbers.

    Without ``inside_functions``, only imports that run when the module is
    imported count (a lazy import inside a function is allowed).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        for child in ast.iter_child_nodes(node):
            if inside_functions or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        # channels may never import upward; streamnet only lazily (inside functions).
        imports = _imports(path, inside_functions=package == "channels")
        for lineno, name in imports:
            if name in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    assert bad == []
