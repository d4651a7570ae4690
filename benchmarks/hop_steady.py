"""W0 steady: per-hop cost of the bare transport, channels against ``asyncio.Queue``.

source -> k pass-through tasks -> sink over k + 1 raw `channels.Channel` objects
(no Network, no actor statistics), beside the same shape over raw
``asyncio.Queue`` objects. The two are run alternately, one run each per
repeat, so that drift in machine speed touches both alike; each reports its
best run. Per-hop cost = wall time / (messages x channels). What this measures
is ``send``/``recv`` and the parking lot under them: with capacity 1 nearly
every call parks, with a larger capacity most calls find room or a message.

On a shared machine, ``clock="cpu"`` times the process's CPU time instead of
the wall clock: the loop runs in one thread, so that is the work done, without the
time other processes held the cores.

Only `channels` is imported, so the same file measures any version of it (run
it as a script with another tree first on ``PYTHONPATH`` to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Literal

from channels import Channel, Message

DONE = object()

Clock = Literal["wall", "cpu"]
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
Chain = Callable[[int, int, int, Callable[[], float]], Coroutine[Any, Any, float]]


async def channel_chain(n: int, hops: int, capacity: int, clock: Callable[[], float]) -> float:
    """Seconds to pass ``n`` messages through ``hops`` pass-through tasks on channels."""
    chans: list[Channel[int]] = [Channel(int, capacity=capacity) for _ in range(hops + 1)]
    counter: list[int] = []

    async def source(out: Channel[int]) -> None:
        for i in range(n):
            await out.send(None, Message(i, i))
        await out.drain(None)

    async def passthrough(inp: Channel[int], out: Channel[int]) -> None:
        while (msg := await inp.recv(None)) is not None:
            await out.send(None, msg)
        await out.drain(None)

    async def sink(inp: Channel[int]) -> None:
        count = 0
        while (await inp.recv(None)) is not None:
            count += 1
        counter.append(count)

    start = clock()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(source(chans[0]))
        for i in range(hops):
            tg.create_task(passthrough(chans[i], chans[i + 1]))
        tg.create_task(sink(chans[-1]))
    elapsed = clock() - start
    assert counter == [n], counter
    return elapsed


async def queue_chain(n: int, hops: int, capacity: int, clock: Callable[[], float]) -> float:
    """The same shape on ``asyncio.Queue`` (an end marker ends the stream)."""
    queues: list[asyncio.Queue[object]] = [asyncio.Queue(maxsize=capacity) for _ in range(hops + 1)]
    counter: list[int] = []

    async def source(out: asyncio.Queue[object]) -> None:
        for i in range(n):
            await out.put((i, i))
        await out.put(DONE)

    async def passthrough(inp: asyncio.Queue[object], out: asyncio.Queue[object]) -> None:
        while (item := await inp.get()) is not DONE:
            await out.put(item)
        await out.put(DONE)

    async def sink(inp: asyncio.Queue[object]) -> None:
        count = 0
        while (await inp.get()) is not DONE:
            count += 1
        counter.append(count)

    start = clock()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(source(queues[0]))
        for i in range(hops):
            tg.create_task(passthrough(queues[i], queues[i + 1]))
        tg.create_task(sink(queues[-1]))
    elapsed = clock() - start
    assert counter == [n], counter
    return elapsed


@dataclass(frozen=True)
class SteadyResult:
    """One cell: the best per-hop cost of each transport, in microseconds."""

    hops: int
    capacity: int
    channel_us: float
    queue_us: float

    @property
    def ratio(self) -> float:
        return self.channel_us / self.queue_us


def _once(chain: Chain, n: int, hops: int, capacity: int, clock: Clock) -> float:
    gc.collect()
    return asyncio.run(chain(n, hops, capacity, CLOCKS[clock]))


def run(
    *,
    messages: int = 10_000,
    repeats: int = 7,
    hops: int = 4,
    capacities: tuple[int, ...] = (1, 2, 8),
    clock: Clock = "wall",
) -> list[SteadyResult]:
    """Best of ``repeats`` alternating runs per capacity."""
    results = []
    links = hops + 1
    for capacity in capacities:
        chan, queue = float("inf"), float("inf")
        for _ in range(max(1, repeats)):
            chan = min(chan, _once(channel_chain, messages, hops, capacity, clock))
            queue = min(queue, _once(queue_chain, messages, hops, capacity, clock))
        scale = 1e6 / (messages * links)
        results.append(SteadyResult(hops, capacity, chan * scale, queue * scale))
    return results


def report(results: list[SteadyResult]) -> str:
    lines = [
        "| pass-through tasks | capacity | Channel µs/hop | asyncio.Queue µs/hop | ratio |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.hops} | {r.capacity} | {r.channel_us:.2f} | {r.queue_us:.2f} | {r.ratio:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--hops", type=int, default=4)
    parser.add_argument("--capacities", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--json", action="store_true", help="print the cells as JSON lines")
    args = parser.parse_args(argv)
    results = run(
        messages=args.messages,
        repeats=args.repeats,
        hops=args.hops,
        capacities=tuple(args.capacities),
        clock=args.clock,
    )
    if args.json:
        for r in results:
            print(json.dumps({**asdict(r), "ratio": r.ratio}))
    else:
        print(report(results))


if __name__ == "__main__":
    main()
