"""groupby_agg with keys=[]: one group of the whole stream, equal to Polars' ``select``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import numpy as np
import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_collectives import AGG_SETS, Spec, agg_items, keyed_frames, run_collective, split

import actors
from actors.testing import Stage
from streamnet import (
    Channel,
    ColumnNotFoundError,
    Context,
    Message,
    Network,
    TableChunk,
    define_actor,
)

RANKS = st.integers(1, 4)
EVERY_AGG: list[Spec] = [
    *[("v", how) for how in get_args(actors.AggHow) if how != "len"],
    *[("name", how) for how in ["count", "min", "max", "first", "last", "n_unique"]],
    ("k", "sum", "k_total"),
    ("*", "len"),
]


def expected_of(df: pl.DataFrame, aggs: Sequence[Spec]) -> pl.DataFrame:
    return df.select([a.polars() for a in agg_items(aggs)])


def check_outputs(outs: list[pl.DataFrame], expected: pl.DataFrame) -> None:
    """One row on rank 0, equal to Polars; every other rank one empty frame of the same schema."""
    assert outs[0].height == 1
    assert_frame_equal(outs[0], expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    for out in outs[1:]:
        assert out.height == 0
        assert out.schema == expected.schema


@settings(max_examples=30)
@given(
    keyed_frames(),
    RANKS,
    st.sampled_from([*AGG_SETS, EVERY_AGG]),
    st.sampled_from([None, "first", "last"]),
    st.integers(1, 12),
)
def test_global_aggregation_equals_polars_select(
    df: pl.DataFrame, nranks: int, aggs: list[Spec], empty: str | None, chunk_rows: int
) -> None:
    nranks = ranks.size(nranks)
    empty_rank = {None: None, "first": 0, "last": nranks - 1}[empty]
    parts = split(df, nranks, empty_rank if nranks > 1 else None)
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, [], aggs), chunk_rows=chunk_rows
    )
    check_outputs(outs, expected_of(pl.concat(parts), aggs))


@pytest.mark.parametrize("nranks", [1, 2, 4])
def test_global_aggregation_of_an_empty_stream_is_polars_row_for_an_empty_frame(
    nranks: int,
) -> None:
    nranks = ranks.size(nranks)
    empty = pl.DataFrame(
        schema={"k": pl.Int64, "name": pl.String, "v": pl.Int64},
    )
    outs = run_collective(
        [empty] * nranks, lambda c, i, o: actors.groupby_agg(c, i, o, (), EVERY_AGG)
    )
    expected = expected_of(empty, EVERY_AGG)
    row = expected.row(0, named=True)
    assert row["v_sum"] == 0 and row["v_count"] == 0 and row["len"] == 0
    assert row["v_n_unique"] == 0 and row["v_mean"] is None and row["v_first"] is None
    check_outputs(outs, expected)


@define_actor
async def no_chunks(ctx: Context, ch_out: Channel[TableChunk]) -> None:
    await ch_out.drain(ctx)


@pytest.mark.parametrize("nranks", [1, 3])
def test_global_aggregation_without_any_chunk_gives_the_row_for_null_columns(nranks: int) -> None:
    nranks = ranks.size(nranks)
    aggs = [("v", "sum"), ("v", "n_unique"), ("v", "first"), ("*", "len")]

    async def job(ctx: Context) -> pl.DataFrame:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        await Network(
            ctx, [no_chunks(ctx, a), actors.groupby_agg(ctx, a, b, [], aggs), sink]
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    outs = ranks.run(nranks, job)
    check_outputs(outs, expected_of(pl.DataFrame(schema={"v": pl.Null}), aggs))


@define_actor
async def backwards(ctx: Context, ch_out: Channel[TableChunk], df: pl.DataFrame) -> None:
    """Rows of ``df`` one chunk each, sent from the last sequence number to the first."""
    for i in reversed(range(df.height)):
        await ch_out.send(ctx, Message(i, TableChunk.from_polars(df.slice(i, 1))))
    await ch_out.drain(ctx)


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_global_first_and_last_follow_rank_then_sequence_order(nranks: int) -> None:
    nranks = ranks.size(nranks)
    df = pl.DataFrame({"v": [None, 4, 7, 1, 9, 3, None, 2, 8]})
    parts = split(df, nranks, None)
    aggs = [("v", "first"), ("v", "last"), ("v", "sum")]

    async def job(ctx: Context) -> pl.DataFrame:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        await Network(
            ctx,
            [backwards(ctx, a, parts[ctx.rank]), actors.groupby_agg(ctx, a, b, [], aggs), sink],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    check_outputs(ranks.run(nranks, job), expected_of(df, aggs))


@pytest.mark.parametrize("nranks", [1, 2])
def test_global_aggregation_of_many_large_chunks_merges_partials_and_stays_exact(
    nranks: int,
) -> None:
    nranks = ranks.size(nranks)
    rng = np.random.default_rng(7)
    n = 240_000
    values = rng.integers(-(10**6), 10**6, n).astype(float)
    values[rng.random(n) < 0.1] = np.nan
    df = pl.DataFrame({"v": pl.Series(values).fill_nan(None), "k": rng.integers(0, 10, n)})
    aggs = [("v", how) for how in actors.AggHow.__args__ if how != "len"]  # type: ignore[attr-defined]
    aggs += [("k", "n_unique"), ("*", "len")]
    parts = [df.slice(r * n // nranks, n // nranks) for r in range(nranks)]
    # 300-row chunks: hundreds of partial rows; 40k-row chunks: n_unique partials of
    # hundreds of KiB each. Both merge on the way.
    for chunk_rows in (300, 40_000):
        outs = run_collective(
            parts, lambda c, i, o: actors.groupby_agg(c, i, o, [], aggs), chunk_rows=chunk_rows
        )
        check_outputs(outs, expected_of(df, aggs))


def test_global_aggregation_sends_one_small_row_per_rank() -> None:
    nranks = ranks.size(3)
    df = pl.DataFrame({"v": range(30_000), "w": [1.5] * 30_000})
    parts = split(df, nranks, None)
    aggs = {"v": ["sum", "mean", "first", "last"], "w": ["std", "max"]}

    async def job(ctx: Context) -> tuple[Any, pl.DataFrame]:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        node = actors.groupby_agg(ctx, a, b, [], aggs)
        source = actors.from_polars(ctx, a, parts[ctx.rank], chunk_rows=100)
        await Network(ctx, [source, node, sink]).run_async()
        return node.result(), sink.result()

    results = ranks.run(nranks, job)
    expected = df.select(
        pl.col("v").sum().alias("v_sum"),
        pl.col("v").mean().alias("v_mean"),
        pl.col("v").first().alias("v_first"),
        pl.col("v").last().alias("v_last"),
        pl.col("w").std().alias("w_std"),
        pl.col("w").max().alias("w_max"),
    )
    check_outputs([out for _, out in results], expected)
    root, *others = [report for report, _ in results]
    for rank, report in enumerate(others, start=1):
        assert list(report.bytes_sent) == [0] and report.bytes_received == {}
        assert 0 < report.bytes_sent[0] < 1_000  # one merged row, not rows of data
        assert root.bytes_received[rank] == report.bytes_sent[0]
    assert root.bytes_sent == {}


def test_global_aggregation_rejects_bad_input_naming_the_actor() -> None:
    df = pl.DataFrame({"k": [1], "name": ["a"], "v": [2]})

    def run(make: Stage) -> None:
        run_collective([df] * ranks.size(1), make)

    with pytest.raises(ValueError, match=r"groupby_agg: keys must be .* or \[\]"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, None, {"v": "sum"}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"groupby_agg: keys must be .* got \[1\]"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, [1], {"v": "sum"}))  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"actor `groupby_agg#0`: aggregation 'sum' .* `name`"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, [], {"name": "sum"}))
    with pytest.raises(ColumnNotFoundError, match="actor `groupby_agg#0`: column `w` not found"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, [], {"w": "sum"}))
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, [], {"v": "median"}))
