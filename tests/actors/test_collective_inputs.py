"""Collective inputs: one schema per stream on every rank, and ranks whose stream has no chunk.

Results are compared with Polars on the same rows, on 1 to 3 in-process ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import frames
from test_collectives import Spec, agg_items

import actors
from streamnet import (
    ActorNode,
    Channel,
    ColumnNotFoundError,
    Context,
    Message,
    Network,
    SchemaError,
    TableChunk,
    define_actor,
)

SILENCES = st.integers(1, 3).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))
)
"""A number of ranks, and the ranks whose stream has no chunk at all."""


@define_actor
async def source(ctx: Context, ch_out: Channel[Any], frame: pl.DataFrame, silent: bool, rows: int = 7) -> None:
    """``frame`` in chunks of ``rows``; a silent rank sends nothing, not even an empty chunk."""
    if silent:
        return
    for seq, offset in enumerate(range(0, max(frame.height, 1), rows)):
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame.slice(offset, rows))))


def ranks_and_silent(silences: tuple[int, set[int]]) -> tuple[int, set[int]]:
    """The ranks a test runs on (all of an MPI job's), and the silent ones among them."""
    nranks = ranks.size(silences[0])
    return nranks, {r for r in silences[1] if r < nranks}


def deal(df: pl.DataFrame, nranks: int, silent: set[int]) -> list[pl.DataFrame]:
    """Rows dealt in contiguous slices to the ranks that are not silent."""
    talking = [r for r in range(nranks) if r not in silent]
    parts = {r: df.head(0) for r in range(nranks)}
    step = -(-df.height // len(talking)) if talking and df.height else 0
    for i, r in enumerate(talking):
        parts[r] = df.slice(i * step, step) if step else df.head(0)
    return [parts[r] for r in range(nranks)]


Make = Callable[[Context, Any, Any], Any]


def run_one(parts: list[pl.DataFrame], silent: set[int], make: Make) -> list[pl.DataFrame]:
    """Each rank's collected output of ``source -> make -> collect``."""

    async def job(ctx: Context) -> pl.DataFrame:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        src = source(ctx, a, parts[ctx.rank], ctx.rank in silent)
        await Network(ctx, [src, make(ctx, a, b), sink]).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    return ranks.run(len(parts), job)


def stacked(outs: list[pl.DataFrame], like: pl.DataFrame) -> pl.DataFrame:
    """The ranks' outputs together; every output has the schema of ``like``."""
    for out in outs:
        assert out.schema == like.schema
    return pl.concat(outs)


def by_all(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


# -- ranks whose stream has no chunk ------------------------------------------------------------


@settings(max_examples=12)
@given(frames(), SILENCES)
def test_shuffle_and_distinct_accept_ranks_without_a_chunk(
    df: pl.DataFrame, silences: tuple[int, set[int]]
) -> None:
    nranks, silent = ranks_and_silent(silences)
    parts = deal(df, nranks, silent)
    if len(silent) == nranks:
        outs = run_one(parts, silent, lambda c, i, o: actors.shuffle(c, i, o, "i"))
        assert all(out.shape == (0, 0) for out in outs)  # no chunk anywhere: none out
        return
    got = stacked(run_one(parts, silent, lambda c, i, o: actors.shuffle(c, i, o, "i")), df)
    assert_frame_equal(by_all(got), by_all(df))
    keeps: tuple[actors.DistinctKeep, ...] = ("any", "first")
    for keep in keeps:
        outs = run_one(parts, silent, partial(actors.distinct, subset="s", keep=keep))
        expected = df.unique(subset="s", keep=keep, maintain_order=True)
        got = stacked(outs, df)
        if keep == "any":
            assert_frame_equal(by_all(got.select("s")), by_all(expected.select("s")))
        else:
            assert_frame_equal(by_all(got), by_all(expected))


@settings(max_examples=12)
@given(frames(), SILENCES, st.sampled_from([["s"], ["s", "i"], []]))
def test_groupby_agg_accepts_ranks_without_a_chunk(
    df: pl.DataFrame, silences: tuple[int, set[int]], keys: list[str]
) -> None:
    nranks, silent = ranks_and_silent(silences)
    parts = deal(df, nranks, silent)
    aggs: list[Spec] = [("f", "sum"), ("f", "mean"), ("i", "max"), ("i", "n_unique"), ("*", "len")]
    items = agg_items(aggs)
    outs = run_one(parts, silent, lambda c, i, o: actors.groupby_agg(c, i, o, keys, aggs))
    if len(silent) == nranks:  # nobody knows the input's types
        if keys:
            assert all(out.shape == (0, 0) for out in outs)
        return
    expected = (
        df.group_by(keys).agg(a.polars() for a in items)
        if keys
        else df.select(a.polars() for a in items)
    )
    got = stacked(outs, expected)
    assert_frame_equal(by_all(got), by_all(expected), check_exact=False, rel_tol=1e-9)


@settings(max_examples=12)
@given(frames(), SILENCES, st.integers(0, 10))
def test_sort_top_k_and_allgather_accept_ranks_without_a_chunk(
    df: pl.DataFrame, silences: tuple[int, set[int]], k: int
) -> None:
    nranks, silent = ranks_and_silent(silences)
    parts = deal(df, nranks, silent)
    if len(silent) == nranks:
        return
    expected = df.sort("i", "f", nulls_last=True)

    def sort_then_gather(ctx: Context, ch_in: Any, ch_out: Any) -> Any:
        mid = ctx.create_channel()
        return [
            actors.sort(ctx, ch_in, mid, ["i", "f"], nulls_last=True),
            actors.allgather(ctx, mid, ch_out),
        ]

    async def job(ctx: Context) -> pl.DataFrame:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        src = source(ctx, a, parts[ctx.rank], ctx.rank in silent)
        await Network(ctx, [src, *sort_then_gather(ctx, a, b), sink]).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    for got in ranks.run(nranks, job):
        assert_frame_equal(got.select("i", "f"), expected.select("i", "f"))
    outs = run_one(
        parts, silent, lambda c, i, o: actors.top_k(c, i, o, ["i", "f"], k, nulls_last=True)
    )
    for got in outs:
        assert_frame_equal(got.select("i", "f"), expected.head(k).select("i", "f"))


@settings(max_examples=15)
@given(
    frames(max_rows=30),
    frames(max_rows=20),
    SILENCES,
    st.sets(st.integers(0, 2)),
    st.sampled_from(["inner", "left", "right", "full", "semi", "anti"]),
    st.sampled_from(["auto", "shuffle", "broadcast"]),
)
def test_join_accepts_ranks_without_a_chunk_on_either_side(
    left: pl.DataFrame,
    right: pl.DataFrame,
    silences: tuple[int, set[int]],
    right_silent: set[int],
    how: actors.JoinHow,
    strategy: actors.JoinStrategy,
) -> None:
    nranks, left_silent = ranks_and_silent(silences)
    right_silent = {r for r in right_silent if r < nranks}
    if strategy == "broadcast" and how in ("right", "full"):
        return
    right = right.rename({"f": "g", "s": "t"})
    lparts, rparts = deal(left, nranks, left_silent), deal(right, nranks, right_silent)
    no_left, no_right = len(left_silent) == nranks, len(right_silent) == nranks

    async def job(ctx: Context) -> pl.DataFrame:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        await Network(
            ctx,
            [
                source(ctx, lch, lparts[ctx.rank], ctx.rank in left_silent, rows=5),
                source(ctx, rch, rparts[ctx.rank], ctx.rank in right_silent, rows=4),
                actors.join(ctx, lch, rch, out, on="i", how=how, strategy=strategy),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    needs_right = how in ("left", "full") and no_right and not no_left
    needs_left = how in ("right", "full") and no_left and not no_right
    if needs_right or needs_left:
        with pytest.raises(
            SchemaError, match=r"input \(channel `ch#\d`\) had no chunk on any rank"
        ):
            ranks.run(nranks, job)
        return
    every = ranks.run(nranks, job)
    outs = [o for o in every if o.width]
    if no_left or (no_right and how in ("inner", "right")):
        assert sum(o.height for o in outs) == 0
        return
    expected = left.join(right.head(0) if no_right else right, on="i", how=how)
    got = stacked(outs, expected) if outs else expected.head(0)
    assert_frame_equal(by_all(got), by_all(expected))
    # the result's columns are known on every rank, though some had no chunk of their own
    assert all(o.columns == expected.columns for o in every), [o.columns for o in every]


@pytest.mark.parametrize("strategy", ["auto", "broadcast", "shuffle"])
@pytest.mark.parametrize("how", ["inner", "left", "semi", "anti"])
def test_a_rank_without_a_left_chunk_sends_the_join_s_empty_result(
    how: actors.JoinHow, strategy: actors.JoinStrategy
) -> None:
    """A broadcast join sent nothing on a rank whose left input had no chunk, where a
    shuffle sends an empty chunk of the result's schema: the ranks' results could not be
    stacked."""
    left = pl.DataFrame({"i": [1, 2], "x": ["a", "b"]})
    right = pl.DataFrame({"i": [1, 1, 4], "y": [1.0, 2.0, 3.0]})

    async def job(ctx: Context) -> pl.DataFrame:
        lch, rch, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        await Network(ctx, [
            source(ctx, lch, left, ctx.rank != 0), source(ctx, rch, right, False),
            actors.join(ctx, lch, rch, out, on="i", how=how, strategy=strategy), sink,
        ]).run_async()  # fmt: skip
        frame: pl.DataFrame = sink.result()
        return frame

    nranks = ranks.size(2)
    every = ranks.run(nranks, job)
    expected = left.join(pl.concat([right] * nranks), on="i", how=how)
    assert all(o.columns == expected.columns for o in every), [o.columns for o in every]
    assert_frame_equal(by_all(pl.concat(every)), by_all(expected))


def test_every_sink_accepts_a_rank_without_a_chunk(tmp_path: Path) -> None:
    nranks = ranks.size(3)
    df = pl.DataFrame({"x": [1, 2, 3]})

    async def job(ctx: Context) -> tuple[pl.DataFrame, int]:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, a, into="polars")
        writer = actors.write_parquet(ctx, b, tmp_path / "out")
        await Network(
            ctx,
            [
                source(ctx, a, df, ctx.rank != 0),
                source(ctx, b, df, ctx.rank != 0),
                sink,
                writer,
            ],
        ).run_async()
        return sink.result(), writer.result().rows

    outs = ranks.run(nranks, job)
    assert_frame_equal(outs[0][0], df)
    assert [rows for _, rows in outs] == [3] + [0] * (nranks - 1)
    assert all(out.height == 0 for out, _ in outs[1:])
    if 0 in ranks.here(nranks):  # under MPI each rank has a temporary directory of its own
        assert_frame_equal(pl.read_parquet(tmp_path / "out" / "*.parquet"), df)


# -- one schema per stream ----------------------------------------------------------------------

COLLECTIVES: dict[str, Make] = {
    "shuffle": lambda c, i, o: actors.shuffle(c, i, o, "k"),
    "distinct": lambda c, i, o: actors.distinct(c, i, o, "k"),
    "sort": lambda c, i, o: actors.sort(c, i, o, "k"),
    "top_k": lambda c, i, o: actors.top_k(c, i, o, "k", 3),
    "groupby_agg": lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"v": "sum"}),
    "global groupby_agg": lambda c, i, o: actors.groupby_agg(c, i, o, [], {"v": "sum"}),
    "join": lambda c, i, o: _self_join(c, i, o),
    "broadcast join": lambda c, i, o: _self_join(c, i, o, strategy="broadcast"),
    "allgather": lambda c, i, o: actors.allgather(c, i, o),
}


def _self_join(ctx: Context, ch_in: Any, ch_out: Any, strategy: str = "shuffle") -> Any:
    left, right = ctx.create_channel(), ctx.create_channel()
    return [
        actors.fanout(ctx, ch_in, [left, right]),
        actors.join(ctx, left, right, ch_out, on="k", strategy=strategy),  # type: ignore[arg-type]
    ]


def _nodes(made: Any) -> list[Any]:
    return made if isinstance(made, list) else [made]


@define_actor
async def typed_source(ctx: Context, ch_out: Channel[Any], frames: list[pl.DataFrame]) -> None:
    for seq, frame in enumerate(frames):
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))


