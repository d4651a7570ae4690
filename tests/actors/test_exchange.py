"""The exchange between ranks: its helper tasks end before the collective that started them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
import pytest

import actors
from streamnet import (
    ActorNode,
    Channel,
    Context,
    Network,
    SpillDirectory,
    TableChunk,
    current_actor,
    define_actor,
    run_ranks_async,
)
from streamnet.memory._budget import _spill_all

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def streamnet_debug() -> Iterator[logging.Logger]:
    logger = logging.getLogger("streamnet")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(level)


async def test_a_failing_run_waits_for_the_exchanges_helper_tasks_and_their_kernels(
    monkeypatch: pytest.MonkeyPatch, streamnet_debug: logging.Logger
) -> None:
    """Rank 0 fails while its exchange's receiving task spills in a kernel: the shuffle
    is still running when that task, cancelled, waits for its kernel (it waits for its
    helper tasks), so no kernel of it outlives it and the run's spill release."""
    loop = asyncio.get_running_loop()
    spilling, release = asyncio.Event(), threading.Event()
    shuffles: dict[int, ActorNode] = {}
    seen: list[str] = []

    def slow_spill(chunks: Sequence[TableChunk], spills: SpillDirectory) -> None:
        node = current_actor()
        if node is not None and node.ctx.rank == 0:
            loop.call_soon_threadsafe(spilling.set)
            release.wait(30)
        _spill_all(chunks, spills)

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if getattr(record, "rank", None) == 0 and "it waits for the kernel" in message:
                seen.append(shuffles[0].state)  # the shuffle's state while its helper waits
                release.set()

    @define_actor
    async def stalls(ctx: Context, ch_out: Channel[Any]) -> None:  # the shuffle waits for input while its receiver spills
        await asyncio.Event().wait()

    @define_actor
    async def fails_while_spilling(ctx: Context) -> None:
        await spilling.wait()
        raise ValueError("injected while the exchange spills")

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        shuffles[ctx.rank] = actors.shuffle(ctx, a, b, "k", max_buffered_bytes=1)
        nodes = [shuffles[ctx.rank], actors.collect(ctx, b)]
        if ctx.rank == 0:  # everything rank 0 holds comes from rank 1, through its receiver
            nodes += [stalls(ctx, a), fails_while_spilling(ctx)]
        else:
            nodes += [actors.from_polars(ctx, a, pl.DataFrame({"k": range(100)}), chunk_rows=10)]
        await Network(ctx, nodes).run_async()

    monkeypatch.setattr("streamnet.memory._budget._spill_all", slow_spill)
    watch = Watch()
    streamnet_debug.addHandler(watch)
    try:
        async with asyncio.timeout(30):
            with pytest.raises(ValueError, match="injected while the exchange spills"):
                await run_ranks_async(2, job)
    finally:
        streamnet_debug.removeHandler(watch)
        release.set()
    assert seen == ["running"]
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left behind
