"""Packing a chunk for the wire and reading it back."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import polars as pl
import pytest
from backend_strategies import frames
from hypothesis import given
from polars.testing import assert_frame_equal

from streamnet import Backend, Packed


@given(df=frames())
def test_unpack_gives_back_the_chunk_pack_made(backend: Backend, df: pl.DataFrame) -> None:
    chunk = backend.from_polars(df)
    packed = backend.pack(chunk)
    assert packed.backend == backend.name
    assert packed.nbytes == sum(frame.nbytes for frame in packed.frames)
    back = backend.unpack(packed)
    assert_frame_equal(backend.to_polars(back), df)
    assert back.schema.equals(chunk.schema)


def test_packed_frames_travel_as_they_are(backend: Backend) -> None:
    """What a transport does: send the frames' bytes, rebuild the record on the other side."""
    chunk = backend.from_polars(pl.DataFrame({"x": list(range(1000)), "s": ["a"] * 1000}))
    packed = backend.pack(chunk)
    received = Packed(
        packed.backend,
        pickle.loads(pickle.dumps(packed.header)),
        tuple(memoryview(bytearray(frame)) for frame in packed.frames),
        packed.nbytes,
    )
    assert backend.to_arrow(backend.unpack(received)).equals(backend.to_arrow(chunk))


def test_unpack_refuses_what_this_backend_did_not_pack(backend: Backend) -> None:
    packed = backend.pack(backend.from_polars(pl.DataFrame({"x": [1, 2, 3]})))
    with pytest.raises(TypeError, match="packed by the `gpu` backend, not by the `cpu`"):
        backend.unpack(dataclasses.replace(packed, backend="gpu"))
    with pytest.raises(ValueError, match="not a chunk the cpu backend packed"):
        backend.unpack(dataclasses.replace(packed, header=b"junk"))
    with pytest.raises(ValueError, match="not a chunk the cpu backend packed.*2 frame"):
        backend.unpack(dataclasses.replace(packed, frames=packed.frames * 2))
    frame = packed.frames[0]
    with pytest.raises(ValueError, match="damaged|incomplete"):
        backend.unpack(dataclasses.replace(packed, frames=(frame[: len(frame) // 2],)))
    with pytest.raises(TypeError, match="unpack takes a Packed, got bytes"):
        backend.unpack(b"")  # type: ignore[arg-type]


def test_host_buffer_is_writable_and_of_the_size_asked(backend: Backend) -> None:
    buffer = backend.host_buffer(64)
    assert (buffer.nbytes, buffer.readonly) == (64, False)
    buffer[:3] = b"abc"
    assert bytes(buffer[:3]) == b"abc"
    assert backend.host_buffer(0).nbytes == 0
    with pytest.raises(ValueError, match="`nbytes` must be an int >= 0, got -1"):
        backend.host_buffer(-1)


def test_the_cpu_backend_sends_a_chunk_s_own_buffers_without_a_copy() -> None:
    """A chunk whose buffers hold only its rows travels as those buffers, each a frame
    (no IPC stream written), and reads back as the same table."""
    import pyarrow as pa

    from streamnet.backends.cpu import CpuBackend

    backend = CpuBackend()
    chunk = backend.from_arrow(pa.table({"x": list(range(10_000)), "s": ["ab", None] * 5_000}))
    table = backend.to_arrow(chunk)
    packed = backend.pack(chunk)
    data = {buffer.address for column in table.columns for chunk in column.chunks
            for buffer in chunk.buffers() if buffer is not None}  # fmt: skip
    assert len(packed.frames) > 1
    assert {pa.py_buffer(frame).address for frame in packed.frames} <= data  # the same memory
    assert backend.to_arrow(backend.unpack(packed)).equals(table)


def test_the_cpu_backend_writes_a_small_slice_of_large_buffers_as_its_rows_only() -> None:
    """A slice would send every buffer it points into: it is written out (an IPC stream of
    its rows) instead, and reads back as the slice."""
    import pyarrow as pa

    from streamnet.backends.cpu import CpuBackend

    backend = CpuBackend()
    table = pa.table({"x": list(range(1_000_000)), "s": ["abc"] * 1_000_000})
    piece = backend.from_arrow(table.slice(500_000, 10))
    packed = backend.pack(piece)
    assert packed.nbytes < 10_000  # the slice's rows, not the 12 MB it points into
    assert backend.to_arrow(backend.unpack(packed)).equals(backend.to_arrow(piece))


def test_the_cpu_backend_refuses_buffers_whose_layout_is_damaged() -> None:
    from streamnet.backends.cpu import CpuBackend

    backend = CpuBackend()
    packed = backend.pack(backend.from_polars(pl.DataFrame({"x": [1, 2, 3], "s": ["a", "b", None]})))
    assert len(packed.frames) > 1
    with pytest.raises(ValueError, match="layout is damaged"):
        backend.unpack(dataclasses.replace(packed, header=packed.header[:-20] + b"\0" * 20))
    with pytest.raises(ValueError, match="not a chunk the cpu backend packed"):
        backend.unpack(dataclasses.replace(packed, frames=packed.frames[1:]))


def test_the_cpu_backend_writes_a_chunk_whose_layout_does_not_pickle_as_a_stream() -> None:
    """An extension type of the user's, defined where pickle cannot find it, travels as an
    IPC stream (its registered type comes back)."""
    import pyarrow as pa

    from streamnet.backends.cpu import CpuBackend

    class Label(pa.ExtensionType):  # type: ignore[misc]  # local: pickle cannot name it
        def __init__(self) -> None:
            super().__init__(pa.int64(), "test.label")

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        def __hash__(self) -> int:
            return hash(self.extension_name)

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> Label:
            return cls()

    pa.register_extension_type(Label())
    try:
        backend = CpuBackend()
        labels = pa.ExtensionArray.from_storage(Label(), pa.array([1, 2, 3]))
        chunk = backend.from_arrow(pa.table({"x": labels, "y": [4, 5, 6]}))
        packed = backend.pack(chunk)
        assert len(packed.frames) == 1  # one IPC stream
        assert backend.to_arrow(backend.unpack(packed)).equals(backend.to_arrow(chunk))
    finally:
        pa.unregister_extension_type("test.label")
