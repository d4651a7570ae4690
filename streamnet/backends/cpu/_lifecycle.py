"""The CPU backend's lifecycle: always usable, nothing to release, a fingerprint of its Polars."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamnet._typing import BackendName
from streamnet.backends._base import Backend

__all__ = ["CpuLifecycle"]


class CpuLifecycle(Backend):
    """Pyarrow and Polars are base dependencies: the CPU backend works wherever streamnet does."""

    name: ClassVar[BackendName] = "cpu"

    @classmethod
    def probe(cls) -> str | None:
        return None

    def close(self) -> None:
        """Nothing to release: Arrow's and Polars' memory pools are their own."""

    def fingerprint(self) -> str:
        return f"cpu polars={pl.__version__}"
