"""Imports point one way only: channels <- streamnet <- actors."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("channels", "streamnet", "actors")
FORBIDDEN = {
    "channels": {"streamnet", "actors"},
    "streamnet": {"actors"},
    "actors": set(),
}
LOADED_BY_NAME = {("streamnet/_cli.py", "actors.demo")}
"""The one module of the library that the runtime loads, by name, when ``streamnet demo`` runs."""


def _visit(node: ast.AST, *, inside_functions: bool) -> Iterator[ast.AST]:
    """``node`` and what it holds; without ``inside_functions``, not the bodies of
    functions (what runs when the module is imported, `if TYPE_CHECKING:` included)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if inside_functions or not isinstance(
            child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        ):
            yield from _visit(child, inside_functions=inside_functions)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Top-level package names imported anywhere in a file, with line numbers."""
    found: list[tuple[int, str]] = []
    for node in _visit(_tree(path), inside_functions=True):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for lineno, name in _imports(path):  # lazy imports inside functions count too
            if name in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    assert bad == []


def test_the_runtime_loads_the_actor_library_only_for_the_demo() -> None:
    """No import statement reaches `actors` from `streamnet` (above); one module name
    does, loaded with importlib by the command line."""
    named, loaders = set(), set()
    for path in sorted((ROOT / "streamnet").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in _visit(_tree(path), inside_functions=True):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"actors(\.\w+)+", node.value):  # a module of the library
                    named.add((where, node.value))
            elif isinstance(node, ast.Call):
                function = node.func
                called = function.attr if isinstance(function, ast.Attribute) else None
                if isinstance(function, ast.Name):
                    called = function.id
                if called in ("import_module", "__import__"):
                    loaders.add(where)
    assert named == LOADED_BY_NAME
    assert loaders == {where for where, _ in LOADED_BY_NAME}