INTS = pl.DataFrame({"k": [1, 2, 3], "v": [10, 20, 30]})
CHANGED = {
    "a column's type": pl.DataFrame({"k": [1.5, 2.0], "v": [30, 40]}),
    "a string key": pl.DataFrame({"k": ["1", "2"], "v": [30, 40]}),
    "an extra column": INTS.with_columns(w=pl.lit("x")),
    "a missing column": INTS.select("k"),
}
EXPECTED = {
    "a column's type": r"column `k` has type Float64 where (the stream|rank 0) has Int64",
    "a string key": r"column `k` has type String where (the stream|rank 0) has Int64",
    "an extra column": r"column `w` \(String\) is not in (the stream|rank 0)",
    "a missing column": r"column `v` \(Int64\) is missing",
}


@pytest.mark.parametrize("change", sorted(CHANGED))
@pytest.mark.parametrize("collective", sorted(COLLECTIVES))
def test_a_type_that_changes_mid_stream_raises_before_any_collective(
    collective: str, change: str
) -> None:
    """Before, the collectives cast the later chunks to the first one's types (1.5 became 1)."""
    nranks = ranks.size(1)

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(name="input"), ctx.create_channel()
        nodes = _nodes(COLLECTIVES[collective](ctx, a, b))
        src = typed_source(ctx, a, [INTS, CHANGED[change]])
        await Network(ctx, [src, *nodes, actors.collect(ctx, b)]).run_async()

    with pytest.raises(
        SchemaError,
        match=r"actor `typed_source#0`, channel `input`: chunk 1 .*" + EXPECTED[change],
    ):
        ranks.run(nranks, job)


