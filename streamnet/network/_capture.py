"""Capturing a job's network instead of running it (for ``streamnet graph job.py``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from streamnet._typing import PictureEngine

__all__ = ["CapturedNetwork", "NetworkCaptured", "capture_network", "capturing"]


class CapturedNetwork(Protocol):
    """What ``streamnet graph`` uses of a captured network (a `streamnet.Network` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def actors(self) -> Sequence[object]: ...
    def save_picture(
        self, path: str | os.PathLike[str], *, engine: PictureEngine = "auto"
    ) -> Path: ...

_capturing = False


class NetworkCaptured(Exception):
    """Raised by ``Network.run`` while capturing: carries the network, stops the job."""

    def __init__(self, network: CapturedNetwork) -> None:
        super().__init__(network.name)
        self.network = network


def capturing() -> bool:
    """Whether networks should be captured instead of run."""
    return _capturing


@contextmanager
def _capture() -> Iterator[None]:
    global _capturing
    _capturing = True
    try:
        yield
    finally:
        _capturing = False


def capture_network(
    script: str | os.PathLike[str], argv: list[str] | None = None
) -> CapturedNetwork:
    """Run ``script`` as ``__main__`` until it runs its first network, and return that network.

    Raises
    ------
    FileNotFoundError
        The script does not exist.
    RuntimeError
        The script finished without running any network.
    """
    import runpy  # on first use: imports stay light

    path = os.fspath(script)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"job script `{path}` does not exist")
    saved_argv = sys.argv
    sys.argv = [path, *(argv or [])]
    try:
        with _capture():
            runpy.run_path(path, run_name="__main__")
    except NetworkCaptured as captured:
        return captured.network
    finally:
        sys.argv = saved_argv
    raise RuntimeError(f"`{path}` finished without running a network (call network.run())")
