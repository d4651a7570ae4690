"""Show public names under their package: tracebacks say `streamnet.Network`, not a private path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, MutableMapping
from typing import Any

__all__ = ["publish"]


def publish(namespace: MutableMapping[str, Any], package: str, names: Iterable[str]) -> None:
    """Set ``__module__`` to ``package`` for each of ``names`` defined in its private modules."""
    for name in names:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(f"{package}._"):
            with contextlib.suppress(AttributeError, TypeError):  # typing aliases refuse
                obj.__module__ = package
