"""sort under a memory budget: sorted runs spilled as they fill, then a k-way merge that
streams each rank's range out in chunks; the answers stay Polars'."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ranks import here, run, size

import actors
from streamnet import (
    ActorNode,
    CollectiveTraffic,
    ColumnNotFoundError,
    Context,
    MemoryStatistics,
    Message,
    Network,
    SpillStatistics,
    TableChunk,
    define_actor,
)

pytestmark = pytest.mark.timeout(120)

KEYS = ["k", "s"]
FLAGS: list[tuple[bool | list[bool], bool | list[bool]]] = [
    (False, False),
    (True, True),
    ([True, False], [False, True]),
]


def _frame(n: int, *, seed: int = 0) -> pl.DataFrame:
    """Integer and string keys with nulls and repeats; ``row`` tells the rows apart."""
    return pl.DataFrame(
        {
            "k": [None if i % 17 == 0 else (i * 7919 + seed) % 1_000 for i in range(n)],
            "s": [
                None if i % 11 == 0 else ["a", "bb", "ccc", "é"][(i * 31 + seed) % 4]
                for i in range(n)
            ],
            "row": range(n),
        },
        schema={"k": pl.Int64, "s": pl.String, "row": pl.Int64},
    )


class _Rank:
    """What one rank's sort sent, and its figures."""

    def __init__(self, chunks: list[tuple[int, pl.DataFrame]], memory: MemoryStatistics,
                 spills: SpillStatistics, traffic: CollectiveTraffic) -> None:  # fmt: skip
        self.numbers = [seq for seq, _ in chunks]
        self.frames = [frame for _, frame in chunks]
        self.memory = memory
        self.spills = spills
        self.traffic = traffic


def _sorted(
    df: pl.DataFrame,
    nranks: int,
    *,
    descending: bool | list[bool],
    nulls_last: bool | list[bool],
    memory_limit: int | None,
    max_buffered_bytes: int | None = None,
    chunk_rows: int = 250,
) -> tuple[pl.DataFrame, list[_Rank]]:
    """``df`` split over ``nranks`` ranks and sorted; the ranks' outputs read in rank
    order, each in sequence order, and what each rank saw."""

    async def job(ctx: Context) -> _Rank:
        a, b = ctx.create_channel(), ctx.create_channel()
        per = -(-df.height // ctx.nranks)
        got: list[tuple[int, pl.DataFrame]] = []

        @define_actor
        async def sink(ctx: Context, ch_in: Any) -> None:
            while (msg := await ch_in.recv(ctx)) is not None:
                got.append((msg.sequence_number, TableChunk.from_message(msg).to_polars()))

        node = actors.sort(
            ctx, a, b, KEYS, descending=descending, nulls_last=nulls_last,
            max_buffered_bytes=max_buffered_bytes,
        )  # fmt: skip
        nodes: list[ActorNode[Any]] = [
            actors.from_polars(ctx, a, df.slice(ctx.rank * per, per), chunk_rows=chunk_rows),
            node,
            sink(ctx, b),
        ]
        await Network(ctx, nodes).run_async()
        return _Rank(got, ctx.memory.statistics(), ctx.spills.statistics(), node.result())

    ranks = run(size(nranks), job, memory_limit=memory_limit)
    frames = [frame for rank in ranks for frame in rank.frames]
    return pl.concat(frames), ranks


def _check(got: pl.DataFrame, df: pl.DataFrame, descending: Any, nulls_last: Any) -> None:
    expected = df.sort(KEYS, descending=descending, nulls_last=nulls_last)
    assert_frame_equal(got.select(KEYS), expected.select(KEYS))  # in order, across ranks
    assert_frame_equal(got.sort("row"), df)  # every row once (ties in any order)


@pytest.mark.parametrize("nranks", [1, 2, 3])
@pytest.mark.parametrize("flags", FLAGS)
def test_under_a_small_budget_runs_spill_and_merge_into_polars_order(
    nranks: int, flags: tuple[Any, Any]
) -> None:
    df = _frame(12_000)
    budget = 64 * 1024  # the data is about five times as much
    descending, nulls_last = flags
    got, ranks = _sorted(
        df, nranks, descending=descending, nulls_last=nulls_last, memory_limit=budget
    )
    _check(got, df, descending, nulls_last)
    assert sum(rank.memory.spilled for rank in ranks) > 0  # runs went to disk
    for rank in ranks:
        assert rank.numbers == list(range(len(rank.numbers)))  # 0, 1, 2... in order
        assert rank.traffic.spilled_bytes > 0  # the sort's own report says so too
        assert rank.spills.files_present == 0  # and its files are gone
        assert rank.memory.peak <= budget + 8 * 1024  # within the budget, give or take a piece
    assert max(len(rank.numbers) for rank in ranks) > 1  # the ranges streamed out in chunks


def test_without_a_budget_each_rank_sends_its_range_as_one_chunk() -> None:
    df = _frame(3_000)
    got, ranks = _sorted(df, size(2), descending=True, nulls_last=False, memory_limit=None)
    _check(got, df, True, False)
    assert [rank.numbers for rank in ranks] == [[0]] * len(ranks)
    assert all(rank.memory.spilled == 0 and rank.spills.files_written == 0 for rank in ranks)


def test_max_buffered_bytes_alone_makes_the_sort_external() -> None:
    df = _frame(6_000)
    bound = 24 * 1024
    got, ranks = _sorted(
        df, size(2), descending=False, nulls_last=True, memory_limit=None, max_buffered_bytes=bound
    )
    _check(got, df, False, True)
    assert all(rank.traffic.spilled_bytes > 0 for rank in ranks)
    assert all(len(rank.numbers) > 1 for rank in ranks if rank.frames[0].height)


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(0, 3_000),
    seed=st.integers(0, 1_000),
    nranks=st.integers(1, 3),
    budget=st.integers(32 * 1024, 96 * 1024),
    flags=st.sampled_from(FLAGS),
    chunk_rows=st.integers(1, 200),  # chunks of at most an eighth of the budget
)
def test_any_budget_and_split_equal_polars(
    n: int, seed: int, nranks: int, budget: int, flags: tuple[Any, Any], chunk_rows: int
) -> None:
    df = _frame(n, seed=seed)
    descending, nulls_last = flags
    got, ranks = _sorted(
        df, nranks, descending=descending, nulls_last=nulls_last, memory_limit=budget,
        chunk_rows=chunk_rows,
    )  # fmt: skip
    _check(got, df, descending, nulls_last)
    assert all(rank.numbers == list(range(len(rank.numbers))) for rank in ranks)


