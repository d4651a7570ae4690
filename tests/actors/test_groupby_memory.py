"""groupby_agg under a memory budget: partitions whose partials do not fit are split by key and
finished part by part, their pieces spilled; the answers stay Polars'."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ranks import run, size

import actors
from streamnet import (
    ActorNode,
    Context,
    MemoryLimitError,
    MemoryStatistics,
    Network,
    TableChunk,
    define_actor,
)

AGGS = {"v": ["sum", "mean", "min", "max", "count"], "s": ["n_unique"]}


def _expected(df: pl.DataFrame, keys: list[str], aggs: dict[str, list[str]]) -> pl.DataFrame:
    exprs = [getattr(pl.col(c), how)().alias(f"{c}_{how}") for c, hows in aggs.items() for how in hows]
    return df.group_by(keys).agg(exprs).sort(keys, nulls_last=True)


def _grouped(
    df: pl.DataFrame,
    nranks: int,
    keys: list[str],
    aggs: dict[str, list[str]],
    *,
    memory_limit: int | None,
    rows: int = 500,
) -> tuple[pl.DataFrame, list[tuple[MemoryStatistics, list[int]]]]:
    """The group-by of ``df`` split over ``nranks`` ranks; per rank its budget's figures and
    the sequence numbers it sent."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, MemoryStatistics, list[int]]:
        a, b = ctx.create_channel(), ctx.create_channel()
        per = -(-df.height // ctx.nranks)
        mine = df.slice(ctx.rank * per, per)
        numbers: list[int] = []

        @define_actor
        async def sink(ctx: Context, ch_in: Any) -> pl.DataFrame:
            frames = []
            while (msg := await ch_in.recv(ctx)) is not None:
                numbers.append(msg.sequence_number)
                frames.append(TableChunk.from_message(msg).to_polars())
            return pl.concat(frames)

        out = sink(ctx, b)
        nodes: list[ActorNode[Any]] = [
            actors.from_polars(ctx, a, mine, chunk_rows=rows),
            actors.groupby_agg(ctx, a, b, keys, aggs),
            out,
        ]
        await Network(ctx, nodes).run_async()
        return out.result(), ctx.memory.statistics(), numbers

    results = run(size(nranks), job, memory_limit=memory_limit)
    got = pl.concat([frame for frame, _, _ in results]).sort(keys, nulls_last=True)
    return got, [(stats, numbers) for _, stats, numbers in results]


@pytest.mark.parametrize("nranks", [1, 2])
def test_many_groups_under_a_small_budget_split_spill_and_equal_polars(nranks: int) -> None:
    n = 20_000
    df = pl.DataFrame(
        {"k": [(i * 7919) % 9_973 for i in range(n)], "v": range(n), "s": [str(i % 13) for i in range(n)]}
    )
    budget = 96 * 1024
    got, ranks = _grouped(df, nranks, ["k"], AGGS, memory_limit=budget)
    assert_frame_equal(got, _expected(df, ["k"], AGGS))
    assert sum(stats.spilled for stats, _ in ranks) > 0  # partials went to disk
    for stats, numbers in ranks:
        assert len(numbers) > 1  # the rank's partitions were split and finished part by part
        assert len(set(numbers)) == len(numbers)
        assert stats.peak <= budget + 64 * 1024  # within the budget, give or take one chunk
    every = [n for _, numbers in ranks for n in numbers]
    assert len(set(every)) == len(every)  # numbers stay distinct across ranks


def test_without_a_budget_each_partition_is_finished_whole() -> None:
    df = pl.DataFrame({"k": [i % 500 for i in range(5_000)], "v": range(5_000), "s": ["a"] * 5_000})
    got, ranks = _grouped(df, 2, ["k"], AGGS, memory_limit=None)
    assert_frame_equal(got, _expected(df, ["k"], AGGS))
    assert [sorted(numbers) for _, numbers in ranks] == [[0], [1]]
    assert all(stats.spilled == 0 for stats, _ in ranks)


@settings(max_examples=8, deadline=None)
@given(
    keys=st.lists(st.integers(0, 300) | st.none(), min_size=1, max_size=2_000),
    nranks=st.integers(1, 2),
    budget=st.integers(8 * 1024, 64 * 1024),
)
def test_any_split_equals_polars(keys: list[int | None], nranks: int, budget: int) -> None:
    df = pl.DataFrame({"k": keys, "v": range(len(keys)), "s": [str(k) for k in keys]})
    got, _ = _grouped(df, nranks, ["k"], AGGS, memory_limit=budget, rows=97)
    assert_frame_equal(got, _expected(df, ["k"], AGGS))


def test_a_group_that_cannot_fit_fails_naming_the_actor_and_the_sizes() -> None:
    # n_unique by key moves the rows themselves: one key's rows cannot be split
    df = pl.DataFrame({"k": [1] * 30_000, "v": range(30_000), "s": [str(i) for i in range(30_000)]})
    with pytest.raises(MemoryLimitError, match=r"actor `groupby_agg#0`: finishing groups needs .* more than the whole memory budget"):
        _grouped(df, 1, ["k"], {"s": ["n_unique"]}, memory_limit=64 * 1024)


def test_under_a_budget_partials_are_cut_into_partitions_as_they_come() -> None:
    """Under a memory limit the partials go to (at least) `MEMORY_FANOUT` partitions as they
    come, each finished alone, instead of one partition that is read back and cut again at
    the end: a budget the data fits in still finishes them one partition at a time."""
    from actors._groupby import MEMORY_FANOUT

    df = pl.DataFrame({"k": [i % 2_000 for i in range(8_000)], "v": range(8_000), "s": ["a"] * 8_000})
    got, ranks = _grouped(df, 1, ["k"], AGGS, memory_limit=64 << 20)
    assert_frame_equal(got, _expected(df, ["k"], AGGS))
    [(stats, numbers)] = ranks
    assert sorted(numbers) == list(range(MEMORY_FANOUT))
    assert stats.spilled == 0
