"""Every message a collective moves shows in the network's statistics, not only its exchanges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
import ranks

import actors
from streamnet import Channel, CollectiveStatistics, Context, Network, TableChunk

pytestmark = pytest.mark.timeout(60)

Make = Callable[[Context, Channel[TableChunk], Channel[TableChunk], Channel[TableChunk]], Any]


def _statistics(nranks: int, make: Make, df: pl.DataFrame) -> list[tuple[CollectiveStatistics, Any]]:
    async def job(ctx: Context) -> tuple[CollectiveStatistics, Any]:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        part = df.filter(pl.col("k") % ctx.nranks == ctx.rank)
        node = make(ctx, a, b, c)
        sources = [actors.from_polars(ctx, a, part, chunk_rows=10)]
        if node.name.startswith("join"):
            sources.append(actors.from_polars(ctx, b, part.head(5), chunk_rows=10))
        net = Network(ctx, [*sources, node, actors.collect(ctx, c)])
        await net.run_async()
        (entry,) = net.statistics().collectives
        return entry, node.result()

    return ranks.run(nranks, job)


def _check_symmetric(entries: list[CollectiveStatistics]) -> None:
    """What rank r sent to rank s is what s received from r."""
    for r, one in enumerate(entries):
        for s, other in enumerate(entries):
            if r != s:
                assert one.bytes_sent.get(s, 0) == other.bytes_received.get(r, 0)


DF = pl.DataFrame({"k": range(60), "v": [float(i) for i in range(60)]})


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda ctx, a, b, c: actors.allgather(ctx, a, c), id="allgather"),
        pytest.param(lambda ctx, a, b, c: actors.top_k(ctx, a, c, "k", 3), id="top_k"),
        pytest.param(
            lambda ctx, a, b, c: actors.join(ctx, a, b, c, on="k", strategy="broadcast"),
            id="broadcast join",
        ),
    ],
)
def test_collectives_without_an_exchange_count_what_they_move(make: Make) -> None:
    """Before, only what an actor returned was listed: nothing for these."""
    nranks = ranks.size(2)
    entries = [entry for entry, _ in _statistics(nranks, make, DF)]
    _check_symmetric(entries)
    for rank, entry in enumerate(entries):
        assert set(entry.bytes_sent) == set(range(nranks)) - {rank}
        assert all(n > 0 for n in entry.bytes_sent.values())


def test_a_shuffle_counts_its_schema_agreement_beside_its_pieces() -> None:
    nranks = ranks.size(2)
    results = _statistics(nranks, lambda ctx, a, b, c: actors.shuffle(ctx, a, c, "k"), DF)
    entries = [entry for entry, _ in results]
    _check_symmetric(entries)
    for entry, report in results:
        assert entry.bytes_sent == report.bytes_sent  # the report is the statistics' figure
    # A rank without input still agrees on the schema with its peers: that is traffic too.
    empty = _statistics(nranks, lambda ctx, a, b, c: actors.shuffle(ctx, a, c, "k"), DF.head(0))
    assert all(sum(entry.bytes_sent.values()) > 0 for entry, _ in empty)


def test_a_join_reports_its_exchanges_and_the_statistics_figure() -> None:
    nranks = ranks.size(2)
    make: Make = lambda ctx, a, b, c: actors.join(ctx, a, b, c, on="k", strategy="shuffle")  # noqa: E731
    for entry, report in _statistics(nranks, make, DF):
        assert report.traffic.bytes_sent == entry.bytes_sent
        for side in (report.left, report.right):
            assert side is not None
            for peer, n in side.bytes_sent.items():
                assert n <= entry.bytes_sent[peer]
