from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from streamnet import Message, SchemaError, TableChunk


def _table() -> pa.Table:
    return pa.table({"a": [1, 2, None], "b": pa.array(["x", "y", "z"], pa.large_string())})


def test_from_arrow_keeps_a_canonical_table_without_copy() -> None:
    table = _table()
    chunk = TableChunk.from_arrow(table)
    assert chunk.to_arrow() is table
    assert (chunk.num_rows, chunk.num_columns, chunk.column_names) == (3, 2, ["a", "b"])
    assert chunk.nbytes == table.nbytes
    view = chunk.table_view()
    assert (view.num_rows(), view.num_columns()) == (3, 2)


def test_from_record_batch() -> None:
    batch = pa.record_batch({"a": [1, 2]})
    assert TableChunk.from_arrow(batch).num_rows == 2


def test_polars_round_trip() -> None:
    df = pl.DataFrame({"a": [1, 2, None], "b": ["x", None, "z"]})
    out = TableChunk.from_polars(df).to_polars()
    assert out.equals(df)


def test_pandas_round_trip_drops_index_by_default() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}, index=[10, 11])
    chunk = TableChunk.from_pandas(df)
    assert chunk.column_names == ["a", "b"]
    pd.testing.assert_frame_equal(chunk.to_pandas(), df.reset_index(drop=True))


def test_constructor_rejects_other_types_with_a_hint() -> None:
    with pytest.raises(TypeError, match="from_polars"):
        TableChunk(pl.DataFrame({"a": [1]}))
    with pytest.raises(TypeError, match="polars.DataFrame"):
        TableChunk.from_polars(_table())


def test_from_message_checks_the_payload() -> None:
    chunk = TableChunk.from_arrow(_table())
    assert TableChunk.from_message(Message(0, chunk)) is chunk
    with pytest.raises(TypeError, match="message 4 carries a str, not a TableChunk"):
        TableChunk.from_message(Message(4, "x"))


def test_spill_frees_memory_and_loads_back_transparently(tmp_path: Path) -> None:
    table = _table()
    chunk = TableChunk.from_arrow(table)
    assert chunk.spill(tmp_path) == table.nbytes
    assert chunk.is_spilled
    assert len(list(tmp_path.iterdir())) == 1
    # metadata without loading
    assert (chunk.num_rows, chunk.nbytes, chunk.schema) == (3, table.nbytes, table.schema)
    assert chunk.is_spilled
    assert chunk.to_arrow().equals(table)
    assert not chunk.is_spilled
    assert list(tmp_path.iterdir()) == []
    assert chunk.spill(tmp_path) > 0
    assert chunk.make_available() is chunk and not chunk.is_spilled
    assert chunk.spill(tmp_path) > 0 and chunk.spill(tmp_path) == 0


def test_spilled_file_is_removed_with_the_chunk(tmp_path: Path) -> None:
    chunk = TableChunk.from_arrow(_table())
    chunk.spill(tmp_path)
    del chunk
    assert list(tmp_path.iterdir()) == []


def test_concurrent_readers_never_see_a_half_spilled_chunk(tmp_path: Path) -> None:
    table = pa.table({"a": list(range(10_000))})
    chunk = TableChunk.from_arrow(table)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                assert chunk.to_arrow().num_rows == 10_000
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def spiller() -> None:
        for _ in range(200):
            chunk.spill(tmp_path)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=spiller)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert chunk.to_arrow().equals(table)


def test_a_chunk_of_other_flavours_spilled_while_read_gives_the_canonical_table(tmp_path: Path) -> None:
    table = pa.table({"s": [str(i) for i in range(5_000)], "i": list(range(5_000))})
    canonical = table.cast(pa.schema([("s", pa.large_string()), ("i", pa.int64())]))
    chunk = TableChunk.from_arrow(table)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(100):
                assert chunk.to_arrow().equals(canonical)
                assert chunk.to_polars()["s"].len() == 5_000
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def spiller() -> None:
        for _ in range(100):
            chunk.spill(tmp_path)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads.append(threading.Thread(target=spiller))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert chunk.schema.equals(canonical.schema)


@pytest.mark.parametrize("held", ["arrow", "string", "polars", "spilled"])
def test_a_slice_shares_the_chunks_schema_and_converts_nothing(held: str, tmp_path: Path) -> None:
    frame = pl.DataFrame({"s": ["a", "b", None, "d"], "i": [1, 2, 3, 4]})
    if held == "polars":
        chunk = TableChunk.from_polars(frame)
    elif held == "string":
        chunk = TableChunk.from_arrow(frame.to_arrow().cast(pa.schema([("s", pa.string()), ("i", pa.int64())])))
    else:
        chunk = TableChunk.from_arrow(frame.to_arrow())
    if held == "spilled":
        chunk.spill(tmp_path)
    part = chunk.slice(1, 2)
    assert part.schema is chunk.schema
    assert part.to_polars().equals(frame.slice(1, 2))
    assert chunk.slice(3).num_rows == 1


def test_from_polars_checks_the_schema_it_is_given() -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    with pytest.raises(ValueError, match=r"`schema` has 2 columns, the frame has 1"):
        TableChunk.from_polars(frame, schema=pa.schema([("a", pa.int64()), ("b", pa.int64())]))
    wrong = TableChunk.from_polars(frame, schema=pa.schema([("a", pa.float64())]))
    with pytest.raises(SchemaError, match=r"was given a schema that is not its frame's"):
        wrong.to_arrow()
    right = TableChunk.from_polars(frame, schema=TableChunk.from_polars(frame.head(0)).schema)
    assert right.to_arrow().equals(frame.to_arrow())


@pytest.mark.parametrize("held", ["arrow", "polars"])
def test_slices_and_concatenations_share_the_schema_after_many_other_schemas(held: str) -> None:
    """The schemas the library remembers are few; a chunk's own schema is shared regardless."""
    fresh = uuid.uuid4().hex  # a schema no earlier test left in a cache
    frame = pl.DataFrame({f"s{fresh}": ["a", "b", None, "d"], "i": [1, 2, 3, 4]})
    chunk = TableChunk.from_polars(frame) if held == "polars" else TableChunk.from_arrow(frame.to_arrow())
    schema = chunk.schema
    for n in range(100):  # enough other schemas to push this one out of every cache
        TableChunk.from_polars(pl.DataFrame({f"c{n}": [n]})).schema  # noqa: B018
    assert chunk.slice(1, 2).schema is schema
    assert ctx_free_concat([chunk, chunk.slice(1)]).schema is schema


def ctx_free_concat(chunks: list[TableChunk]) -> TableChunk:
    from streamnet import backend_for

    return backend_for("cpu").concat(chunks)


def test_fixed_size_list_column_with_nulls_sliced_by_arrow_becomes_polars() -> None:
    """pyarrow's slice of a fixed-size list array keeps all its values; Polars refused
    such an array once it has nulls (an external sort's merge slices its runs)."""
    series = pl.Series("a", [None] + [[1, 2]] * 11, dtype=pl.Array(pl.Int32, 2))
    frame = pl.DataFrame({"k": range(12), "a": series})
    table = frame.to_arrow().slice(0, 5)
    assert_frame_equal(TableChunk.from_arrow(table).to_polars(), frame.head(5))
