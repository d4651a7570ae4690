"""Each collective equals Polars on random data, on 1 to 4 in-process ranks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, cast

import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from actors.testing import Stage
from streamnet import Channel, Context, Message, Network, SchemaError, TableChunk, define_actor

RANKS = st.integers(1, 4)
Spec = tuple[str, str] | tuple[str, str, str]
"""An aggregation as ``(column, how[, name])``; column ``*`` with ``len`` counts rows."""


def agg_items(aggs: Sequence[Spec]) -> list[actors.Agg]:
    """The :class:`actors.Agg` of each spec, for Polars' own aggregation."""
    return [
        actors.Agg(None if a[0] == "*" else a[0], cast(actors.AggHow, a[1]), *a[2:]) for a in aggs
    ]


@st.composite
def keyed_frames(draw: st.DrawFn, max_rows: int = 80) -> pl.DataFrame:
    """Numeric and string keys with nulls and skew (a few keys can dominate)."""
    n = draw(st.integers(0, max_rows))
    hot = draw(st.booleans())
    ints = st.one_of(st.none(), st.integers(0, 2 if hot else 30))
    keys = draw(st.lists(ints, min_size=n, max_size=n))
    names = draw(
        st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "cc"])), min_size=n, max_size=n)
    )
    values = draw(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=n, max_size=n))
    return pl.DataFrame(
        {"k": keys, "name": names, "v": values},
        schema={"k": pl.Int64, "name": pl.String, "v": pl.Int64},
    )


