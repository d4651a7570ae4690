"""The wire format: payloads cross processes as a pickled header plus Arrow IPC buffers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from streamnet import RemoteRankError, TableChunk
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
