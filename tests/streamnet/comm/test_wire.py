"""The wire format: payloads cross processes as a pickled header plus out-of-band buffers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from streamnet import Context, Packed, RemoteRankError, SingleCommunicator, TableChunk
from streamnet.comm._wire import dumps, loads


def test_wire_sends_tables_as_ipc_buffers_and_rebuilds_every_kind() -> None:
    table = pa.table({"x": [1, None, 3], "s": ["a", "b", None]})
    payload = {
        "table": table,
        "batch": table.to_batches()[0],
        "frame": pl.DataFrame({"d": [1.5, None]}),
        "chunk": TableChunk.from_polars(pl.DataFrame({"z": [1, 2]})),
        "empty": pl.DataFrame({"q": [1]}).head(0),
        "array": np.arange(4),
        "plain": (7, "text", None),
    }
    header, buffers = dumps(payload)
    assert len(buffers) == 6  # five tables and the NumPy array travel beside the header
    assert len(header) < 2_000  # the header holds no table data
    got = loads(header, [pa.py_buffer(bytes(b)) for b in buffers])
    assert got["table"].equals(table)
    assert got["batch"].equals(table.to_batches()[0])
    assert got["frame"].equals(payload["frame"])
    assert got["chunk"].to_polars().equals(payload["chunk"].to_polars())
    assert got["empty"].schema == payload["empty"].schema and got["empty"].height == 0
    assert got["array"].tolist() == [0, 1, 2, 3] and got["plain"] == (7, "text", None)


def test_wire_rejects_what_cannot_travel_naming_its_type() -> None:
    with pytest.raises(TypeError, match="cannot send a tuple to another rank"):
        dumps((1, lambda: None))


def test_remote_rank_errors_survive_pickling() -> None:
    import pickle

    error = RemoteRankError(2, ValueError("bad"))
    error.add_note("on rank 0 of 3")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.rank, str(copy.cause), copy.__notes__) == (2, "bad", ["on rank 0 of 3"])


def test_a_chunk_travels_as_its_backends_packed_frames_out_of_band() -> None:
    from streamnet.backends.cpu import CpuBackend

    packs: list[Packed] = []

    class Recording(CpuBackend):
        def pack(self, chunk: TableChunk) -> Packed:
            packs.append(super().pack(chunk))
            return packs[-1]

        def unpack(self, packed: Packed) -> TableChunk:
            packs.append(packed)
            return super().unpack(packed)

    df = pl.DataFrame({"x": list(range(1000)), "s": ["a", None] * 500})
    chunk = TableChunk.from_polars(df, backend=Recording())
    with mock.patch.dict("streamnet.comm._wire._receivers", {"cpu": Recording()}):
        header, buffers = dumps((3, chunk))
        (sent,) = packs
        assert [bytes(b) for b in buffers] == [bytes(f) for f in sent.frames]  # as they are
        assert len(header) < 1024  # the layout and sizes: no table data (about 9 kB here)
        part, back = loads(header, [pa.py_buffer(bytes(b)) for b in buffers])
    assert (part, len(packs)) == (3, 2)
    assert packs[1].header == sent.header and packs[1].nbytes == sent.nbytes
    assert back.schema is chunk.schema  # one shared schema: the channels' identity check holds
    assert back.to_polars().equals(df)


def test_a_context_receives_packed_frames_into_its_backends_buffers() -> None:
    given: list[object] = []

    class Recording(SingleCommunicator):
        def use_host_buffers(self, allocate: Callable[[int], Any]) -> None:
            given.append(allocate)

    with Context(communicator=Recording()) as ctx:
        assert given == [ctx.backend.host_buffer]


def test_buffers_of_a_sent_chunk_left_in_a_reference_cycle_are_freed_without_a_crash() -> None:
    # A failed run's tracebacks hold the buffers it was sending in reference cycles. Before
    # Python 3.12, freeing a memoryview that another memoryview's buffer refers to from the
    # cyclic collector crashed the process; a child process shows whether it survives.
    script = """
import gc
import polars as pl
from streamnet import TableChunk
from streamnet.comm._wire import dumps

class Cycle:
    pass

chunk = TableChunk.from_polars(pl.DataFrame({"x": range(100), "s": ["a", None] * 50}))
for turn in range(50):
    _, buffers = dumps((turn, chunk))
    cycle = Cycle()
    cycle.self, cycle.buffers = cycle, buffers if turn % 2 else buffers[::-1]
    del buffers, cycle
    gc.collect()
print("freed")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, "freed"), done.stderr[-2000:]
