"""One schema per stream, checked where a TableChunk enters a channel; canonical Arrow types."""

from __future__ import annotations

import datetime
import gc
import re
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actors
from streamnet import (
    Channel,
    Context,
    Message,
    Network,
    SchemaError,
    TableChunk,
    define_actor,
    describe_schema,
    frame_of_arrow,
)

# Arrow flavours of one logical type, and tables Polars-based transforms would emit instead.
FLAVOURS: dict[str, list[pa.Array]] = {
    "string": [
        pa.array(["a", None, "bc"], pa.string()),
        pa.array(["a", None, "bc"], pa.large_string()),
        pa.array(["a", None, "bc"], pa.string_view()),
    ],
    "binary": [
        pa.array([b"a", None, b"bc"], pa.binary()),
        pa.array([b"a", None, b"bc"], pa.large_binary()),
        pa.array([b"a", None, b"bc"], pa.binary_view()),
    ],
    "list": [
        pa.array([[1], None, [2, 3]], pa.list_(pa.int64())),
        pa.array([[1], None, [2, 3]], pa.large_list(pa.int64())),
    ],
    "categorical": [
        pa.array(["a", None, "b"]).dictionary_encode(),
        pa.array(["a", None, "b"]).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string())),
    ],
    "struct": [
        pa.array([{"x": "a"}, None, {"x": "b"}], pa.struct([("x", pa.string())])),
        pa.array([{"x": "a"}, None, {"x": "b"}], pa.struct([("x", pa.large_string())])),
    ],
    "date": [pa.array([datetime.date(2020, 1, 2), None, datetime.date(1999, 3, 4)])],
    "not null": [pa.array([1, 2, 3], pa.int64())],
}


@settings(max_examples=30)
@given(st.sampled_from(sorted(FLAVOURS)), st.data())
def test_every_flavour_of_a_type_gives_the_schema_polars_emits(
    kind: str, data: st.DataObject
) -> None:
    array = data.draw(st.sampled_from(FLAVOURS[kind]))
    nullable = kind != "not null"
    table = pa.table([array], schema=pa.schema([pa.field("c", array.type, nullable=nullable)]))
    chunk = TableChunk.from_arrow(table)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    via_polars = TableChunk.from_polars(frame)  # what a transform emits
    assert chunk.schema.equals(via_polars.schema)
    assert chunk.to_arrow().schema.equals(via_polars.to_arrow().schema)
    assert chunk.to_arrow().equals(via_polars.to_arrow())
    assert chunk.to_polars().equals(frame)
    # a canonical table passes through untouched
    canonical = chunk.to_arrow()
    assert TableChunk.from_arrow(canonical).to_arrow() is canonical


def test_canonical_types_are_the_large_flavours() -> None:
    table = pa.table({"s": ["x"], "b": [b"x"], "l": [[1]]})
    types = [f.type for f in TableChunk.from_arrow(table).schema]
    assert types == [pa.large_string(), pa.large_binary(), pa.large_list(pa.int64())]
    frame = pl.DataFrame({"s": ["x"], "b": [b"x"], "l": [[1]]})
    assert [f.type for f in TableChunk.from_polars(frame).to_arrow().schema] == types


def test_the_schema_of_a_polars_chunk_needs_no_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    expected = frame.to_arrow().schema
    converted: list[int] = []
    to_arrow = pl.DataFrame.to_arrow

    def counting(self: pl.DataFrame, *args: Any, **kwargs: Any) -> pa.Table:
        converted.append(self.height)
        return to_arrow(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "to_arrow", counting)
    chunk = TableChunk.from_polars(frame)
    assert chunk.schema.equals(expected)
    run([chunk, TableChunk.from_polars(frame.slice(1)), chunk])  # the stream's check
    assert sum(converted) == 0  # no row was converted to Arrow


@define_actor
async def send_all(ctx: Context, ch_out: Channel[TableChunk], chunks: list[TableChunk]) -> None:
    for seq, chunk in enumerate(chunks):
        await ch_out.send(ctx, Message(seq, chunk))


@define_actor
async def drop_all(ctx: Context, ch_in: Channel[TableChunk]) -> None:
    async for _ in ch_in:
        pass


def run(chunks: list[TableChunk]) -> None:
    ctx = Context()
    ch = ctx.create_channel(name="numbers")
    Network(ctx, [send_all(ctx, ch, chunks), drop_all(ctx, ch)]).run()


TYPES = {
    pl.Int64: "Int64",
    pl.Int32: "Int32",
    pl.Float64: "Float64",
    pl.String: "String",
    pl.Boolean: "Boolean",
    pl.Date: "Date",
}