@pytest.mark.parametrize("change", sorted(CHANGED))
@pytest.mark.parametrize("collective", sorted(COLLECTIVES))
def test_ranks_whose_streams_differ_in_schema_raise_on_every_rank(
    collective: str, change: str
) -> None:
    """Before, rank 1's chunks were cast to rank 0's types, or failed with a raw Polars error."""
    nranks = ranks.size(2)

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(name="input"), ctx.create_channel()
        nodes = _nodes(COLLECTIVES[collective](ctx, a, b))
        mine = INTS if ctx.rank == 0 else CHANGED[change]
        src = typed_source(ctx, a, [mine])
        await Network(ctx, [src, *nodes, actors.collect(ctx, b)]).run_async()

    name = collective.split()[-1]
    if change == "a missing column" and name == "groupby_agg":  # rank 1 lacks what it needs
        with pytest.raises(ColumnNotFoundError, match="column `v` not found"):
            ranks.run(nranks, job)
        return
    with pytest.raises(
        SchemaError,
        match=rf"actor `{name}#0`, channel `(input|ch#\d)`: the chunks on rank 1 do not have the "
        rf"schema of those on rank 0: {EXPECTED[change]}",
    ):
        ranks.run(nranks, job)


def test_a_broadcast_join_whose_left_inputs_differ_between_ranks_raises_on_every_rank() -> None:
    """Before, a broadcast join never compared the ranks' left inputs: each rank sent
    results of another schema (Int64 on rank 0, Float64 on rank 1) and the run succeeded."""
    nranks = ranks.size(2)

    async def job(ctx: Context) -> None:
        left, right, out = (ctx.create_channel(name=n) for n in ("left", "right", "out"))
        w = [10, 20, 30] if ctx.rank == 0 else [0.5, 1.5, 2.5]
        nodes: list[ActorNode[Any]] = [
            typed_source(ctx, left, [pl.DataFrame({"k": [1, 2, 3], "w": w})]),
            typed_source(ctx, right, [INTS]),
            actors.join(ctx, left, right, out, on="k", strategy="broadcast"),
            actors.collect(ctx, out),
        ]
        await Network(ctx, nodes).run_async()

    with pytest.raises(
        SchemaError,
        match=r"actor `join#0`, channel `left`: the chunks on rank 1 do not have the schema of "
        r"those on rank 0: column `w` has type Float64 where rank 0 has Int64",
    ):
        ranks.run(nranks, job)


