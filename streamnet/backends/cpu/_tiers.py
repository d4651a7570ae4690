"""The CPU backend's memory tiers: a chunk is in host memory or in an Arrow IPC file on disk.

A spill file holds record batches of about `SPILL_BATCH_BYTES` each, so that a
reader of a spilled chunk's slices (`CpuTiers.iter_slices`) reads one batch at a
time. Files are read, never memory-mapped: mapped pages of a whole file would
count in the process's resident memory as they are touched.
"""

from __future__ import annotations

import bisect
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import polars as pl
import pyarrow as pa

from streamnet._errors import SpillError
from streamnet._schema import info_of_schema, polars_to_arrow
from streamnet._table_chunk import TableChunk
from streamnet._typing import Tier
from streamnet.backends._base import Backend
from streamnet.backends.cpu._table import CpuTable, cpu_table, spill_file_gone
from streamnet.memory._spill import SpillDirectory

__all__ = ["SPILL_BATCH_BYTES", "CpuTiers"]

SPILL_BATCH_BYTES = 1 << 18
"""About how many bytes of a chunk each record batch of its spill file holds."""


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
            # A frame is spilled as a frame (read back by Polars), even if an Arrow export of
            # it is held too: kernels take frames, and Polars reads types Arrow cannot say.
            table, frame = native.table, native.frame
            if frame is not None:  # exported a batch at a time: no second copy of it all
                table = CpuTable(frame=frame.head(1)).exported(info_of_schema(schema))
            assert table is not None
            if isinstance(directory, SpillDirectory):
                path = directory.new_file(chunk.nbytes)
            else:
                folder = Path(directory)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"streamnet-spill-{uuid.uuid4().hex}.arrow"
            rows = max(1, chunk.num_rows * SPILL_BATCH_BYTES // max(1, chunk.nbytes))
            starts: list[int] = []
            start = 0
            try:
                with (
                    pa.OSFile(str(path), "wb") as sink,
                    pa.ipc.new_file(sink, table.schema) as writer,
                ):
                    for batch in _batches(table, frame, rows):
                        if batch.num_rows:
                            starts.append(start)
                            start += batch.num_rows
                            writer.write_batch(batch)
                written = os.stat(path).st_size
            except OSError as exc:
                path.unlink(missing_ok=True)
                raise SpillError(f"cannot spill a chunk to `{path}`: {exc}") from exc
            native.path, native.disk_bytes = path, int(written)
            native.batch_starts = tuple(starts)
            if frame is not None:
                native.canonical = True  # the frame's export: the canonical flavours
                native.frame_schema = frame.schema  # read back as a frame (`CpuTable.polars`)
            # else `canonical` stays as it was: the file has the flavours of the table
            native.table = native.frame = None
            return chunk.nbytes

    def make_available(self, chunk: TableChunk) -> None:
        native = cpu_table(self._own(chunk, "make_available"), self)
        if native.path is not None and native.held_frame() is None:
            native.arrow(lambda: info_of_schema(chunk.schema), canonical=False)

    def iter_slices(self, chunk: TableChunk, rows: int) -> Iterator[TableChunk]:
        chunk = self._own(chunk, "iter_slices")
        if type(rows) is not int or rows < 1:
            raise ValueError(f"iter_slices: `rows` must be an int >= 1, got {rows!r}")
        chunk.schema  # noqa: B018 - known before any slice is read (of a frame: worked out once)
        return self._slices(chunk, rows)

    def _slices(self, chunk: TableChunk, rows: int) -> Iterator[TableChunk]:
        native = cpu_table(chunk, self)
        reader = _BatchReader()
        try:
            for offset in range(0, chunk.num_rows, rows):
                piece = reader.rows(native, offset, rows)
                yield TableChunk.from_native(self, piece, like=chunk)
        finally:
            reader.close()

    def make_available_cost(self, chunk: TableChunk) -> int:
        native = cpu_table(self._own(chunk, "make_available_cost"), self)
        return chunk.nbytes if native.path is not None else 0

    def _check_tier(self, tier: object, operation: str) -> None:
        if tier not in self.tiers:
            raise ValueError(
                f"{operation}: the `{self.name}` backend's tiers are {list(self.tiers)}; "
                f"got {tier!r}"
            )


def _batches(
    table: pa.Table, frame: pl.DataFrame | None, rows: int
) -> Iterator[pa.RecordBatch]:
    """The record batches of ``rows`` rows to spill: of ``table``, or of the frame exported a
    slice at a time (an export copies strings: one slice's worth at a time, not the whole).

    An IPC file holds one dictionary per column: a chunk with dictionary columns (Polars'
    Categorical) whose pieces carry dictionaries of their own is exported whole and its
    dictionaries unified first."""
    if any(pa.types.is_dictionary(f.type) for f in table.schema):
        whole = table if frame is None else polars_to_arrow(frame)
        if not whole.schema.equals(table.schema, check_metadata=False):
            whole = whole.cast(table.schema)
        yield from whole.unify_dictionaries().to_batches(max_chunksize=rows)
        return
    if frame is None:
        yield from table.to_batches(max_chunksize=rows)
        return
    for offset in range(0, frame.height, rows):
        part = polars_to_arrow(frame.slice(offset, rows))
        if not part.schema.equals(table.schema, check_metadata=False):
            part = part.cast(table.schema)
        yield from part.to_batches()


class _BatchReader:
    """Rows of a chunk where they are now: slices of its table in memory, or the record
    batches of its spill file that hold them (the last one kept for the next rows)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.file: pa.OSFile | None = None
        self.reader: pa.ipc.RecordBatchFileReader | None = None
        self.kept: tuple[int, pa.RecordBatch] | None = None  # (batch index, batch)

    def rows(self, native: CpuTable, offset: int, length: int) -> CpuTable:
        """Rows ``offset`` to ``offset + length`` of ``native``, read without loading it."""
        with native.lock:  # neither spilled nor loaded meanwhile
            if native.path is None:
                if native.frame is not None:
                    return CpuTable(frame=native.frame.slice(offset, length))
                assert native.table is not None
                return CpuTable(native.table.slice(offset, length), canonical=native.canonical)
            table = self._read(native.path, native.batch_starts, offset, length)
            return CpuTable(table)  # the file has the flavours the table had

    def _read(self, path: Path, starts: tuple[int, ...], offset: int, length: int) -> pa.Table:
        if path != self.path:
            self.close()
            try:
                self.file = pa.OSFile(str(path), "rb")
            except FileNotFoundError as exc:
                raise spill_file_gone(path) from exc
            self.reader = pa.ipc.open_file(self.file)
            self.path = path
        reader = self.reader
        assert reader is not None
        first = index = bisect.bisect_right(starts, offset) - 1
        batches: list[pa.RecordBatch] = []
        while index < len(starts) and starts[index] < offset + length:
            kept = self.kept
            batch = kept[1] if kept is not None and kept[0] == index else reader.get_batch(index)
            batches.append(batch)
            self.kept = (index, batch)
            index += 1
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return table.slice(offset - starts[first], length)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.path = self.file = self.reader = self.kept = None
