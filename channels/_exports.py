"""Show public names under their package: tracebacks say `streamnet.Network`, not a private path.

A package may also export names that it imports only when first asked for
(`export_lazily`), and a module may name a dependency that is imported when
first used (`import_lazily`): optional and heavy parts (MPI, Ray, persistent
actors, pyarrow) then cost nothing to whoever imports the package without using them.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["export_lazily", "import_lazily", "publish"]


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


def export_lazily(
    namespace: MutableMapping[str, Any],
    package: str,
    sources: Mapping[str, str],
    *,
    otherwise: Callable[[str], Any] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Export each name of ``sources`` (name -> the module that defines or exports it)
    from ``package``, importing that module when the name is first asked for.

    Returns the module's ``__getattr__`` and ``__dir__``, for the package to set
    (``__getattr__, __dir__ = export_lazily(globals(), ...)``). A name, once
    loaded, is kept in ``namespace`` (the package's ``globals()``) and shown under
    ``package`` as :func:`publish` does. A name that is not in ``sources`` goes to
    ``otherwise`` (another module ``__getattr__``), else raises `AttributeError`.
    Type checkers see the names through imports under ``if TYPE_CHECKING:``.

    Examples
    --------
    >>> namespace = {"__name__": "pkg"}
    >>> getattr_, dir_ = export_lazily(namespace, "pkg", {"dedent": "textwrap"})
    >>> "dedent" in namespace, getattr_("dedent")("  x")
    (False, 'x')
    >>> "dedent" in namespace, "dedent" in dir_()
    (True, True)
    """

    where = namespace.get("__name__", package)

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            if otherwise is not None:
                return otherwise(name)
            raise AttributeError(f"module `{where}` has no attribute `{name}`")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        publish(namespace, package, [name])
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *sources})

    return __getattr__, __dir__


class _LazyModule(types.ModuleType):
    """Stands for a module until an attribute is first read: then imports it, and takes
    its names, so that later reads are plain lookups."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        if name.startswith("__") and name.endswith("__"):  # only what a caller asks for
            return getattr(module, name)
        self.__dict__.update(
            (key, value) for key, value in vars(module).items() if not key.startswith("__")
        )
        return getattr(module, name)  # also a submodule imported later (`pa.compute`)


def import_lazily(name: str) -> types.ModuleType:
    """A stand-in for the module ``name`` that imports it when one of its attributes is
    first read (``pa = import_lazily("pyarrow")``; ``pa.table(...)`` imports pyarrow).

    Not a module in ``sys.modules``: others importing ``name`` get the real one. For
    type checkers, import the module under ``if TYPE_CHECKING:`` and bind the
    stand-in otherwise.

    Examples
    --------
    >>> import sys
    >>> colorsys = import_lazily("colorsys")
    >>> colorsys.rgb_to_hsv(1.0, 0.0, 0.0)
    (0.0, 1.0, 1.0)
    >>> colorsys.rgb_to_hsv is sys.modules["colorsys"].rgb_to_hsv
    True
    """
    return _LazyModule(name)
