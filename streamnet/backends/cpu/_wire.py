"""The CPU backend's wire format: a chunk as one Arrow IPC stream, read back without a copy.

The stream is measured first, then written once into a buffer of its exact
size; the receiving side reads the table straight out of the received buffer.
The cross-process wire (``streamnet.comm._wire``) writes every table it sends
this way.
"""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._types import Packed

__all__ = ["CpuWire", "ipc_buffer", "read_ipc"]

_HEADER = struct.Struct("<8sq")  # format, rows
_FORMAT = b"arrowipc"


def ipc_buffer(table: pa.Table | pa.RecordBatch) -> pa.Buffer:
    """``table`` as one Arrow IPC stream, written once into a buffer of the exact size.

    Measuring first (no copy) and writing into a preallocated buffer is several
    times faster than writing into a growing one, which copies as it grows.
    """
    measure = pa.MockOutputStream()
    with pa.ipc.new_stream(measure, table.schema) as writer:
        writer.write(table)
    buffer = pa.allocate_buffer(measure.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), table.schema) as writer:
        writer.write(table)
    return buffer


def read_ipc(buffer: Any) -> pa.Table:
    """The table of an Arrow IPC stream held in ``buffer`` (no copy)."""
    return pa.ipc.open_stream(pa.py_buffer(buffer)).read_all()


class CpuWire(Backend):
    """Packing chunks for the wire as Arrow IPC streams."""

    def pack(self, chunk: TableChunk) -> Packed:
        chunk = self._own(chunk, "pack")
        buffer = ipc_buffer(chunk.to_arrow())
        return Packed(
            backend=self.name,
            header=_HEADER.pack(_FORMAT, chunk.num_rows),
            frames=(memoryview(buffer).cast("B"),),
            nbytes=buffer.size,
        )

    def unpack(self, packed: Packed) -> TableChunk:
        if not isinstance(packed, Packed):
            raise TypeError(f"unpack takes a Packed, got {type(packed).__name__}")
        if packed.backend != self.name:
            raise TypeError(
                f"unpack: the chunk was packed by the `{packed.backend}` backend, not by the "
                f"`{self.name}` backend; only a backend of the same name reads it"
            )
        try:
            kind, rows = _HEADER.unpack(packed.header)
        except struct.error:
            kind, rows = None, -1
        if kind != _FORMAT or len(packed.frames) != 1:
            raise ValueError(
                "unpack: not a chunk the cpu backend packed (one Arrow IPC stream); got a "
                f"header of {len(packed.header)} bytes and {len(packed.frames)} frame(s)"
            )
        try:
            table = read_ipc(packed.frames[0])
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"unpack: the Arrow IPC stream is damaged: {exc}") from exc
        if table.num_rows != rows:
            raise ValueError(
                f"unpack: the Arrow IPC stream is incomplete: its header says {rows} rows; "
                f"got {table.num_rows}"
            )
        return self.from_arrow(table)

    def host_buffer(self, nbytes: int) -> memoryview:
        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"host_buffer: `nbytes` must be an int >= 0, got {nbytes!r}")
        return memoryview(pa.allocate_buffer(nbytes, resizable=False)).cast("B")
