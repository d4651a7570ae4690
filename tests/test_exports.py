"""The public surface: every public name exported once, tracebacks show public modules."""

from __future__ import annotations

import importlib

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
