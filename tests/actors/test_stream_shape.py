"""rechunk, limit, concat: equal to Polars on random data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from actors.testing import run_pipeline
from streamnet import Channel, Context, Message, Network, TableChunk, define_actor


def recording(sizes: list[int]) -> Callable[[pa.Table], pa.Table]:
    """A ``map_chunks`` kernel that notes each chunk's rows in ``sizes`` and passes it on."""

    def record(table: pa.Table) -> pa.Table:
        sizes.append(table.num_rows)
        return table

    return record


@given(frames(max_rows=80), chunk_rows, st.integers(1, 30))
def test_rechunk_to_rows_keeps_data_and_cuts_exact_sizes(
    df: pl.DataFrame, rows: int, target: int
) -> None:
    sizes: list[int] = []
    out = run_pipeline(
        df,
        lambda c, i, o: actors.rechunk(c, i, o, rows=target),
        lambda c, i, o: actors.map_chunks(c, i, o, recording(sizes), in_thread=False),
        chunk_rows=rows,
    )
    assert_frame_equal(out, df)
    if df.height:
        assert all(s == target for s in sizes[:-1])
        assert 0 < sizes[-1] <= target
        assert sum(sizes) == df.height


def test_rechunk_by_bytes() -> None:
    table = pa.table({"x": pa.array(range(1000), pa.int64())})  # 8 bytes a row
    sizes: list[int] = []
    out = run_pipeline(
        table,
        lambda c, i, o: actors.rechunk(c, i, o, chunk_bytes=1600),
        lambda c, i, o: actors.map_chunks(c, i, o, recording(sizes), in_thread=False),
        chunk_rows=7,
        into="arrow",
    )
    assert out.equals(table)
    assert sizes == [200] * 5


@settings(max_examples=20)
@given(st.integers(1, 3), st.integers(1, 400), st.integers(1, 50), st.integers(8, 400))
def test_rechunk_by_bytes_sizes_from_the_first_chunk_with_rows(
    empties: int, n: int, rows: int, chunk_bytes: int
) -> None:
    """Before, an empty first chunk made ``chunk_bytes`` count rows (one byte a row)."""
    table = pa.table({"x": pa.array(range(n), pa.int64())})  # 8 bytes a row
    chunks = [table.slice(0, 0)] * empties + [table.slice(i, rows) for i in range(0, n, rows)]
    sizes: list[int] = []

    @define_actor
    async def chunked(ctx: Context, ch_out: Channel[Any]) -> None:
        for seq, part in enumerate(chunks):
            await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(part)))

    ctx = Context()
    a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, c)
    Network(
        ctx,
        [
            chunked(ctx, a),
            actors.rechunk(ctx, a, b, chunk_bytes=chunk_bytes),
            actors.map_chunks(ctx, b, c, recording(sizes), in_thread=False),
            sink,
        ],
    ).run()
    assert sink.result().equals(table)
    target = max(1, chunk_bytes // 8)
    assert sizes[:-1] == [target] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= target


@given(frames(max_rows=80), chunk_rows, st.integers(0, 100))
def test_limit_equals_polars_head(df: pl.DataFrame, rows: int, n: int) -> None:
    out = run_pipeline(df, lambda c, i, o: actors.limit(c, i, o, n), chunk_rows=rows)
    assert_frame_equal(out, df.head(n))


@given(st.lists(frames(max_rows=20), min_size=1, max_size=4), chunk_rows)
def test_concat_equals_polars_concat(dfs: list[pl.DataFrame], rows: int) -> None:
    ctx = Context()
    ins = [ctx.create_channel() for _ in dfs]
    out = ctx.create_channel()
    sink = actors.collect(ctx, out, into="polars")
    sources = [
        actors.from_polars(ctx, ch, df, chunk_rows=rows) for ch, df in zip(ins, dfs, strict=True)
    ]
    Network(ctx, [*sources, actors.concat(ctx, ins, out), sink]).run()
    assert_frame_equal(sink.result(), pl.concat(dfs))


def test_bad_shape_arguments() -> None:
    df = pl.DataFrame({"x": [1]})
    with pytest.raises(ValueError, match="give `rows` or `chunk_bytes`"):
        run_pipeline(df, lambda c, i, o: actors.rechunk(c, i, o))
    with pytest.raises(ValueError, match="`n` must be an int >= 0"):
        run_pipeline(df, lambda c, i, o: actors.limit(c, i, o, -1))
