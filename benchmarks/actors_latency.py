"""Persistent actors: request/response round trip (p50, p99) and one-way throughput,
beside a raw ``asyncio.Queue`` ping-pong of the same shape in the same run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from streamnet import ActorRuntime, PersistentActorContext, persistent_message


@persistent_message
@dataclass
class Ping:
    n: int


async def _echo(ctx: PersistentActorContext) -> None:
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=1.0)
        except TimeoutError:
            continue
        await ctx.send(msg.reply(msg))


async def _sink(ctx: PersistentActorContext, count: list[int], done: asyncio.Event, total: int) -> None:
    while not ctx.should_terminate:
        try:
            await ctx.receive(timeout=1.0)
        except TimeoutError:
            continue
        count[0] += 1
        if count[0] == total:
            done.set()


async def streamnet_round_trips(n: int) -> list[float]:
    async with ActorRuntime() as runtime:
        await runtime.launch("echo", _echo)
        await runtime.activate("echo")
        samples = []
        for i in range(n):
            start = time.perf_counter()
            await runtime.request("echo", Ping(i), timeout=5)
            samples.append(time.perf_counter() - start)
        return samples


async def queue_round_trips(n: int) -> list[float]:
    requests: asyncio.Queue[int] = asyncio.Queue()
    replies: asyncio.Queue[int] = asyncio.Queue()

    async def echo() -> None:
        while (item := await requests.get()) >= 0:
            await replies.put(item)

    task = asyncio.ensure_future(echo())
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await requests.put(i)
        await replies.get()
        samples.append(time.perf_counter() - start)
    await requests.put(-1)
    await task
    return samples


async def streamnet_throughput(n: int) -> float:
    done = asyncio.Event()
    count = [0]
    async with ActorRuntime(mailbox_capacity=1024) as runtime:
        await runtime.launch("sink", _sink, count, done, n)
        await runtime.activate("sink")
        messages = [Ping(i) for i in range(n)]
        start = time.perf_counter()
        for m in messages:
            await runtime.send("sink", m)
        await done.wait()
        return n / (time.perf_counter() - start)


async def queue_throughput(n: int) -> float:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1024)
    done = asyncio.Event()

    async def sink() -> None:
        for _ in range(n):
            await queue.get()
        done.set()

    task = asyncio.ensure_future(sink())
    messages = [Ping(i) for i in range(n)]
    start = time.perf_counter()
    for m in messages:
        await queue.put(m)
    await done.wait()
    await task
    return n / (time.perf_counter() - start)


@dataclass
class LatencyResult:
    engine: str
    p50_us: float
    p99_us: float
    per_second: float


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def run(*, round_trips: int = 20_000, messages: int = 200_000) -> list[LatencyResult]:
    results = []
    for name, rtt, thr in [
        ("streamnet ActorRuntime", streamnet_round_trips, streamnet_throughput),
        ("asyncio.Queue", queue_round_trips, queue_throughput),
    ]:
        samples = asyncio.run(rtt(round_trips))
        rate = max(asyncio.run(thr(messages)) for _ in range(3))
        results.append(LatencyResult(name, _pct(samples, 0.5), _pct(samples, 0.99), rate))
    return results


def report(results: list[LatencyResult]) -> str:
    lines = [
        "targets: p50 round trip < 30 µs, one-way > 200k messages/s",
        "",
        "| engine | round trip p50 µs | p99 µs | one-way messages/s |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.engine} | {r.p50_us:.1f} | {r.p99_us:.1f} | {r.per_second:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
