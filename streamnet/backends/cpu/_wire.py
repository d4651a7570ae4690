"""The CPU backend's wire format: a chunk's Arrow buffers as they are, read back without a copy.

A chunk whose columns hold only their own rows travels as its Arrow buffers,
each one frame, with no copy (`pack`): the header holds the table's layout
(pickled with protocol 5, the buffers out of band), the rows and each frame's
size. A chunk that is a slice of larger buffers (or whose string views share
larger data buffers) would send all of them, so it is written as one Arrow IPC
stream instead, which holds only its rows: measured first, then written once into
a buffer of its exact size. Either way the receiving side reads the table straight
out of the received buffers. The cross-process wire (``streamnet.comm._wire``)
writes every bare table it sends as an IPC stream.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._types import Packed

__all__ = ["CpuWire", "ipc_buffer", "read_ipc"]

_HEADER = struct.Struct("<8sq")  # format, rows
_FORMAT = b"arrowipc"  # one frame: an Arrow IPC stream
_BUFFERS = b"arrowbuf"  # the header then: frames, their sizes, the pickled layout
_SIZES = struct.Struct("<q")

SPARE_BYTES = 1 << 16
"""A chunk travels as its own buffers while they hold at most a quarter more than its rows
need, plus this: a small slice of large buffers is written out as an IPC stream."""


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
        table = chunk.to_arrow()
        rows = chunk.num_rows
        if table.get_total_buffer_size() <= table.nbytes + table.nbytes // 4 + SPARE_BYTES:
            packed = self._buffers(table, rows)
            if packed is not None:
                return packed
        buffer = ipc_buffer(table)
        return Packed(
            backend=self.name,
            header=_HEADER.pack(_FORMAT, rows),
            frames=(memoryview(buffer).cast("B"),),
            nbytes=buffer.size,
        )

    def _buffers(self, table: pa.Table, rows: int) -> Packed | None:
        """``table`` as its own buffers, each a frame (None: its layout does not pickle, an
        extension type of the user's, say: it goes as an IPC stream)."""
        buffers: list[pickle.PickleBuffer] = []
        try:
            layout = pickle.dumps(table, protocol=5, buffer_callback=buffers.append)
        except Exception:  # what a type that does not pickle raises is not one type
            return None
        frames = tuple(memoryview(buffer.raw()).cast("B") for buffer in buffers)
        sizes = b"".join(_SIZES.pack(frame.nbytes) for frame in frames)
        header = _HEADER.pack(_BUFFERS, rows) + _SIZES.pack(len(frames)) + sizes + layout
        return Packed(self.name, header, frames, sum(frame.nbytes for frame in frames))

    def unpack(self, packed: Packed) -> TableChunk:
        if not isinstance(packed, Packed):
            raise TypeError(f"unpack takes a Packed, got {type(packed).__name__}")
        if packed.backend != self.name:
            raise TypeError(
                f"unpack: the chunk was packed by the `{packed.backend}` backend, not by the "
                f"`{self.name}` backend; only a backend of the same name reads it"
            )
        try:
            kind, rows = _HEADER.unpack_from(packed.header)
        except struct.error:
            kind, rows = None, -1
        sizes = _frame_sizes(packed.header) if kind == _BUFFERS else None
        if not (kind == _FORMAT and len(packed.frames) == 1) and (
            sizes is None or len(sizes) != len(packed.frames)
        ):
            raise ValueError(
                "unpack: not a chunk the cpu backend packed (its Arrow buffers, or one Arrow "
                f"IPC stream); got a header of {len(packed.header)} bytes and "
                f"{len(packed.frames)} frame(s)"
            )
        if sizes is not None:
            table = _read_buffers(packed, sizes)
        else:
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


def _frame_sizes(header: bytes) -> list[int] | None:
    """The sizes of the frames a header of the buffers format announces (None: damaged)."""
    at = _HEADER.size
    try:
        (count,) = _SIZES.unpack_from(header, at)
        if not 0 <= count <= (len(header) - at) // _SIZES.size:
            return None
        return [_SIZES.unpack_from(header, at + _SIZES.size * (1 + i))[0] for i in range(count)]
    except struct.error:
        return None


def _read_buffers(packed: Packed, sizes: list[int]) -> pa.Table:
    """The table whose Arrow buffers are ``packed``'s frames (no copy)."""
    frames = [memoryview(frame).cast("B") for frame in packed.frames]
    if [frame.nbytes for frame in frames] != sizes:
        raise ValueError(
            f"unpack: the chunk's buffers are incomplete: its header says frames of {sizes} "
            f"bytes; got {[frame.nbytes for frame in frames]}"
        )
    layout = memoryview(packed.header)[_HEADER.size + _SIZES.size * (1 + len(sizes)) :]
    try:
        table = pickle.loads(layout, buffers=frames)
    except Exception as exc:  # what unpickling damaged bytes raises is not one type
        raise ValueError(f"unpack: the chunk's layout is damaged: {exc}") from exc
    if not isinstance(table, pa.Table):
        raise ValueError(f"unpack: the chunk's layout is damaged: it holds a {type(table).__name__}")
    return table
