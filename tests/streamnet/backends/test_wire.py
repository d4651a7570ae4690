"""Packing a chunk for the wire and reading it back."""

from __future__ import annotations

import dataclasses
import pickle

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
