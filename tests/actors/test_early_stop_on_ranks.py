"""A consumer that needs no more on some ranks only (a `limit` reached early there): the
collective actor it reads from runs on to its end on that rank, its output dropped, since
its peers on the other ranks wait for its every step; the run ends, and what each rank
got is part of Polars' answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
import ranks

import actors
from streamnet import ActorNode, Channel, Context, Network, TableChunk

LIMIT = 5


def _rows(rank: int) -> int:
    """Rank 0 has many rows, the others few: rank 0's limit is reached long before its
    collective ends, the others' perhaps never."""
    return 20_000 if rank == 0 else 10


def _left(rank: int) -> pl.DataFrame:
    n = _rows(rank)
    return pl.DataFrame({"k": [(i * 7 + rank) % 50 for i in range(n)], "x": range(n)})


RIGHT = pl.DataFrame({"k": range(0, 50, 2), "y": range(25)})

Build = Callable[[Context, Channel[TableChunk], Channel[TableChunk]], list[ActorNode[Any]]]


def _one(kind: Any) -> Build:
    """A collective reading the left table, ``kind(ctx, ch_in, ch_out)``."""

    def build(ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]) -> list[ActorNode[Any]]:
        return [kind(ctx, ch_in, ch_out)]

    return build


def _join(strategy: str) -> Build:
    def build(ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]) -> list[ActorNode[Any]]:
        right = ctx.create_channel()
        mine = RIGHT.filter(pl.int_range(pl.len()) % ctx.nranks == ctx.rank)
        return [
            actors.from_polars(ctx, right, mine, chunk_rows=4),
            actors.join(ctx, ch_in, right, ch_out, on="k", strategy=strategy),  # type: ignore[arg-type]
        ]

    return build


CASES: dict[str, tuple[Build, Callable[[pl.DataFrame], pl.DataFrame]]] = {
    "broadcast join": (_join("auto"), lambda df: df.join(RIGHT, on="k")),
    "shuffle join": (_join("shuffle"), lambda df: df.join(RIGHT, on="k")),
    "shuffle": (_one(lambda ctx, i, o: actors.shuffle(ctx, i, o, "k")), lambda df: df),
    "unordered allgather": (
        _one(lambda ctx, i, o: actors.allgather(ctx, i, o, ordered=False)), lambda df: df
    ),
    "sort": (_one(lambda ctx, i, o: actors.sort(ctx, i, o, "x")), lambda df: df),
    "distinct": (_one(lambda ctx, i, o: actors.distinct(ctx, i, o, "k")), lambda df: df),
    "group-by": (
        _one(lambda ctx, i, o: actors.groupby_agg(ctx, i, o, "k", [("x", "sum", "x")])),
        lambda df: df.group_by("k").agg(pl.col("x").sum()),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("nranks", [2, 3])
def test_a_limit_reached_on_one_rank_lets_the_collective_it_reads_finish_everywhere(
    case: str, nranks: int
) -> None:
    build, answer = CASES[case]

    async def job(ctx: Context) -> pl.DataFrame:
        left, out, head = (ctx.create_channel() for _ in range(3))
        sink = actors.collect(ctx, head, into="polars")
        nodes = [
            actors.from_polars(ctx, left, _left(ctx.rank), chunk_rows=100),
            *build(ctx, left, out),
            actors.limit(ctx, out, head, LIMIT),
            sink,
        ]
        await Network(ctx, nodes).run_async()
        got: pl.DataFrame = sink.result()
        return got

    nranks = ranks.size(nranks)
    outs = ranks.run(nranks, job, within=60)
    whole = answer(pl.concat([_left(r) for r in range(nranks)]))
    for got in outs:
        assert got.height <= LIMIT
        if got.height:  # every row each rank got is a row of the whole answer
            assert got.select(whole.columns).join(whole, on=whole.columns, how="anti").height == 0
    assert outs[0].height == LIMIT  # rank 0 had rows enough for its limit