def test_ranks_writing_one_dataset_of_different_schemas_raise_and_leave_nothing(tmp_path: Path) -> None:
    """Before, each rank wrote its own schema into the one dataset directory."""
    nranks = ranks.size(2)
    target = tmp_path / "out"

    async def job(ctx: Context) -> None:
        a = ctx.create_channel(name="input")
        mine = INTS if ctx.rank == 0 else CHANGED["a column's type"]
        await Network(
            ctx, [typed_source(ctx, a, [mine]), actors.write_parquet(ctx, a, target)]
        ).run_async()

    with pytest.raises(
        SchemaError,
        match=r"actor `write_parquet#0`, channel `input`: the chunks on rank 1 do not have the "
        r"schema of those on rank 0: column `k` has type Float64 where rank 0 has Int64",
    ):
        ranks.run(nranks, job)
    assert not target.exists()


@settings(max_examples=10)
@given(
    st.lists(st.integers(-100, 100), min_size=1, max_size=20),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=20),
    st.integers(1, 3),
)
def test_widened_with_cast_a_stream_of_both_types_equals_polars(
    ints: list[int], floats: list[float], nranks: int
) -> None:
    """The fix a SchemaError asks for: cast the narrower stream, then results equal Polars."""
    nranks = ranks.size(nranks)
    a = pl.DataFrame({"k": [i % 3 for i in range(len(ints))], "v": ints})
    b = pl.DataFrame({"k": [i % 4 for i in range(len(floats))], "v": floats})

    async def job(ctx: Context) -> pl.DataFrame:
        ints_ch, floats_ch, wide, both, out = (ctx.create_channel() for _ in range(5))
        sink = actors.collect(ctx, out, into="polars")
        await Network(
            ctx,
            [
                actors.from_polars(ctx, ints_ch, a if ctx.rank == 0 else a.head(0), chunk_rows=4),
                actors.from_polars(ctx, floats_ch, b if ctx.rank == nranks - 1 else b.head(0)),
                actors.cast(ctx, ints_ch, wide, {"v": pl.Float64}),
                actors.merge(ctx, [wide, floats_ch], both, renumber=True),
                actors.groupby_agg(ctx, both, out, "k", [("v", "sum"), ("v", "max")]),
                sink,
            ],
        ).run_async()
        frame: pl.DataFrame = sink.result()
        return frame

    got = pl.concat(ranks.run(nranks, job)).sort("k")
    expected = (
        pl.concat([a.with_columns(pl.col("v").cast(pl.Float64)), b])
        .group_by("k")
        .agg(v_sum=pl.col("v").sum(), v_max=pl.col("v").max())
        .sort("k")
    )
    assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9)
