"""A single-rank inner or right join whose left side is read whole before the right side
streams the right side against it: its results come while the right side is still read,
and equal Polars' join."""

from __future__ import annotations

import asyncio

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from streamnet import Channel, Context, Message, Network, TableChunk, define_actor

pytestmark = pytest.mark.timeout(120)


def sort_all(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


@define_actor
async def left_then_signal(
    ctx: Context, ch_out: Channel[TableChunk], frame: pl.DataFrame, done: asyncio.Event
) -> None:
    """Send ``frame`` in chunks of 7 rows (one empty chunk if it has none), end the
    stream, then set ``done``."""
    for i, part in enumerate(frame.iter_slices(7) if frame.height else [frame]):
        await ch_out.send(ctx, Message(i, TableChunk.from_polars(part)))
    await ch_out.drain(ctx)
    done.set()


@define_actor
async def right_after(
    ctx: Context,
    ch_out: Channel[TableChunk],
    frame: pl.DataFrame,
    start: asyncio.Event,
    joined: list[int],
    out: Channel[TableChunk],
) -> None:
    """Once ``start`` is set, send ``frame`` in chunks of 5 rows (one empty chunk if it has
    none); before each, note how many results the join had sent (``joined``)."""
    await start.wait()
    for i, part in enumerate(frame.iter_slices(5) if frame.height else [frame]):
        joined.append(out.statistics().messages_sent)
        await ch_out.send(ctx, Message(i, TableChunk.from_polars(part)))
    await ch_out.drain(ctx)


def keyed(rows: int, seed: int, name: str) -> pl.DataFrame:
    """Keys in 0..9 with nulls, and a column `x` that both sides have (a suffix clash)."""
    rng = np.random.default_rng(seed)
    keys = pl.Series(rng.integers(0, 10, rows)).scatter(np.flatnonzero(rng.random(rows) < 0.1), None)
    return pl.DataFrame({"k": keys, "x": rng.integers(0, 100, rows), name: np.arange(rows)})


def run_join(
    left: pl.DataFrame, right: pl.DataFrame, how: actors.JoinHow, **options: object
) -> tuple[pl.DataFrame, actors.JoinReport, list[int], int]:
    """The join's result, report, the results sent before each right chunk, and the
    number of results."""

    async def main() -> tuple[pl.DataFrame, actors.JoinReport, list[int], int]:
        ctx = Context(channel_capacity=1)
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        left_done, joined = asyncio.Event(), list[int]()
        join = actors.join(ctx, lch, rch, out, on="k", how=how, **options)  # type: ignore[arg-type]
        sink = actors.collect(ctx, out, into="polars")
        network = Network(
            ctx,
            [
                left_then_signal(ctx, lch, left, left_done),
                right_after(ctx, rch, right, left_done, joined, out),
                join,
                sink,
            ],
        )
        await network.run_async()
        sent = network.statistics().actor(join.name).messages_out
        return sink.result(), join.result(), joined, sent

    return asyncio.run(main())


@pytest.mark.parametrize("how", ["inner", "right"])
def test_the_right_side_streams_against_a_left_side_read_whole(how: actors.JoinHow) -> None:
    left, right = keyed(30, 1, "l"), keyed(400, 2, "r")
    got, report, joined, sent = run_join(left, right, how)
    expected = left.join(right, on="k", how=how)
    assert report.strategy == "stream-right"
    assert got.columns == expected.columns
    assert_frame_equal(sort_all(got), sort_all(expected))
    # results left before the right side ended: batches of 4 x 30 left rows
    assert sent >= 3
    assert joined[-1] >= 2


@pytest.mark.parametrize(
    ("how", "options"),
    [
        ("left", {}),  # its unmatched left rows need the whole right side
        ("semi", {}),
        ("inner", {"strategy": "broadcast"}),  # a forced strategy is kept
        ("inner", {"broadcast_threshold": 100}),  # the left side is beyond the threshold
    ],
)
def test_other_joins_do_not_stream_the_right_side(
    how: actors.JoinHow, options: dict[str, object]
) -> None:
    left, right = keyed(30, 3, "l"), keyed(200, 4, "r")
    got, report, _, _ = run_join(left, right, how, **options)
    assert report.strategy != "stream-right"
    assert_frame_equal(sort_all(got), sort_all(left.join(right, on="k", how=how)))


def test_a_left_side_of_no_rows_gives_the_empty_result_with_its_schema() -> None:
    left, right = keyed(30, 5, "l").head(0), keyed(50, 6, "r")
    hows: list[actors.JoinHow] = ["inner", "right"]
    for how in hows:
        got, report, _, _ = run_join(left, right, how)
        expected = left.join(right, on="k", how=how)
        assert report.strategy == "stream-right"
        assert got.schema == expected.schema
        assert_frame_equal(sort_all(got), sort_all(expected))


def test_an_empty_right_side_gives_the_empty_result_with_its_schema() -> None:
    left, right = keyed(30, 7, "l"), keyed(50, 8, "r").head(0)
    got, report, _, _ = run_join(left, right, "inner")
    expected = left.join(right, on="k", how="inner")
    assert report.strategy == "stream-right"
    assert got.schema == expected.schema and got.height == 0


def test_a_missing_key_on_the_left_side_is_named() -> None:
    left, right = keyed(30, 9, "l").rename({"k": "other"}), keyed(50, 10, "r")
    with pytest.raises(Exception, match="`k`"):
        run_join(left, right, "inner")


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 40),
    st.integers(0, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["inner", "right"]),
)
def test_streamed_joins_equal_polars(
    left_rows: int, right_rows: int, seed: int, how: actors.JoinHow
) -> None:
    left, right = keyed(left_rows, seed, "l"), keyed(right_rows, seed + 1, "r")
    if left_rows == 0:
        left = left.head(0)
    got, _, _, _ = run_join(left, right, how)
    expected = left.join(right, on="k", how=how)
    assert got.columns == expected.columns
    assert_frame_equal(sort_all(got), sort_all(expected))