@settings(max_examples=25)
@given(
    st.sampled_from(sorted(TYPES, key=str)),
    st.sampled_from(sorted(TYPES, key=str)),
    st.integers(1, 4),
    st.booleans(),
)
def test_a_chunk_of_another_type_is_refused_naming_actor_channel_column_and_both_types(
    first: type[pl.DataType], later: type[pl.DataType], position: int, polars_held: bool
) -> None:
    def chunk(dtype: type[pl.DataType]) -> TableChunk:
        frame = pl.DataFrame({"k": [1, 2], "v": pl.Series([None, None], dtype=dtype)})
        return (
            TableChunk.from_polars(frame)
            if polars_held
            else TableChunk.from_arrow(frame.to_arrow())
        )

    chunks = [chunk(first)] * position + [chunk(later)]
    if first == later:
        run(chunks)
        return
    with pytest.raises(
        SchemaError,
        match=rf"actor `send_all#0`, channel `numbers`: chunk {position} does not match the "
        rf"schema the stream's first chunk \(0\) set: column `v` has type {TYPES[later]} where "
        rf"the stream has {TYPES[first]}; .*`actors.cast`.*; got \{{k: Int64, v: {TYPES[later]}\}}",
    ):
        run(chunks)


def test_extra_missing_and_reordered_columns_are_named() -> None:
    base = TableChunk.from_polars(pl.DataFrame({"a": [1], "b": ["x"]}))
    with pytest.raises(SchemaError, match=r"column `c` \(Float64\) is not in the stream"):
        run([base, TableChunk.from_polars(pl.DataFrame({"a": [1], "b": ["x"], "c": [1.0]}))])
    with pytest.raises(SchemaError, match=r"column `b` \(String\) is missing; every chunk"):
        run([base, TableChunk.from_polars(pl.DataFrame({"a": [1]}))])
    with pytest.raises(
        SchemaError,
        match=r"columns come in the order \['b', 'a'\] where the stream has \['a', 'b'\]",
    ):
        run([base, TableChunk.from_polars(pl.DataFrame({"b": ["x"], "a": [1]}))])


def test_flavours_and_holders_of_one_schema_share_a_stream() -> None:
    """A string chunk, a large_string chunk and a Polars chunk of one table: one stream."""
    frame = pl.DataFrame({"s": ["x", None], "i": [1, 2]})
    table = frame.to_arrow()
    small = table.cast(pa.schema([("s", pa.string()), ("i", pa.int64())]))
    run([TableChunk.from_arrow(small), TableChunk.from_polars(frame), TableChunk.from_arrow(table)])


def test_the_schema_rule_applies_outside_a_network_too() -> None:
    import asyncio

    async def main() -> None:
        ch = Channel[TableChunk](capacity=4, name="loose")
        await ch.send(None, Message(0, TableChunk.from_arrow(pa.table({"a": [1]}))))
        with pytest.raises(SchemaError, match=r"^channel `loose`: chunk 1 .*column `a`"):
            await ch.send(None, Message(1, TableChunk.from_arrow(pa.table({"a": [1.5]}))))
        assert len(ch) == 1  # the refused chunk did not enter

    asyncio.run(main())


# -- canonical types: only flavours are mapped -------------------------------------------------


def _optional(name: str, *args: object) -> pa.DataType | None:
    """``pa.<name>(*args)``, or None where this pyarrow lacks the type."""
    make = getattr(pa, name, None)
    return make(*args) if make is not None else None


# (type, its canonical form); None: left as it is
CANONICAL: list[tuple[pa.DataType | None, pa.DataType | None]] = [
    (pa.string(), pa.large_string()),
    (_optional("string_view"), pa.large_string()),
    (pa.binary(), pa.large_binary()),
    (_optional("binary_view"), pa.large_binary()),
    (pa.list_(pa.string()), pa.large_list(pa.large_string())),
    (_optional("list_view", pa.int64()), pa.large_list(pa.int64())),
    (pa.list_(pa.field("element", pa.int32(), nullable=False)), pa.large_list(pa.int32())),
    (pa.struct([("a", pa.string()), ("b", pa.list_(pa.binary()))]),
     pa.struct([("a", pa.large_string()), ("b", pa.large_list(pa.large_binary()))])),
    (pa.map_(pa.string(), pa.list_(pa.string())),
     pa.map_(pa.large_string(), pa.large_list(pa.large_string()))),
    (pa.dictionary(pa.int8(), pa.string()), pa.dictionary(pa.uint32(), pa.large_string())),
    (pa.list_(pa.string(), 2), pa.list_(pa.large_string(), 2)),
    (pa.date64(), None),
    (pa.timestamp("s"), None),
    (pa.timestamp("ns", "Europe/Paris"), None),
    (pa.duration("s"), None),
    (pa.time32("s"), None),
    (pa.time64("us"), None),
    (pa.binary(2), None),
    (pa.decimal128(10, 2), None),
    (pa.decimal256(50, 2), None),
    (pa.float16(), None),
    (pa.month_day_nano_interval(), None),
    (pa.dense_union([pa.field("a", pa.int8())]), None),
    (_optional("uuid"), None),
    (pa.large_list(pa.date64()), None),
    (pa.null(), None),
]


