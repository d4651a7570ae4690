"""The CPU backend's memory tiers: a chunk is in host memory or in an Arrow IPC file on disk."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from streamnet._errors import SpillError
from streamnet._schema import info_of_schema
from streamnet._table_chunk import TableChunk
from streamnet._typing import Tier
from streamnet.backends._base import Backend
from streamnet.backends.cpu._table import cpu_table
from streamnet.memory._spill import SpillDirectory

__all__ = ["CpuTiers"]


class CpuTiers(Backend):
    """Spilling to Arrow IPC files and reading them back."""

    tiers: ClassVar[tuple[Tier, ...]] = ("host", "disk")

    def residence(self, chunk: TableChunk) -> Tier:
        # No `_own` here: a chunk's repr asks for its residence, and `_own`'s errors show it.
        return "disk" if cpu_table(chunk, self).path is not None else "host"

    def nbytes_in(self, chunk: TableChunk, tier: Tier) -> int:
        native = cpu_table(self._own(chunk, "nbytes_in"), self)
        self._check_tier(tier, "nbytes_in")
        if native.path is not None:
            return native.disk_bytes if tier == "disk" else 0
        return chunk.nbytes if tier == "host" else 0

    def spill(self, chunk: TableChunk, *, to: Tier = "disk", directory: SpillDirectory | Path) -> int:
        chunk = self._own(chunk, "spill")
        self._check_tier(to, "spill")
        native = cpu_table(chunk, self)
        if to == "host":
            return 0
        schema = chunk.schema  # known before the data goes
        with native.lock:
            if native.path is not None:
                return 0
            table = native.table
            if table is None:
                assert native.frame is not None
                table = native.exported(info_of_schema(schema))
                native.canonical = True
            if isinstance(directory, SpillDirectory):
                path = directory.new_file(chunk.nbytes)
            else:
                folder = Path(directory)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"streamnet-spill-{uuid.uuid4().hex}.arrow"
            try:
                with (
                    pa.OSFile(str(path), "wb") as sink,
                    pa.ipc.new_file(sink, table.schema) as writer,
                ):
                    writer.write_table(table)
                written = os.stat(path).st_size
            except OSError as exc:
                path.unlink(missing_ok=True)
                raise SpillError(f"cannot spill a chunk to `{path}`: {exc}") from exc
            native.path, native.disk_bytes = path, int(written)
            native.table = native.frame = None  # `canonical` stays: the file has the table's flavours
            return chunk.nbytes

    def make_available(self, chunk: TableChunk) -> None:
        native = cpu_table(self._own(chunk, "make_available"), self)
        if native.path is not None:
            native.arrow(lambda: info_of_schema(chunk.schema), canonical=False)

    def make_available_cost(self, chunk: TableChunk) -> int:
        native = cpu_table(self._own(chunk, "make_available_cost"), self)
        return chunk.nbytes if native.path is not None else 0

    def _check_tier(self, tier: object, operation: str) -> None:
        if tier not in self.tiers:
            raise ValueError(
                f"{operation}: the `{self.name}` backend's tiers are {list(self.tiers)}; "
                f"got {tier!r}"
            )

