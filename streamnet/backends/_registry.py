"""Which backends exist, whether each works here, and the process's default one.

A backend is known by its name (`BackendName`). Its class is imported when
first asked for, and `probe_backend` says whether it can be used here without
importing anything heavy or touching a device. The process default (what
``Context()`` uses) is the environment variable ``STREAMNET_BACKEND``, else
``"cpu"``; `use_backend` changes it for a while (tests). It is process-wide,
not per task, so that ranks run in helper threads see it, and under an MPI
launcher the variable reaches every rank.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal, cast, get_args

from streamnet._errors import BackendUnavailableError
from streamnet._typing import BackendName
from streamnet.backends._base import Backend

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "backend_for",
    "default_backend",
    "probe_backend",
    "use_backend",
]

ENVIRONMENT_VARIABLE = "STREAMNET_BACKEND"
"""The environment variable that sets the process's default backend."""

_NAMES: tuple[str, ...] = get_args(BackendName)
_CHOICES = (*_NAMES, "auto")

_lock = threading.Lock()
_chosen: list[tuple[object, BackendName | Literal["auto"]]] = []  # use_backend's, newest last


def _checked(name: object, where: str) -> BackendName | Literal["auto"]:
    if name not in _CHOICES:
        choices = ", ".join(repr(choice) for choice in _CHOICES)
        raise ValueError(f"{where}: the backend must be one of {choices}; got {name!r}")
    return cast("BackendName | Literal['auto']", name)


def _backend_class(name: BackendName) -> type[Backend]:
    """The class of the backend ``name`` (imported now if it was not yet).

    Raises
    ------
    ValueError
        No backend has that name.
    BackendUnavailableError
        This version of streamnet has no such backend class (the message says why).
    """
    if _checked(name, "backend") == "cpu":
        from streamnet.backends.cpu import CpuBackend

        return CpuBackend
    raise BackendUnavailableError(
        f"the `{name}` backend is not available here: {probe_backend(name)}"
    )


def probe_backend(name: BackendName) -> str | None:
    """None if the backend ``name`` can be used here, else why not.

    Cheap: it imports no backend library and touches no device.

    Raises
    ------
    ValueError
        No backend has that name.
    """
    if _checked(name, "probe_backend") == "cpu":
        return _backend_class("cpu").probe()
    if importlib.util.find_spec("pylibcudf") is None:
        return "pylibcudf is not installed (the gpu backend runs on RAPIDS)"
    return "this version of streamnet has no gpu backend yet (pylibcudf is installed); use 'cpu'"


def default_backend() -> BackendName | Literal["auto"]:
    """The backend a Context uses when none is named: the innermost `use_backend`, else
    the ``STREAMNET_BACKEND`` environment variable, else ``"cpu"``.

    Raises
    ------
    ValueError
        ``STREAMNET_BACKEND`` names no backend.
    """
    with _lock:
        if _chosen:
            return _chosen[-1][1]
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return "cpu"
    return _checked(value, f"the environment variable {ENVIRONMENT_VARIABLE}")


def use_backend(name: BackendName | Literal["auto"]) -> AbstractContextManager[None]:
    """Make ``name`` the process's default backend inside a ``with`` block (they nest).

    Raises
    ------
    ValueError
        No backend has that name (at once, before the block).
    """
    return _using((object(), _checked(name, "use_backend")))


@contextmanager
def _using(entry: tuple[object, BackendName | Literal["auto"]]) -> Iterator[None]:
    with _lock:
        _chosen.append(entry)
    try:
        yield
    finally:
        with _lock:
            _chosen.remove(entry)


def backend_for(name: BackendName | Literal["auto"] | None = None) -> Backend:
    """A new backend: ``name``'s, or with ``"auto"`` the GPU's where it works and the CPU's
    otherwise, or with None the process's default (`default_backend`).

    Raises
    ------
    ValueError
        No backend has that name.
    BackendUnavailableError
        The backend cannot be used here; the message says why (`probe_backend`).
    """
    chosen = default_backend() if name is None else _checked(name, "backend_for")
    if chosen == "auto":
        chosen = "gpu" if probe_backend("gpu") is None else "cpu"
    reason = probe_backend(chosen)
    if reason is not None:
        raise BackendUnavailableError(f"the `{chosen}` backend is not available here: {reason}")
    return _backend_class(chosen)()
