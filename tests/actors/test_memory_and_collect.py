from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from actors.testing import run_pipeline
from streamnet import (
    ActorNode,
    Channel,
    Context,
    Message,
    Network,
    SchemaError,
    SequenceError,
    TableChunk,
    define_actor,
)


@given(frames(), chunk_rows)
def test_arrow_and_polars_sources_round_trip(df: pl.DataFrame, rows: int) -> None:
    assert_frame_equal(run_pipeline(df, chunk_rows=rows), df)
    table = df.to_arrow()
    assert run_pipeline(table, chunk_rows=rows, into="arrow").equals(table)


def test_run_pipeline_streams_a_pandas_frame_through_from_pandas() -> None:
    """Before, a pandas frame went to `from_arrow`, which refused it."""
    df = pd.DataFrame({"x": [1, 2, 3], "s": ["a", "b", None]})
    out = run_pipeline(df, chunk_rows=2, into="pandas")
    pd.testing.assert_frame_equal(out, df)


def test_sources_cut_chunks_by_rows_and_bytes() -> None:
    table = pa.table({"x": pa.array(range(1000), pa.int64())})  # 8 bytes a row
    sizes: list[int] = []

    def record(t: pa.Table) -> pa.Table:
        sizes.append(t.num_rows)
        return t

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    Network(
        ctx,
        [
            actors.from_arrow(ctx, a, table, chunk_bytes=800),
            actors.map_chunks(ctx, a, b, record, in_thread=False),
            actors.collect(ctx, b),
        ],
    ).run()
    assert sizes == [100] * 10


def test_pandas_source_and_sink() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch, into="pandas")
    Network(ctx, [actors.from_pandas(ctx, ch, df, chunk_rows=2), sink]).run()
    pd.testing.assert_frame_equal(sink.result(), df)


def test_empty_table_keeps_its_schema() -> None:
    df = pl.DataFrame(schema={"a": pl.Int32, "b": pl.String})
    assert run_pipeline(df).schema == df.schema


@define_actor
async def scrambled(ctx: Context, ch_out: Channel[Any], order: list[int]) -> None:
    for seq in order:
        await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(pa.table({"seq": [seq]}))))


def test_collect_orders_by_sequence_number_whatever_the_arrival_order() -> None:
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch)
    Network(ctx, [scrambled(ctx, ch, [5, 0, 17, 3]), sink]).run()
    assert sink.result()["seq"].to_pylist() == [0, 3, 5, 17]


def test_collect_rejects_duplicate_sequence_numbers() -> None:
    ctx = Context()
    ch = ctx.create_channel()
    with pytest.raises(SequenceError, match="sequence number 3 arrived twice"):
        Network(ctx, [scrambled(ctx, ch, [3, 1, 3]), actors.collect(ctx, ch)]).run()


def test_a_chunk_of_another_schema_never_reaches_collect() -> None:
    @define_actor
    async def mixed(ctx: Context, ch_out: Channel[Any]) -> None:
        await ch_out.send(ctx, Message(0, TableChunk.from_arrow(pa.table({"a": [1]}))))
        await ch_out.send(ctx, Message(1, TableChunk.from_arrow(pa.table({"a": ["x"]}))))

    ctx = Context()
    ch = ctx.create_channel(name="mixed")
    sink = actors.collect(ctx, ch)
    with pytest.raises(
        SchemaError,
        match=r"actor `mixed#0`, channel `mixed`: chunk 1 .* column `a` has type String where "
        r"the stream has Int64",
    ):
        Network(ctx, [mixed(ctx, ch), sink]).run()
    assert sink.state != "done"


def test_bad_source_arguments() -> None:
    ctx = Context()
    ch = ctx.create_channel()
    with pytest.raises(TypeError, match="LazyFrame"):
        Network(
            ctx, [actors.from_polars(ctx, ch, pl.LazyFrame({"a": [1]})), actors.collect(ctx, ch)]  # type: ignore[arg-type]
        ).run()
    ch = ctx.create_channel()
    with pytest.raises(ValueError, match="`chunk_rows` must be an int >= 1"):
        Network(
            ctx,
            [
                actors.from_arrow(ctx, ch, pa.table({"a": [1]}), chunk_rows=0),
                actors.collect(ctx, ch),
            ],
        ).run()
    ch = ctx.create_channel()
    with pytest.raises(ValueError, match="`into` must be"):
        Network(
            ctx,
            [actors.from_arrow(ctx, ch, pa.table({"a": [1]})), actors.collect(ctx, ch, into="csv")],  # type: ignore[arg-type]
        ).run()


@settings(max_examples=15)
@given(frames(), chunk_rows, st.sampled_from(["arrow", "polars", "pandas"]))
def test_a_source_stream_and_a_transformed_stream_of_one_table_combine(
    tmp_path_factory: pytest.TempPathFactory, df: pl.DataFrame, rows: int, kind: str
) -> None:
    """Sources and Polars-based transforms emit the same Arrow types (large_string...).

    Before, a source emitted `string` and a transform `large_string`: the streams could
    not be collected into one Arrow table nor written to one Parquet file.
    """
    df = df.with_columns(b=pl.col("s").cast(pl.Binary), l=pl.concat_list("i", "i"))
    table = df.to_arrow().cast(
        pa.schema([("i", pa.int64()), ("f", pa.float64()), ("s", pa.string()),
                   ("b", pa.binary()), ("l", pa.list_(pa.int64()))])
    )  # fmt: skip
    expected = pl.concat([df, df.filter(pl.col("i").is_not_null())])

    def source(ctx: Context, ch: Channel[TableChunk]) -> ActorNode:
        if kind == "pandas":
            frame = table.to_pandas(types_mapper=pd.ArrowDtype)  # keeps the Arrow types
            return actors.from_pandas(ctx, ch, frame, chunk_rows=rows)
        if kind == "polars":
            polars_frame = pl.from_arrow(table)
            assert isinstance(polars_frame, pl.DataFrame)
            return actors.from_polars(ctx, ch, polars_frame, chunk_rows=rows)
        return actors.from_arrow(ctx, ch, table, chunk_rows=rows)

    def run(combine: str, sink: Callable[[Context, Channel[TableChunk]], ActorNode]) -> ActorNode:
        ctx = Context()
        a, b, c, d, e = (ctx.create_channel() for _ in range(5))
        if combine == "concat":
            joined = actors.concat(ctx, [a, d], e)
        else:
            joined = actors.merge(ctx, [a, d], e, renumber=True)
        node = sink(ctx, e)
        Network(
            ctx,
            [
                source(ctx, a),
                source(ctx, b),
                actors.filter(ctx, b, c, pl.col("i").is_not_null()),
                actors.select(ctx, c, d, "i", "f", "s", "b", "l"),
                joined,
                node,
            ],
        ).run()
        return node

    for combine in ("concat", "merge"):
        got = run(combine, lambda ctx, ch: actors.collect(ctx, ch, into="arrow")).result()
        assert got.schema.field("s").type == pa.large_string()
        got_frame = pl.from_arrow(got)
        assert isinstance(got_frame, pl.DataFrame)
        assert_frame_equal(by_all(got_frame), by_all(expected))
    target = tmp_path_factory.mktemp("out") / "both.parquet"
    run("merge", lambda ctx, ch: actors.write_parquet(ctx, ch, target))
    assert_frame_equal(by_all(pl.read_parquet(target)), by_all(expected))


def by_all(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(["i", "f", "s"], nulls_last=True)
