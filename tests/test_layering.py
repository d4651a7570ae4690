"""Imports point one way only (channels <- streamnet <- actors), never in a circle, and
reach another package through its public names only."""

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


# ------------------------------------------------------------------------ circles
def _modules() -> dict[str, Path]:
    """Every module of the three packages by its dotted name (a package by its own)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _import_graph() -> dict[str, set[str]]:
    """Which modules the import of each module imports: what its module level imports
    (also under ``if TYPE_CHECKING:``, where type dependencies show), not what its
    functions import when called.

    Importing ``streamnet.comm._mpi`` from outside ``streamnet.comm`` first runs the
    subpackage's ``__init__``, which imports the rest of it: an edge too.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _visit(_tree(path), inside_functions=False):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's package
                    package = module if is_package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = ".".join(p for p in (package, node.module) if p)
                else:
                    base = node.module or ""
                for alias in node.names:  # a submodule, or a name its package defines
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        edges = set()
        for target in targets & modules.keys():
            edges.add(target)
            mine = set(_ancestors(module)) | ({module} if is_package else set())
            edges.update(p for p in _ancestors(target) if p not in mine and p in modules)
        edges.discard(module)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                connect(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    cycles = []
    for group in groups:
        members, start = set(group), min(group)
        came: dict[str, str] = {}  # breadth first from the start back to it: a shortest cycle
        frontier = [start]
        while start not in came:
            following = []
            for module in frontier:
                for other in sorted(graph[module] & members):
                    if other not in came:
                        came[other] = module
                        following.append(other)
            frontier = following
        path, module = [start], came[start]
        while module != start:
            path.append(module)
            module = came[module]
        cycles.append([start, *reversed(path[1:]), start])
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    cycles = _cycles(_import_graph())
    assert cycles == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_import_graph_sees_subpackage_inits_and_type_checking_imports() -> None:
    graph = _import_graph()
    # The Context imports the communicator module, so the whole `comm` subpackage.
    assert {"streamnet.comm._communicator", "streamnet.comm"} <= graph["streamnet._context"]
    # A picture reads a network's description: no edge back to the network's module.
    assert "streamnet.network._network" not in graph["streamnet.observe._picture"]
    assert "streamnet.observe._statistics" in graph["streamnet.observe._timeline"]  # TYPE_CHECKING
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# ------------------------------------------------------------------------ private names
def _private_imports(path: Path, package: str) -> Iterator[str]:
    """Imports in ``path`` (a module of ``package``) of a private module or a private name
    of another of the three packages, as ``line: what``."""
    for node in _visit(_tree(path), inside_functions=True):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            top, *inner = module.split(".")
            if top == package or top not in PACKAGES:
                continue
            private = [part for part in inner if part.startswith("_")]
            private += [name for name in names if name.startswith("_")]
            if private:
                yield f"{node.lineno}: {module} ({', '.join(private)})"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_what_another_keeps_private(package: str) -> None:
    """`channels`, `streamnet` and `actors` reach each other through public names only
    (`channels.lowlevel`, `streamnet.lowlevel` for what the layer above builds on); inside
    one package, its modules import each other's private modules freely."""
    bad = [
        f"{path.relative_to(ROOT)}:{found}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for found in _private_imports(path, package)
    ]
    assert bad == [], "private imports across packages:\n" + "\n".join(bad)


def test_private_imports_are_told_from_public_ones(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import channels._channel\n"
        "from channels import Channel\n"
        "from channels.lowlevel import ParkingLot\n"
        "from streamnet.comm import _wire\n"
        "from . import _sibling\n"
        "def later():\n"
        "    from streamnet.network._driver import NetworkDriver\n"
    )
    assert list(_private_imports(module, "actors")) == [
        "1: channels._channel (_channel)",
        "4: streamnet.comm (_wire)",
        "7: streamnet.network._driver (_driver)",
    ]
    assert list(_private_imports(module, "channels")) == [
        "4: streamnet.comm (_wire)",
        "7: streamnet.network._driver (_driver)",
    ]


PYARROW_IN_ACTORS: set[str] = set()
"""The modules of `actors` that may still import pyarrow; the others reach tables through
the backend and the host boundary, and name host types with `streamnet`'s aliases."""


def test_the_actors_import_no_pyarrow_but_the_allowed_modules() -> None:
    """Imports under ``if TYPE_CHECKING:`` and inside functions count too."""
    found = set()
    for path in sorted((ROOT / "actors").rglob("*.py")):
        if any(name == "pyarrow" for _, name in _imports(path)):
            found.add(str(path.relative_to(ROOT)))
    assert found == PYARROW_IN_ACTORS
