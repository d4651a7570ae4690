"""Show public names under their package: tracebacks say `streamnet.Network`, not a private path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, MutableMapping
from typing import Any

__all__ = ["publish"]


def publish(
    namespace: MutableMapping[str, Any],
    package: str,
    names: Iterable[str],
    *,
    within: str | None = None,
) -> None:
    """Set ``__module__`` to ``package`` for each of ``names`` defined in a private module
    inside it (``streamnet._context``, ``streamnet.network._network``), or inside
    ``within`` (``channels.lowlevel`` shows names of ``channels._parking_lot``)."""
    root = package if within is None else within
    for name in names:
        obj = namespace[name]
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith(f"{root}."):
            continue
        if any(part.startswith("_") for part in module[len(root) + 1 :].split(".")):
            with contextlib.suppress(AttributeError, TypeError):  # typing aliases refuse
                obj.__module__ = package
