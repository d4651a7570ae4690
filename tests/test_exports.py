"""The public surface: every public name exported once, tracebacks show public modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGES = ["channels", "streamnet", "actors"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_unique_existing_names(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names)), "duplicate names in __all__"
    for name in names:
        assert hasattr(module, name), f"{package}.{name} is in __all__ but missing"
        assert not name.startswith("_")


@pytest.mark.parametrize("package", PACKAGES)
def test_public_classes_and_functions_show_public_module(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        obj = getattr(module, name)
        mod = getattr(obj, "__module__", None)
        if isinstance(obj, type) or callable(obj):
            assert mod is not None and not mod.split(".")[-1].startswith("_"), (
                f"{package}.{name} shows private module {mod}"
            )


def test_streamnet_reexports_the_channel_layer() -> None:
    import channels
    import streamnet

    for name in ("Channel", "Message", "ChannelClosed", "StreamnetError"):
        assert getattr(streamnet, name) is getattr(channels, name)


def test_every_error_derives_from_the_root() -> None:
    import channels
    import streamnet

    for module in (channels, streamnet):
        for name in module.__all__:
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and issubclass(obj, Exception)
                and not issubclass(obj, Warning)
            ):
                assert issubclass(obj, streamnet.StreamnetError), name


SUBPACKAGES = sorted(
    f"streamnet.{path.parent.name}"
    for path in Path(importlib.import_module("streamnet").__path__[0]).glob("*/__init__.py")
)


def test_the_runtime_has_its_subpackages() -> None:
    assert SUBPACKAGES == [
        "streamnet.backends",
        "streamnet.comm",
        "streamnet.engines",
        "streamnet.io",
        "streamnet.memory",
        "streamnet.network",
        "streamnet.observe",
        "streamnet.persistent",
        "streamnet.plans",
    ]


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_subpackages_export_names_that_streamnet_exports_too(subpackage: str) -> None:
    """A subpackage shows its public names as `streamnet.X`, which must then exist."""
    import streamnet

    module = importlib.import_module(subpackage)
    names = module.__all__
    assert names and len(names) == len(set(names)), "empty or duplicate __all__"
    for name in names:
        assert name in streamnet.__all__, f"{subpackage}.{name} is not in streamnet.__all__"
        assert getattr(module, name) is getattr(streamnet, name)
        shown = str(getattr(getattr(module, name), "__module__", ""))
        assert shown == "streamnet" or not shown.startswith("streamnet"), (
            f"{subpackage}.{name} shows module {shown}"
        )


def test_every_statistics_method_returns_a_frozen_record() -> None:
    """A stateful object's ``statistics()`` is a snapshot: a frozen dataclass."""
    import dataclasses
    import typing

    found = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            method = getattr(obj, "statistics", None) if isinstance(obj, type) else None
            if method is None:
                continue
            record = typing.get_type_hints(method)["return"]
            assert dataclasses.is_dataclass(record), f"{name}.statistics() returns {record}"
            # No public API tells whether a dataclass is frozen; its parameters do.
            params = getattr(record, "__dataclass_params__", None)
            assert params is not None and params.frozen, f"{record} is not frozen"
            found.append(name)
    assert {"ActorRuntime", "Channel", "Context", "Mailbox", "Network", "Supervisor"} <= set(found)


@pytest.mark.parametrize("package", ["streamnet", "streamnet.comm", "actors"])
def test_names_exported_lazily_are_imported_for_type_checkers(package: str) -> None:
    """A name a package imports on first use (its ``_LAZY``) is imported under ``if
    TYPE_CHECKING:`` too, from the same module, so that type checkers see it."""
    import ast

    module = importlib.import_module(package)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    typed = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                typed.update({alias.name: statement.module for alias in statement.names})
    lazy = module._LAZY  # noqa: SLF001 - the table this test checks
    assert typed == lazy
    assert set(lazy) <= set(module.__all__) and set(lazy) <= set(dir(module))