def split(df: pl.DataFrame, nranks: int, empty_rank: int | None) -> list[pl.DataFrame]:
    """Rows dealt to ranks in contiguous slices; ``empty_rank`` gets none."""
    ranks = [r for r in range(nranks) if r != empty_rank] or [0]
    parts = {r: df.head(0) for r in range(nranks)}
    step = -(-df.height // len(ranks)) if df.height else 0
    for i, r in enumerate(ranks):
        parts[r] = df.slice(i * step, step) if step else df.head(0)
    return [parts[r] for r in range(nranks)]


def run_collective(parts: list[pl.DataFrame], make: Stage, *, chunk_rows: int = 7) -> list[pl.DataFrame]:
    async def job(ctx: Context) -> pl.DataFrame:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        source = actors.from_polars(ctx, a, parts[ctx.rank], chunk_rows=chunk_rows)
        await Network(ctx, [source, make(ctx, a, b), sink]).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    return ranks.run(len(parts), job)


def sort_all(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


@settings(max_examples=25)
@given(keyed_frames(), RANKS, st.booleans())
def test_shuffle_puts_each_key_on_one_rank_and_loses_nothing(
    df: pl.DataFrame, nranks: int, empty: bool
) -> None:
    nranks = ranks.size(nranks)
    parts = split(df, nranks, nranks - 1 if empty else None)
    outs = run_collective(
        parts, lambda c, i, o: actors.shuffle(c, i, o, ["k", "name"], num_partitions=2 * nranks)
    )
    got = (
        pl.concat([o for o in outs if o.width], how="vertical_relaxed")
        if any(o.width for o in outs)
        else df.head(0)
    )
    assert_frame_equal(sort_all(got), sort_all(pl.concat(parts)))
    seen: dict[tuple[Any, ...], int] = {}
    for rank, out in enumerate(outs):
        for key in out.select("k", "name").unique().iter_rows():
            assert seen.setdefault(key, rank) == rank, f"key {key} on ranks {seen[key]} and {rank}"


AGG_SETS: list[list[Spec]] = [
    [("v", "sum"), ("v", "count"), ("*", "len"), ("v", "mean"), ("v", "min"), ("v", "max")],
    [("v", "first"), ("v", "last"), ("v", "std"), ("v", "var")],
    [("v", "n_unique"), ("v", "sum", "total"), ("name", "first")],
]


@settings(max_examples=25)
@given(
    keyed_frames(),
    RANKS,
    st.sampled_from(AGG_SETS),
    st.sampled_from([["k"], ["k", "name"], ["name"]]),
    st.booleans(),
)
def test_groupby_agg_equals_polars(
    df: pl.DataFrame, nranks: int, aggs: list[Spec], keys: list[str], empty: bool
) -> None:
    nranks = ranks.size(nranks)
    parts = split(df, nranks, 0 if empty and nranks > 1 else None)
    outs = run_collective(parts, lambda c, i, o: actors.groupby_agg(c, i, o, keys, aggs))
    items = agg_items(aggs)
    expected = pl.concat(parts).group_by(keys).agg([a.polars() for a in items])
    got = pl.concat(outs)
    assert_frame_equal(
        got.sort(keys, nulls_last=True),
        expected.sort(keys, nulls_last=True),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-9,
    )


@settings(max_examples=20)
@given(
    keyed_frames(),
    keyed_frames(max_rows=30),
    RANKS,
    st.sampled_from(["inner", "left", "right", "full", "semi", "anti"]),
    st.sampled_from(["auto", "shuffle", "broadcast"]),
)
def test_join_equals_polars(
    left: pl.DataFrame,
    right: pl.DataFrame,
    nranks: int,
    how: actors.JoinHow,
    strategy: actors.JoinStrategy,
) -> None:
    nranks = ranks.size(nranks)
    if strategy == "broadcast" and how in ("right", "full"):
        return
    lparts, rparts = split(left, nranks, None), split(right, nranks, nranks - 1)

    async def job(ctx: Context) -> pl.DataFrame:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        await Network(
            ctx,
            [
                actors.from_polars(ctx, lch, lparts[ctx.rank], chunk_rows=9),
                actors.from_polars(ctx, rch, rparts[ctx.rank], chunk_rows=5),
                actors.join(ctx, lch, rch, out, on=["k", "name"], how=how, strategy=strategy),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    got = pl.concat(ranks.run(nranks, job))
    expected = left.join(right, on=["k", "name"], how=how)
    assert got.columns == expected.columns
    assert_frame_equal(sort_all(got), sort_all(expected))


def test_join_on_differently_named_and_typed_keys() -> None:
    left = pl.DataFrame({"id": pl.Series([1, 2, 3, None], dtype=pl.Int32), "x": [1, 2, 3, 4]})
    right = pl.DataFrame({"key": pl.Series([3, 1, 5], dtype=pl.Int32), "x": [30, 10, 50]})

    async def job(ctx: Context) -> pl.DataFrame:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        await Network(
            ctx,
            [
                actors.from_polars(ctx, lch, left if ctx.rank == 0 else left.head(0)),
                actors.from_polars(ctx, rch, right if ctx.rank == 1 else right.head(0)),
                actors.join(
                    ctx, lch, rch, out, left_on="id", right_on="key", how="left", strategy="shuffle"
                ),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    got = pl.concat(ranks.run(ranks.size(2), job))
    expected = left.join(right, left_on="id", right_on="key", how="left")
    assert_frame_equal(sort_all(got), sort_all(expected))


def test_auto_join_broadcasts_small_and_shuffles_large() -> None:
    left = pl.DataFrame({"k": range(1000), "x": range(1000)})
    small = pl.DataFrame({"k": range(0, 1000, 10), "y": range(100)})

    def run(threshold: int) -> tuple[str, pl.DataFrame]:
        async def job(ctx: Context) -> tuple[str, pl.DataFrame]:
            lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
            sink = actors.collect(ctx, out, into="polars")
            j = actors.join(ctx, lch, rch, out, on="k", broadcast_threshold=threshold)
            await Network(
                ctx,
                [
                    actors.from_polars(ctx, lch, left.slice(ctx.rank * 500, 500), chunk_rows=100),
                    actors.from_polars(ctx, rch, small.slice(ctx.rank * 50, 50), chunk_rows=10),
                    j,
                    sink,
                ],
            ).run_async()
            return j.result().strategy, sink.result()

        results = ranks.run(ranks.size(2), job)
        assert results[0][0] == results[1][0]  # every rank chose the same way
        return results[0][0], pl.concat([r[1] for r in results])

    chosen, got = run(10 * 2**20)
    assert chosen == "broadcast"
    assert got.height == 100
    chosen, got = run(100)
    assert chosen == "shuffle"
    assert got.height == 100


def test_join_rejects_broadcast_of_a_full_join() -> None:
    async def job(ctx: Context) -> None:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        df = pl.DataFrame({"k": [1]})
        await Network(
            ctx,
            [
                actors.from_polars(ctx, lch, df),
                actors.from_polars(ctx, rch, df),
                actors.join(ctx, lch, rch, out, on="k", how="full", strategy="broadcast"),
                actors.collect(ctx, out),
            ],
        ).run_async()

    with pytest.raises(ValueError, match="how='full' cannot broadcast"):
        ranks.run(ranks.size(1), job)


@settings(max_examples=20)
@given(
    keyed_frames(),
    RANKS,
    st.sampled_from([(False, False), (True, True), ([True, False], [False, True])]),
    st.booleans(),
)
def test_sort_then_ordered_allgather_equals_polars_sort(
    df: pl.DataFrame, nranks: int, flags: tuple[bool | list[bool], bool | list[bool]], empty: bool
) -> None:
    nranks = ranks.size(nranks)
    desc, nulls_last = flags
    parts = split(df, nranks, nranks - 1 if empty else None)

    async def job(ctx: Context) -> pl.DataFrame:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, c, into="polars")
        await Network(
            ctx,
            [
                actors.from_polars(ctx, a, parts[ctx.rank], chunk_rows=6),
                actors.sort(ctx, a, b, ["k", "name"], descending=desc, nulls_last=nulls_last),
                actors.allgather(ctx, b, c),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    expected = pl.concat(parts).sort(["k", "name"], descending=desc, nulls_last=nulls_last)
    for got in ranks.run(nranks, job):
        if expected.height == 0:
            assert got.height == 0
            continue
        assert_frame_equal(got.select("k", "name"), expected.select("k", "name"))
        assert_frame_equal(sort_all(got), sort_all(expected))


@settings(max_examples=20)
@given(keyed_frames(), RANKS, st.integers(0, 20))
def test_top_k_equals_polars(df: pl.DataFrame, nranks: int, k: int) -> None:
    nranks = ranks.size(nranks)
    parts = split(df, nranks, None)
    outs = run_collective(
        parts,
        lambda c, i, o: actors.top_k(
            c, i, o, ["v", "k"], k, descending=[True, False], nulls_last=True
        ),
    )
    expected = pl.concat(parts).sort(["v", "k"], descending=[True, False], nulls_last=True).head(k)
    for got in outs:
        assert_frame_equal(got.select("v", "k"), expected.select("v", "k"))


@settings(max_examples=20)
@given(
    keyed_frames(),
    RANKS,
    st.sampled_from([None, ["k"], ["k", "name"]]),
    st.sampled_from(["any", "first", "last"]),
)
def test_distinct_equals_polars(
    df: pl.DataFrame, nranks: int, subset: list[str] | None, keep: actors.DistinctKeep
) -> None:
    nranks = ranks.size(nranks)
    parts = split(df, nranks, None)
    outs = run_collective(parts, lambda c, i, o: actors.distinct(c, i, o, subset, keep=keep))
    got = pl.concat(outs)
    expected = pl.concat(parts).unique(subset=subset, keep=keep, maintain_order=True)
    if keep == "any":
        cols = subset or df.columns
        assert_frame_equal(sort_all(got.select(cols)), sort_all(expected.select(cols)))
        assert got.height == expected.height
    else:
        assert_frame_equal(sort_all(got), sort_all(expected))


@pytest.mark.parametrize(("nranks", "ordered"), list(itertools.product([1, 2, 4], [True, False])))
def test_allgather_gives_every_rank_everything(nranks: int, ordered: bool) -> None:
    nranks = ranks.size(nranks)
    parts = [pl.DataFrame({"r": [r] * 20, "i": range(20)}) for r in range(nranks)]
    outs = run_collective(
        parts, lambda c, i, o: actors.allgather(c, i, o, ordered=ordered), chunk_rows=3
    )
    expected = pl.concat(parts)
    for got in outs:
        if ordered:
            assert_frame_equal(got, expected)
        else:
            assert_frame_equal(sort_all(got), sort_all(expected))


@pytest.mark.parametrize("nranks", [1, 2])
def test_groupby_agg_with_nearly_unique_keys_switches_to_row_partials_and_stays_exact(
    nranks: int,
) -> None:
    nranks = ranks.size(nranks)
    import numpy as np

    rng = np.random.default_rng(5)
    n = 60_000
    values = rng.integers(-100, 100, n).astype(float)
    values[rng.random(n) < 0.2] = np.nan
    df = pl.DataFrame(
        {"k": rng.integers(0, n, n), "v": pl.Series(values).fill_nan(None)}
    )  # about 38k groups in 60k rows: grouping a chunk barely shrinks it
    aggs: list[Spec] = [
        (c, h)
        for c in ["v"]
        for h in ["sum", "count", "mean", "min", "max", "first", "last", "std", "var"]
    ]
    aggs.append(("*", "len"))
    parts = [df.slice(r * n // nranks, n // nranks) for r in range(nranks)]
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, "k", aggs), chunk_rows=15_000
    )
    items = agg_items(aggs)
    expected = df.group_by("k").agg([a.polars() for a in items]).sort("k")
    assert_frame_equal(
        pl.concat(outs).sort("k"), expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9
    )


@pytest.mark.parametrize(
    ("nranks", "strategy"), [(1, "auto"), (2, "auto"), (2, "shuffle"), (2, "broadcast")]
)
def test_self_join_through_a_fanout_does_not_deadlock(
    nranks: int, strategy: actors.JoinStrategy
) -> None:
    """Both join inputs come from one fanout: the join must read them concurrently."""
    nranks = ranks.size(nranks)
    df = pl.DataFrame({"k": [i % 50 for i in range(4000)], "v": range(4000)})
    parts = split(df, nranks, None)

    async def job(ctx: Context) -> pl.DataFrame:
        src, left, right, out = (ctx.create_channel(capacity=1) for _ in range(4))
        sink = actors.collect(ctx, out, into="polars")
        await Network(
            ctx,
            [
                actors.from_polars(ctx, src, parts[ctx.rank], chunk_rows=50),
                actors.fanout(ctx, src, [left, right]),
                actors.join(
                    ctx,
                    left,
                    right,
                    out,
                    on="k",
                    how="semi",
                    strategy=strategy,
                    broadcast_threshold=2_000,
                ),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    got = pl.concat(ranks.run(nranks, job, within=30))
    assert_frame_equal(sort_all(got), sort_all(df.join(df, on="k", how="semi")))


def test_contiguous_placement_gives_each_rank_a_block_of_partitions() -> None:
    from streamnet import contiguous

    assert [contiguous(7)(p, 3) for p in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    assert [contiguous(2)(p, 2) for p in range(2)] == [0, 1]


@pytest.mark.parametrize("nranks", [2, 3])
@pytest.mark.parametrize("types", [(pl.Int16, pl.UInt8), (pl.Int8, pl.UInt64), (pl.Int64, pl.UInt32)])
def test_a_shuffled_join_on_several_keys_of_either_sign_equals_polars(
    nranks: int, types: tuple[type[pl.DataType], type[pl.DataType]]
) -> None:
    signed, unsigned = types
    left = pl.DataFrame({"a": [1] * 20, "k": pl.Series(range(20), dtype=signed), "x": range(20)})
    right = pl.DataFrame({"a": [1] * 20, "k": pl.Series(range(20), dtype=unsigned), "y": range(20)})
    nranks = ranks.size(nranks)
    lparts, rparts = split(left, nranks, nranks - 1), split(right, nranks, 0)

    async def job(ctx: Context) -> pl.DataFrame:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        await Network(ctx, [
            actors.from_polars(ctx, lch, lparts[ctx.rank], chunk_rows=6),
            actors.from_polars(ctx, rch, rparts[ctx.rank], chunk_rows=6),
            actors.join(ctx, lch, rch, out, on=["a", "k"], strategy="shuffle"),
            sink,
        ]).run_async()  # fmt: skip
        frame: pl.DataFrame = sink.result()
        return frame

    got = pl.concat(ranks.run(nranks, job))
    assert sorted(got["x"].to_list()) == list(range(20))
    assert (got["x"] == got["y"]).all()


SCRATCH = pl.DataFrame({"k": [i % 13 for i in range(40)], "__partition": [f"p{i}" for i in range(40)]})


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("what", ["sort", "distinct", "groupby_agg"])
def test_a_column_named_like_a_scratch_column_is_kept(what: str, nranks: int) -> None:
    """Partitioning names its partition ids apart from the columns (`__partition` is a
    user's column here), with 8 partitions: Polars' partition_by rather than filters."""
    make = {
        "sort": lambda c, a, b: actors.sort(c, a, b, ["k", "__partition"]),
        "distinct": lambda c, a, b: actors.distinct(c, a, b, num_partitions=8),
        "groupby_agg": lambda c, a, b: actors.groupby_agg(
            c, a, b, "__partition", [("k", "sum")], num_partitions=8
        ),
    }[what]
    got = pl.concat(run_collective(split(SCRATCH, ranks.size(nranks), None), make))
    expected = {
        "sort": SCRATCH.sort("k", "__partition"),
        "distinct": SCRATCH.unique(),
        "groupby_agg": SCRATCH.group_by("__partition").agg(pl.col("k").sum().alias("k_sum")),
    }[what]
    if what == "sort":
        assert_frame_equal(got, expected)
    else:
        assert_frame_equal(sort_all(got), sort_all(expected))


def test_a_column_named_like_a_stream_order_column_is_refused_by_name() -> None:
    df = pl.DataFrame({"k": [1, 1, 2], "__rank": [7, 8, 9]})
    with pytest.raises(SchemaError, match=r"column `__rank`, a name the stream-order columns"):
        run_collective(split(df, ranks.size(1), None), lambda c, a, b: actors.distinct(c, a, b, "k", keep="first"))


@define_actor()
async def whole_then(
    ctx: Context, ch_out: Channel[TableChunk], frame: pl.DataFrame, ended: asyncio.Event
) -> None:
    """Send ``frame`` as one chunk and end the stream, then set ``ended``: a join's left
    side that is read whole before its right side comes."""
    await ch_out.send(ctx, Message(0, TableChunk.from_polars(frame)))
    await ch_out.drain(ctx)
    ended.set()


@pytest.mark.skipif(ranks.UNDER_MPI, reason="a single-rank join: each rank here is one of a job")
def test_an_inner_join_streams_its_right_side_once_its_left_side_is_read_whole() -> None:
    """A small left side that ends while the large right side is still coming is built:
    each right chunk gives its rows at once. Here the right source sends its last chunk
    only once a joined row has come out, which a join building the right side would never
    give; its rows and columns are Polars' and it reports the left side built."""
    left = pl.DataFrame({"k": [1, 2], "a": ["x", "y"]})
    right = [pl.DataFrame({"k": [i % 4] * 4, "a": [f"r{i}"] * 4, "b": [i] * 4}) for i in range(3)]

    @define_actor()
    async def large(ctx: Context, ch_out: Channel[TableChunk]) -> None:
        await left_done.wait()
        for seq, frame in enumerate(right[:2]):
            await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
        await asyncio.wait_for(joined.wait(), timeout=30)  # a row came out before the end
        await ch_out.send(ctx, Message(2, TableChunk.from_polars(right[2])))
        await ch_out.drain(ctx)

    @define_actor()
    async def watch(ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]) -> None:
        while (msg := await ch_in.recv(ctx)) is not None:
            joined.set()
            await ch_out.send(ctx, msg)
        await ch_out.drain(ctx)

    async def main() -> tuple[pl.DataFrame, actors.JoinReport]:
        with Context() as ctx:
            lch, rch, joined_ch, out = (ctx.create_channel() for _ in range(4))
            sink = actors.collect(ctx, out, into="polars")
            join = actors.join(ctx, lch, rch, joined_ch, on="k")
            await asyncio.wait_for(
                Network(ctx, [
                    whole_then(ctx, lch, left, left_done), large(ctx, rch), join,
                    watch(ctx, joined_ch, out), sink,
                ]).run_async(),
                timeout=60,
            )  # fmt: skip
            return sink.result(), join.result()

    left_done, joined = asyncio.Event(), asyncio.Event()
    got, report = asyncio.run(main())
    want = left.join(pl.concat(right), on="k")
    assert got.columns == want.columns
    assert_frame_equal(sort_all(got), sort_all(want))
    assert report.strategy == "broadcast" and report.built == "left"


@pytest.mark.skipif(ranks.UNDER_MPI, reason="a single-rank join: each rank here is one of a job")
def test_a_join_streaming_its_right_side_that_fails_ends_the_network_with_its_error() -> None:
    """Keys that cannot be joined fail on the first right chunk probed against a left
    side built whole: the network raises the join's `SchemaError` while the right source
    still has chunks to send, and nothing is left waiting."""
    left = pl.DataFrame({"k": [1, 2]})

    @define_actor()
    async def large(ctx: Context, ch_out: Channel[TableChunk]) -> None:
        await left_done.wait()
        for seq in range(100):  # far more than the join reads before it fails
            frame = pl.DataFrame({"k": ["1"] * 4, "b": [seq] * 4})
            await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
        await ch_out.drain(ctx)

    async def main() -> None:
        with Context() as ctx:
            lch, rch, out = (ctx.create_channel() for _ in range(3))
            await asyncio.wait_for(
                Network(ctx, [
                    whole_then(ctx, lch, left, left_done), large(ctx, rch),
                    actors.join(ctx, lch, rch, out, on="k"),
                    actors.collect(ctx, out, into="polars"),
                ]).run_async(),
                timeout=60,
            )  # fmt: skip

    left_done = asyncio.Event()
    with pytest.raises(SchemaError, match="the key types cannot be joined"):
        asyncio.run(main())


@pytest.mark.skipif(ranks.UNDER_MPI, reason="a single-rank join: each rank here is one of a job")
def test_a_join_streaming_its_right_side_stops_when_a_limit_downstream_has_its_rows() -> None:
    """A limit after a join built on its left side closes the join's output early: the
    join and the right source stop (the source would send a thousand chunks), and the
    network ends well with the limit's rows."""
    left = pl.DataFrame({"k": [1, 2]})
    sent: list[int] = []

    @define_actor()
    async def large(ctx: Context, ch_out: Channel[TableChunk]) -> None:
        await left_done.wait()
        for seq in range(1000):
            frame = pl.DataFrame({"k": [1, 2, 3, 4], "b": [seq] * 4})
            await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
            sent.append(seq)
        await ch_out.drain(ctx)

    async def main() -> pl.DataFrame:
        with Context() as ctx:
            lch, rch, joined, out = (ctx.create_channel() for _ in range(4))
            sink = actors.collect(ctx, out, into="polars")
            await asyncio.wait_for(
                Network(ctx, [
                    whole_then(ctx, lch, left, left_done), large(ctx, rch),
                    actors.join(ctx, lch, rch, joined, on="k"),
                    actors.limit(ctx, joined, out, 3), sink,
                ]).run_async(),
                timeout=60,
            )  # fmt: skip
            frame: pl.DataFrame = sink.result()
            return frame

    left_done = asyncio.Event()
    got = asyncio.run(main())
    assert got.height == 3 and set(got["k"]) <= {1, 2}
    assert len(sent) < 1000  # the source stopped early
