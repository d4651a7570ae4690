"""One schema per stream, checked where a TableChunk enters a channel; canonical Arrow types."""

from __future__ import annotations

import datetime

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamnet import Channel, Context, Message, Network, SchemaError, TableChunk, define_actor

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
def test_every_flavour_of_a_type_gives_the_schema_polars_emits(kind: str, data) -> None:
    array = data.draw(st.sampled_from(FLAVOURS[kind]))
    nullable = kind != "not null"
    table = pa.table([array], schema=pa.schema([pa.field("c", array.type, nullable=nullable)]))
    chunk = TableChunk.from_arrow(table)
    via_polars = TableChunk.from_polars(pl.from_arrow(table))  # what a transform emits
    assert chunk.schema.equals(via_polars.schema)
    assert chunk.to_arrow().schema.equals(via_polars.to_arrow().schema)
    assert chunk.to_arrow().equals(via_polars.to_arrow())
    assert chunk.to_polars().equals(pl.from_arrow(table))
    # a canonical table passes through untouched
    canonical = chunk.to_arrow()
    assert TableChunk.from_arrow(canonical).to_arrow() is canonical


def test_canonical_types_are_the_large_flavours() -> None:
    table = pa.table({"s": ["x"], "b": [b"x"], "l": [[1]]})
    types = [f.type for f in TableChunk.from_arrow(table).schema]
    assert types == [pa.large_string(), pa.large_binary(), pa.large_list(pa.int64())]
    frame = pl.DataFrame({"s": ["x"], "b": [b"x"], "l": [[1]]})
    assert [f.type for f in TableChunk.from_polars(frame).to_arrow().schema] == types


def test_the_schema_of_a_polars_chunk_needs_no_conversion(monkeypatch) -> None:
    frame = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    expected = frame.to_arrow().schema
    converted: list[int] = []
    to_arrow = pl.DataFrame.to_arrow

    def counting(self: pl.DataFrame, *args, **kwargs) -> pa.Table:
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
    first, later, position, polars_held
) -> None:
    def chunk(dtype) -> TableChunk:
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
