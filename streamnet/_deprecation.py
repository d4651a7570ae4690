"""Deprecations: the one place that warns when an old name or an old call shape is used.

A renamed name, or an option that became keyword-only, keeps working for one
release and warns `DeprecationWarning` naming what replaces it; the release after,
it is gone. The warning points at the caller's line, outside streamnet.

- `RENAMED` lists every renamed public name; ``renamed_names(module)`` gives a
  module ``__getattr__`` that serves ``module.Old`` as ``module.New`` and warns (the
  old names leave ``__all__``);
- ``keyword_only("timeout", ...)`` lets a parameter that became keyword-only still
  be passed by position, and warns; ``keyword_only_fields`` does it for the
  keyword-only fields of a dataclass.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

__all__ = ["RENAMED", "deprecated", "keyword_only", "keyword_only_fields", "renamed_names"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

SINCE = "0.2"
"""The release that deprecated what this module warns about; removed in the next one."""

_OURS = tuple(
    str(Path(__file__).resolve().parents[1] / package) for package in ("channels", "streamnet")
)


def _stacklevel() -> int:
    """How far up the stack (from the caller's frame, 1) the first frame outside
    channels and streamnet is."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_OURS):
        frame = frame.f_back
        level += 1
    return level


def deprecated(message: str) -> None:
    """Warn `DeprecationWarning` with ``message`` (what is deprecated and what replaces
    it), at the caller's line outside streamnet."""
    warnings.warn(
        f"{message} (deprecated in streamnet {SINCE}; removed in the next release)",
        DeprecationWarning,
        stacklevel=_stacklevel(),
    )


RENAMED: Mapping[str, Mapping[str, str]] = {
    "streamnet": {
        "ActorContext": "PersistentActorContext",
        "ActorLifecycle": "PersistentActorState",
        "is_message": "is_persistent_message",
        "message": "persistent_message",
    },
    "actors": {
        "ChunkKind": "TableKind",
        "CollectInto": "TableKind",
    },
}
"""Every renamed public name, by package, old -> new. The package, and its subpackage
that exports the new name, serve the old one (with a warning) through ``renamed_names``."""


def renamed_names(module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each old name its package has in `RENAMED`, as the
    new name, with a warning (where the module has the new name).

    Examples
    --------
    >>> import streamnet
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = streamnet.ActorContext
    >>> old is streamnet.PersistentActorContext, str(caught[0].message).split(" (deprecated")[0]
    (True, '`streamnet.ActorContext` is deprecated; use `streamnet.PersistentActorContext`')
    """

    renamed = RENAMED.get(module.partition(".")[0], {})

    def __getattr__(name: str) -> Any:
        new = renamed.get(name)
        namespace = sys.modules[module]
        if new is None or not hasattr(namespace, new):  # the new name may load lazily
            raise AttributeError(f"module `{module}` has no attribute `{name}`")
        deprecated(f"`{module}.{name}` is deprecated; use `{module}.{new}`")
        return getattr(namespace, new)

    return __getattr__


def keyword_only(*names: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let ``names``, now keyword-only parameters of the decorated function, still be
    passed by position (in that order, after its positional parameters), with a warning.

    Examples
    --------
    >>> import warnings
    >>> @keyword_only("timeout")
    ... def wait(what, *, timeout=None):
    ...     return what, timeout
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     wait("x", 5)
    ('x', 5)
    >>> str(caught[0].message).split(" (deprecated")[0]
    '`wait`: pass `timeout` by keyword (`timeout=...`), not by position'
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        parameters = inspect.signature(fn).parameters.values()
        keyword = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
        missing = [n for n in names if n not in keyword]
        if missing:
            raise TypeError(f"keyword_only: `{fn.__qualname__}` has no keyword-only {missing}")
        positional = sum(
            p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for p in parameters
        )
        label = fn.__qualname__.removesuffix(".__init__")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> R:
            if len(args) > positional:
                extra = args[positional:]
                if len(extra) > len(names):
                    raise TypeError(
                        f"`{label}` takes {positional} positional arguments "
                        f"(and {', '.join(f'`{n}`' for n in names)} by keyword), "
                        f"got {len(args)}"
                    )
                passed = names[: len(extra)]
                shown = ", ".join(f"`{n}`" for n in passed)
                forms = ", ".join(f"`{n}=...`" for n in passed)
                deprecated(f"`{label}`: pass {shown} by keyword ({forms}), not by position")
                for name, value in zip(passed, extra, strict=True):
                    if name in kwargs:
                        raise TypeError(f"`{label}` got multiple values for `{name}`")
                    kwargs[name] = value
                args = args[:positional]
            return fn(*args, **kwargs)

        return cast("Callable[P, R]", wrapper)

    return decorate


def keyword_only_fields(cls: type[T]) -> type[T]:
    """Class decorator, above ``@dataclass``: the keyword-only fields (after ``KW_ONLY``)
    may still be passed by position, in their order, with a warning."""
    init = cls.__init__
    names = [
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    cls.__init__ = keyword_only(*names)(init)  # type: ignore[method-assign]
    return cls