def test_a_chunk_without_a_key_column_fails_naming_the_actor_and_the_column() -> None:
    df = pl.DataFrame({"k": [1, 2], "v": [3, 4]})

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        await Network(
            ctx,
            [
                actors.from_polars(ctx, a, df),
                actors.sort(ctx, a, b, ["k", "s"]),
                actors.collect(ctx, b),
            ],
        ).run_async()

    with pytest.raises(
        ColumnNotFoundError,
        match=r"actor `sort#0`: column `s` not found \(sort keys\); columns are \['k', 'v'\]",
    ):
        run(size(1), job, memory_limit=64 * 1024)


@pytest.mark.parametrize("nranks", [1, 2])
def test_an_upstream_failure_while_runs_are_spilled_removes_their_files(nranks: int) -> None:
    df = _frame(200)  # about 3.6 KiB a chunk
    on_disk_when_failing: list[int] = []
    left_after: dict[int, int] = {}

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()

        @define_actor
        async def source(ctx: Context, ch_out: Any) -> None:
            for seq in range(80):  # about four times the budget
                await ch_out.send(ctx, Message(seq, TableChunk.from_polars(df)))
            if ctx.rank == 0:
                # with at most two chunks in the channel, the sort has held (and so
                # spilled) at least 77 of them by now
                on_disk_when_failing.append(ctx.spills.statistics().files_present)
                raise RuntimeError("the source broke")
            await ch_out.drain(ctx)

        sort = actors.sort(ctx, a, b, "k")
        try:
            await Network(ctx, [source(ctx, a), sort, actors.collect(ctx, b)]).run_async()
        finally:  # the Context is still open: only the failed run removed the files
            left_after[ctx.rank] = ctx.spills.statistics().files_present

    with pytest.raises(RuntimeError, match="the source broke"):
        run(size(nranks), job, memory_limit=64 * 1024)
    if 0 in here(size(nranks)):
        assert on_disk_when_failing[0] > 0
    assert left_after == dict.fromkeys(here(size(nranks)), 0)


def test_external_sort_of_an_array_column_with_nulls() -> None:
    """The merge of spilled runs slices them; a fixed-size list column with a null then
    failed to become a Polars frame."""
    n = 12
    frame = pl.DataFrame({
        "k": list(range(n))[::-1],
        "a": pl.Series([None] + [[1, 2]] * (n - 1), dtype=pl.Array(pl.Int32, 2)),
        "pad": ["p" * 5000] * n,
    })  # fmt: skip
    with Context(memory_limit=65_536) as ctx:
        src, out = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        Network(ctx, [actors.from_polars(ctx, src, frame), actors.sort(ctx, src, out, "k"), sink]).run()
    assert_frame_equal(sink.result(), frame.sort("k"))