@pytest.mark.parametrize(
    ("dtype", "canonical"),
    [(t, c) for t, c in CANONICAL if t is not None],
    ids=[str(t) for t, _ in CANONICAL if t is not None],
)
def test_only_flavours_are_mapped_and_no_other_type_changes(
    dtype: pa.DataType, canonical: pa.DataType | None
) -> None:
    """Before, the canonical schema came from a round trip through Polars: date64 became a
    timestamp, timestamp[s] a timestamp[ms], a UUID large_binary, and decimal256(50, 2)
    made ``from_arrow`` panic."""
    table = pa.table({"c": pa.nulls(2, dtype)})
    chunk = TableChunk.from_arrow(table)
    expected = dtype if canonical is None else canonical
    assert chunk.schema.field("c").type.equals(expected)
    assert chunk.schema.field("c").nullable
    out = chunk.to_arrow()
    assert out.schema.equals(chunk.schema)
    assert out.column("c").to_pylist() == [None, None]


def test_a_table_of_canonical_types_is_never_copied() -> None:
    frame = pl.DataFrame({"s": ["x", None], "l": [[1], None], "d": [datetime.date(2020, 1, 1)] * 2})
    canonical = TableChunk.from_polars(frame).to_arrow()
    assert TableChunk.from_arrow(canonical).to_arrow() is canonical


def test_a_chunk_of_other_flavours_is_cast_only_when_asked_for_as_arrow() -> None:
    """``from_arrow`` runs on the event loop: it must not copy data (before, it cast every
    ``string`` column there). The cast happens in ``to_arrow``, which kernels call."""
    rows = 20_000
    table = pa.table({f"c{i}": pa.array([f"value {j}" for j in range(rows)]) for i in range(3)})
    gc.collect()
    gc.disable()  # nothing is freed behind the measurements' back
    try:
        before = pa.total_allocated_bytes()
        chunk = TableChunk.from_arrow(table)
        assert pa.total_allocated_bytes() <= before  # nothing copied
        assert chunk.schema.field("c0").type == pa.large_string()
        frame = chunk.to_polars()  # Polars reads `string` itself: no cast needed
        assert pa.total_allocated_bytes() <= before
        out = chunk.to_arrow()
        assert pa.total_allocated_bytes() - before >= 3 * rows * 8  # cast here: 64-bit offsets
    finally:
        gc.enable()
    assert frame["c0"].to_list() == table.column("c0").to_pylist()
    assert out.schema == chunk.schema
    assert chunk.to_arrow() is out
    assert out.column("c2").to_pylist() == table.column("c2").to_pylist()


# -- types Polars does not hold exactly --------------------------------------------------------

INEXACT: list[tuple[pa.Array, str]] = [
    (pa.array([datetime.date(2020, 1, 2)], pa.date64()), r"Datetime\(time_unit='ms'"),
    (pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5)], pa.timestamp("s")), r"Datetime\("),
    (pa.array([datetime.timedelta(seconds=3)], pa.duration("s")), r"Duration\("),
    (pa.array([datetime.time(1, 2, 3)], pa.time32("s")), "Time"),
    (pa.array([b"ab"], pa.binary(2)), "Binary"),
    (pa.array([1], pa.decimal256(50, 2)), "Polars cannot hold it"),
    (pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval()), "cannot hold"),
]


@pytest.mark.parametrize(("array", "becomes"), INEXACT, ids=[str(a.type) for a, _ in INEXACT])
def test_a_type_polars_does_not_hold_exactly_is_never_converted_silently(
    array: pa.Array, becomes: str
) -> None:
    chunk = TableChunk.from_arrow(pa.table({"k": [1], "odd": array}))
    assert chunk.to_arrow().column("odd").type == array.type  # Arrow keeps it
    fix = "with pyarrow" if "cannot hold" in becomes else "`actors.cast`"
    with pytest.raises(
        SchemaError,
        match=rf"column `odd` has type {re.escape(str(array.type))}, and .*{becomes}.*"
        rf"{fix}.*; got {re.escape(str(array.type))}$",
    ):
        chunk.to_polars()
    if "cannot hold" in becomes:  # not even on purpose (Polars would panic on the data)
        with pytest.raises(SchemaError, match="Polars cannot hold it"):
            chunk.to_polars(convert=["odd"])


