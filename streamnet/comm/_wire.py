"""Wire format: a payload as a small pickled header plus its tables' buffers.

Communicators that cross process boundaries (MPI, Ray) turn payloads into
bytes here. A TableChunk anywhere inside a payload (a tuple ``(partition,
chunk)``, a list...) is packed by its backend (`Backend.pack`): the pickled
header holds the `Packed` record's small header, and its frames travel *out of
band*, each one buffer the transport sends as it is; the receiving side
unpacks it with a backend of the same name (`Backend.unpack`, without a copy
on the CPU). Arrow tables, record batches and Polars frames are written as
Arrow IPC streams the same way. Everything else is pickled (protocol 5, so
NumPy arrays travel out of band too).

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

from streamnet._schema import frame_of_arrow
from streamnet._table_chunk import TableChunk
from streamnet._typing import BackendName
from streamnet.backends._base import Backend
from streamnet.backends._types import Packed
from streamnet.backends.cpu._wire import ipc_buffer as _ipc_buffer
from streamnet.backends.cpu._wire import read_ipc as _read_ipc

__all__ = ["dumps", "is_bulky", "loads"]


def _batch_from_ipc(buffer: Any) -> pa.RecordBatch:
    return pa.ipc.open_stream(pa.py_buffer(buffer)).read_next_batch()  # written as one batch


def _frame_from_ipc(buffer: Any) -> pl.DataFrame:
    return frame_of_arrow(_read_ipc(buffer), rechunk=False)


_receivers: dict[str, Backend] = {}


def _receiver(name: BackendName) -> Backend:
    """The backend that unpacks chunks packed by a backend named ``name`` (made once)."""
    backend = _receivers.get(name)
    if backend is None:
        from streamnet.backends._registry import backend_for

        backend = _receivers.setdefault(name, backend_for(name))
    return backend


def _unpacked(name: BackendName, header: bytes, *frames: Any) -> TableChunk:
    views = tuple(memoryview(frame).cast("B") for frame in frames)
    packed = Packed(backend=name, header=header, frames=views, nbytes=sum(map(len, views)))
    return _receiver(name).unpack(packed)


_TABLES = (pa.Table, pa.RecordBatch, pl.DataFrame, TableChunk)


def _exporter(frame: Any) -> Any:
    """``frame`` as a buffer that is not a memoryview, for the buffers `dumps` hands out to
    refer to. Before Python 3.12 the cyclic collector crashes the process when it frees a
    memoryview that another memoryview's buffer still refers to (CPython gh-77894), and a
    failed run's tracebacks put the buffers it was sending in just such cycles."""
    return pa.py_buffer(frame) if isinstance(frame, memoryview) else frame


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
            packed = _receiver(obj.backend).pack(obj)
            frames = (pickle.PickleBuffer(_exporter(frame)) for frame in packed.frames)
            return _unpacked, (packed.backend, packed.header, *frames)
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
