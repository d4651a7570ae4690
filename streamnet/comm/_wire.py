"""Wire format: a payload as a small pickled header plus its tables' Arrow IPC buffers.

Communicators that cross process boundaries (MPI, Ray) turn payloads into
bytes here. Arrow tables, record batches, Polars frames and TableChunks
anywhere inside a payload (a tuple ``(partition, table)``, a list of schemas...)
are written as Arrow IPC streams and travel *out of band*: the pickled header
holds only their place, and each table is one contiguous buffer the transport
sends as it is (the CPU backend's packing, ``streamnet.backends.cpu._wire``). On
the receiving side the tables are read back without a copy from the received
buffers. Everything else is pickled (protocol 5, so NumPy arrays travel out of
band too).

Examples
--------
>>> import pyarrow as pa
>>> header, buffers = dumps((3, pa.table({"x": [1, 2]})))
>>> len(buffers)
1
>>> part, table = loads(header, buffers)
>>> part, table["x"].to_pylist()
(3, [1, 2])
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet.backends.cpu._wire import ipc_buffer as _ipc_buffer
from streamnet.backends.cpu._wire import read_ipc as _read_ipc

__all__ = ["dumps", "is_bulky", "loads"]


def _batch_from_ipc(buffer: Any) -> pa.RecordBatch:
    return pa.ipc.open_stream(pa.py_buffer(buffer)).read_next_batch()  # written as one batch


def _frame_from_ipc(buffer: Any) -> pl.DataFrame:
    frame = pl.from_arrow(_read_ipc(buffer), rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _chunk_from_ipc(buffer: Any) -> TableChunk:
    return TableChunk.from_arrow(_read_ipc(buffer))


_TABLES = (pa.Table, pa.RecordBatch, pl.DataFrame, TableChunk)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is pa.Table:
            return _read_ipc, (pickle.PickleBuffer(_ipc_buffer(obj)),)
        if kind is pa.RecordBatch:
            return _batch_from_ipc, (pickle.PickleBuffer(_ipc_buffer(obj)),)
        if kind is pl.DataFrame:
            return _frame_from_ipc, (pickle.PickleBuffer(_ipc_buffer(obj.to_arrow())),)
        if isinstance(obj, TableChunk):
            return _chunk_from_ipc, (pickle.PickleBuffer(_ipc_buffer(obj.to_arrow())),)
        return NotImplemented


def dumps(payload: Any) -> tuple[bytes, list[memoryview]]:
    """``payload`` as a pickled header and the buffers that travel beside it.

    Raises
    ------
    TypeError
        Part of the payload cannot be pickled; the message names its type.
    """
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    try:
        _Pickler(stream, protocol=5, buffer_callback=buffers.append).dump(payload)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"cannot send a {type(payload).__name__} to another rank: {exc}; payloads are "
            "tables, frames, TableChunks and picklable Python objects"
        ) from exc
    return stream.getvalue(), [buffer.raw() for buffer in buffers]


def is_bulky(payload: Any) -> bool:
    """Whether ``payload`` holds a table (at the top or one level down), so that turning it
    into bytes is worth a thread rather than the event loop's time."""
    items = payload if isinstance(payload, tuple | list) else (payload,)
    return any(isinstance(item, _TABLES) for item in items)


def loads(header: bytes | bytearray | memoryview, buffers: Sequence[Any]) -> Any:
    """The payload :func:`dumps` made ``header`` and ``buffers`` from."""
    return pickle.loads(header, buffers=buffers)
