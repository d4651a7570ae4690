"""W0: per-hop cost of a message through a chain of pass-through actors.

source -> k pass-through actors -> sink, k + 1 channels of a given capacity,
beside the same shape built from raw ``asyncio.Queue`` objects in the same run.
Per-hop cost = wall time / (messages x channels). The payload is a small object
so that only the transport is measured.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from streamnet import Channel, Context, Message, Network, define_actor

DONE = object()


@define_actor
async def _source(ctx: Context, ch_out: Channel[int], n: int) -> None:
    for i in range(n):
        await ch_out.send(ctx, Message(i, i))
    await ch_out.drain(ctx)


@define_actor
async def _passthrough(ctx: Context, ch_in: Channel[int], ch_out: Channel[int]) -> None:
    while (msg := await ch_in.recv(ctx)) is not None:
        await ch_out.send(ctx, msg)
    await ch_out.drain(ctx)


@define_actor
async def _sink(ctx: Context, ch_in: Channel[int], counter: list[int]) -> None:
    count = 0
    while (await ch_in.recv(ctx)) is not None:
        count += 1
    counter.append(count)


async def streamnet_chain(n: int, hops: int, capacity: int) -> float:
    ctx = Context(channel_capacity=capacity)
    chans = [ctx.create_channel() for _ in range(hops + 1)]
    counter: list[int] = []
    actors = [_source(ctx, chans[0], n)]
    actors += [_passthrough(ctx, chans[i], chans[i + 1]) for i in range(hops)]
    actors.append(_sink(ctx, chans[-1], counter))
    network = Network(ctx, actors)
    start = time.perf_counter()
    await network.run_async()
    elapsed = time.perf_counter() - start
    assert counter == [n], counter
    return elapsed


async def queue_chain(n: int, hops: int, capacity: int) -> float:
    queues: list[asyncio.Queue[object]] = [asyncio.Queue(maxsize=capacity) for _ in range(hops + 1)]
    counter: list[int] = []

    async def source() -> None:
        q = queues[0]
        for i in range(n):
            await q.put((i, i))
        await q.put(DONE)

    async def passthrough(q_in: asyncio.Queue[object], q_out: asyncio.Queue[object]) -> None:
        while (item := await q_in.get()) is not DONE:
            await q_out.put(item)
        await q_out.put(DONE)

    async def sink() -> None:
        count = 0
        q = queues[-1]
        while (await q.get()) is not DONE:
            count += 1
        counter.append(count)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(source())
        for i in range(hops):
            tg.create_task(passthrough(queues[i], queues[i + 1]))
        tg.create_task(sink())
    elapsed = time.perf_counter() - start
    assert counter == [n], counter
    return elapsed


@dataclass
class HopResult:
    hops: int
    capacity: int
    streamnet_us: float
    queue_us: float

    @property
    def ratio(self) -> float:
        return self.streamnet_us / self.queue_us


def _best(fn: Callable[[int, int, int], Coroutine[Any, Any, float]], n: int, hops: int, capacity: int, repeats: int) -> float:
    times: list[float] = []
    for _ in range(repeats):
        gc.collect()
        times.append(asyncio.run(fn(n, hops, capacity)))
    return min(times)


def run(*, messages: int = 20_000, repeats: int = 7) -> list[HopResult]:
    results = []
    for hops in (1, 4, 8):
        for capacity in (1, 2, 8):
            links = hops + 1
            # Interleave the two so drift in machine speed affects both alike.
            sn = _best(streamnet_chain, messages, hops, capacity, repeats)
            q = _best(queue_chain, messages, hops, capacity, repeats)
            results.append(
                HopResult(
                    hops, capacity, sn / (messages * links) * 1e6, q / (messages * links) * 1e6
                )
            )
    return results


def report(results: list[HopResult]) -> str:
    lines = [
        "| pass-through actors | capacity | streamnet µs/hop | asyncio.Queue µs/hop | ratio | target ≤ 1.5x |",
        "|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        ok = "met" if r.ratio <= 1.5 else "missed"
        lines.append(
            f"| {r.hops} | {r.capacity} | {r.streamnet_us:.2f} | {r.queue_us:.2f} | {r.ratio:.2f}x | {ok} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