def test_a_caller_that_converts_on_purpose_gets_polars_nearest_type() -> None:
    day = datetime.date(2020, 1, 2)
    chunk = TableChunk.from_arrow(pa.table({"d": pa.array([day], pa.date64()), "k": [1]}))
    frame = chunk.to_polars(convert=["d"])
    assert frame.schema == pl.Schema({"d": pl.Datetime("ms"), "k": pl.Int64()})
    assert frame["d"].cast(pl.Date).to_list() == [day]
    with pytest.raises(SchemaError):
        chunk.to_polars()  # the converted frame was not kept as the chunk's data


def test_a_polars_frame_without_an_arrow_form_names_its_column() -> None:
    empty = pa.table({"k": pa.array([], pa.int64()), "big": pa.array([], pa.decimal256(50, 2))})
    try:  # Polars reads such a column (without rows), but cannot export it
        frame = pl.from_arrow(empty)
    except Exception:
        pytest.skip("this Polars cannot read a Decimal(50, 2) column")
    assert isinstance(frame, pl.DataFrame)
    with pytest.raises(SchemaError, match=r"column `big` \(Decimal\(precision=50"):
        run([TableChunk.from_polars(frame)])


def test_messages_name_types_as_polars_does_and_arrow_types_polars_lacks() -> None:
    schema = pa.schema([("a", pa.int64()), ("s", pa.string()), ("d", pa.date64())])
    assert describe_schema(schema) == "{a: Int64, s: String, d: date64[ms]}"
    from actors._columns import describe_schema as used_by_actors

    assert used_by_actors is describe_schema  # one vocabulary


# -- the check costs no more than a comparison of identities -----------------------------------


def test_chunks_of_one_schema_are_checked_without_reading_their_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, every channel read each Polars-held chunk's types and compared them column by
    column (80 us a hop for 300 columns). Chunks of a source share one schema object and a
    transform works out its output schema once, so the types of a frame are read a fixed
    number of times, whatever the number of chunks."""
    import actors

    reads = {"n": 0}
    dtypes = pl.DataFrame.dtypes

    def counting(self: pl.DataFrame) -> list[pl.DataType]:
        reads["n"] += 1
        types: list[pl.DataType] = dtypes.fget(self)  # type: ignore[attr-defined]
        return types

    frame = pl.DataFrame({f"c{i}": range(200) for i in range(20)})
    monkeypatch.setattr(pl.DataFrame, "dtypes", property(counting))

    def count(chunks: int) -> int:
        reads["n"] = 0
        ctx = Context()
        a, b, c, d = (ctx.create_channel() for _ in range(4))
        sink = actors.collect(ctx, d, into="polars")
        Network(
            ctx,
            [
                actors.from_polars(ctx, a, frame, chunk_rows=frame.height // chunks),
                actors.filter(ctx, a, b, pl.col("c0") % 2 == 0),
                actors.with_columns(ctx, b, c, x=pl.col("c1") * 2),
                actors.rechunk(ctx, c, d, rows=7),
                sink,
            ],
        ).run()
        assert sink.result().height == 100
        return reads["n"]

    assert count(4) == count(40)


def test_a_frame_of_arrow_keeps_an_empty_column_name() -> None:
    """Polars' ``from_arrow`` renames a column named ``""`` to ``column_<i>``, and fails
    when that name is taken; `frame_of_arrow` keeps every name."""
    table = pa.table({"column_1": [1], "": [2], "b": [3]})
    frame = frame_of_arrow(table)
    assert frame.columns == ["column_1", "", "b"]
    assert frame.rows() == [(1, 2, 3)]
    assert frame_of_arrow(table.to_batches()[0]).columns == ["column_1", "", "b"]


def test_an_object_column_never_becomes_arrow_addresses(tmp_path: Path) -> None:
    """Polars exports an ``Object`` column as the 8 bytes of each value's address: a chunk
    of one refuses to become Arrow, naming the column, rather than write addresses."""
    frame = pl.DataFrame({"k": [1, 2], "s": pl.Series(["a", "b"], dtype=pl.Object)})
    with pytest.raises(SchemaError, match=r"column `s` \(Object\)"):
        TableChunk.from_polars(frame).schema  # noqa: B018
    path = tmp_path / "o.parquet"
    with Context() as ctx:
        ch = ctx.create_channel()
        network = Network(ctx, [actors.from_polars(ctx, ch, frame), actors.write_parquet(ctx, ch, path)])
        with pytest.raises(SchemaError, match=r"column `s` \(Object\)"):
            network.run()
    assert not path.exists()
