"""A chunk an operator takes out of the budget for a kernel (and loads from disk) is no longer
counted: nothing of the operator may keep it once the kernel is done."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import actors
from actors._grace import GraceJoin
from actors._groupby import _Groups
from actors._hybrid import HybridJoin
from streamnet import Agg, Context, JoinSpec, Network, TableChunk

pytestmark = pytest.mark.timeout(60)

KiB = 2**10


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """What is freed must be freed by its last reference going, not later by gc."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _chunks(rows: int, parts: int, seed: int) -> list[TableChunk]:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({"k": rng.integers(0, rows, rows), "v": rng.random(rows)})
    step = rows // parts
    return [TableChunk.from_polars(frame.slice(i, step).clone()) for i in range(0, rows, step)]


class _Watch:
    """Follows the inputs of a backend kernel: at each call, how many inputs of the calls
    before it are still alive. The thread that ran the last call may not have let go of its
    arguments yet when the next step starts: one may be; more are kept by the operator."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.seen: list[weakref.ref[Any]] = []  # the chunks' native tables, which hold the data
        self.alive_at_calls: list[int] = []
        kernel = getattr(ctx.backend, name)

        def watched(chunk: TableChunk, *args: Any, **kwargs: Any) -> Any:
            self.alive_at_calls.append(sum(ref() is not None for ref in self.seen))
            self.seen.append(weakref.ref(chunk.native_for(ctx.backend)))
            return kernel(chunk, *args, **kwargs)

        setattr(ctx.backend, name, watched)


@pytest.mark.usefixtures("no_cycle_collector")
async def test_a_group_by_split_keeps_no_partial_it_cut() -> None:
    with Context(memory_limit=64 * KiB, num_threads=2) as ctx:
        pieces = _chunks(8_000, 8, seed=1)
        kernel = ctx.backend.aggregation(
            ["k"], [Agg("v", "sum")], pieces[0].schema, ordered=False
        )
        partials = [kernel.partial(piece) for piece in pieces]
        del pieces
        holder = ctx.memory.holder("partials", actor="test")
        for partial in partials:
            await holder.add(partial)
        watch = _Watch(ctx, "hash_partition")
        groups = _Groups(ctx, kernel, ["k"], holder)
        out = [chunk async for _, chunk in groups.finish(partials, 0, 1)]
        assert sum(chunk.num_rows for chunk in out) > 0
        assert len(watch.alive_at_calls) >= 6
        assert max(watch.alive_at_calls) <= 1


@pytest.mark.usefixtures("no_cycle_collector")
async def test_a_grace_join_split_keeps_no_piece_it_cut() -> None:
    with Context(memory_limit=96 * KiB, num_threads=2) as ctx:
        sent: list[TableChunk] = []

        async def emit(out: TableChunk) -> None:
            sent.append(out)

        spec = JoinSpec(("k",), ("k",), "inner", "_right")
        grace = GraceJoin(ctx, spec, None, None, emit)
        left = await grace.hold(_chunks(6_000, 12, seed=2))
        right = await grace.hold(_chunks(6_000, 12, seed=3))
        watch = _Watch(ctx, "hash_partition")
        await grace.join(left, right)
        assert grace.figures.repartitioned == 1
        assert len(watch.alive_at_calls) >= 6
        assert max(watch.alive_at_calls) <= 1
        assert sum(chunk.num_rows for chunk in sent) > 0
        grace.held.clear()


@pytest.mark.usefixtures("no_cycle_collector")
async def test_a_hybrid_join_keeps_no_left_chunk_it_partitioned() -> None:
    with Context(memory_limit=256 * KiB, num_threads=2) as ctx:
        sent: list[TableChunk] = []

        async def emit(out: TableChunk) -> None:
            sent.append(out)

        hybrid = HybridJoin(ctx, JoinSpec(("k",), ("k",), "inner", "_right"), None, emit)
        await hybrid.build(_chunks(2_000, 4, seed=4))
        watch = _Watch(ctx, "hash_partition")
        rows = _chunks(8_000, 1, seed=5)[0].to_polars()
        for start in range(0, 8_000, 500):  # made one at a time, as a channel gives them
            chunk = TableChunk.from_polars(rows.slice(start, 500).clone())
            await hybrid.probe(chunk)
            del chunk
        await hybrid.finish()
        hybrid.release()
        assert len(watch.alive_at_calls) == 16
        assert max(watch.alive_at_calls) <= 1
        assert hybrid.flushes > hybrid.partitions  # buffers joined as the left side came


def test_an_exchange_and_a_writer_reserve_their_kernels_working_memory(tmp_path: Path) -> None:
    """Cutting a chunk into partitions and writing one take several times its bytes: both
    are reserved under a budget (they were not counted at all before)."""
    frame = pl.DataFrame({"k": range(20_000), "s": [f"v{i % 50}" for i in range(20_000)]})
    with Context(memory_limit=4 * 2**20) as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        chunk_bytes = TableChunk.from_polars(frame.head(2_000)).nbytes
        shuffle = actors.shuffle(ctx, a, b, "k", num_partitions=4)
        write = actors.write_parquet(ctx, b, tmp_path / "out", partitioned=True)
        Network(
            ctx, [actors.from_polars(ctx, a, frame, chunk_rows=2_000), shuffle, write]
        ).run()
        figures = ctx.memory.statistics().actors
        cut = ctx.backend.working_memory("hash_partition", chunk_bytes)
        assert figures[shuffle.name].reserved_peak >= cut
        assert figures[write.name].reserved_peak > 0
        assert ctx.memory.in_use == 0
    assert pl.read_parquet(tmp_path / "out").sort("k").equals(frame)
