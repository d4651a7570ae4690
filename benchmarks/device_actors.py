"""Device actors: host -> device actor -> host round trip (p50, p99), one-way throughput
with batching, and a chain of 8 actors through kernel-to-kernel rings, on each device
here (``"gpu"`` where CuPy sees one, ``"host"`` where a C++ compiler is found, and
``"model"``), beside the host `ActorRuntime` in the same run.

Two levels are measured:

- the rings themselves: the host writes records into a slot's host-to-kernel ring
  and reads the replies from its kernel-to-host ring (what the transport costs);
- the runtime: ``runtime.request`` to a device actor, whose host side moves
  messages between the mailboxes and the rings, beside the same request to a host
  actor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.actors_latency import _echo, _pct
from streamnet import ActorRuntime, BackendUnavailableError
from streamnet.persistent.device import (
    CalculateRequest,
    Sample,
    calculator,
    forwarder,
    windowed_sum,
)
from streamnet.persistent.device._kernels import DeviceKernel, open_kernel
from streamnet.persistent.device._placement import kernel_behaviours
from streamnet.persistent.device._slots import ACTIVE, RESET

DEVICES = ("gpu", "host", "model")
CHAIN = 8
CAPACITY = 1024


@dataclass
class DeviceResult:
    device: str
    ring_p50_us: float
    ring_p99_us: float
    one_way_per_second: float
    chain_per_second: float
    chain_p50_us: float
    request_p50_us: float
    request_p99_us: float


def _kernel(device: str, slots: int) -> DeviceKernel:
    behaviours, layout = kernel_behaviours()
    return open_kernel(device, layout, behaviours, slots, CAPACITY)


def _reset(kernel: DeviceKernel, slot: int) -> None:
    slots = kernel.slots
    slots.command(slot, RESET)
    deadline = time.perf_counter() + 10
    while slots.pending(slot) or slots.state(slot) != ACTIVE:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the {kernel.kind} kernel did not reset slot {slot}")
        time.sleep(0)


def _spin(until: Callable[[], bool], what: str) -> None:
    deadline = time.perf_counter() + 10
    while not until():
        if time.perf_counter() > deadline:
            raise TimeoutError(what)


def ring_round_trips(kernel: DeviceKernel, n: int) -> list[float]:
    """Record round trips through slot 0 (a calculator)."""
    kernel.assign(0, calculator(), ())
    _reset(kernel, 0)
    slots = kernel.slots
    request = slots.layout.encode(CalculateRequest(1.0, 2.0), message_id=1)
    to_kernel, to_host = slots.to_kernel[0], slots.to_host[0]
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        to_kernel.try_push(request)
        while to_host.try_pop() is None:
            pass
        samples.append(time.perf_counter() - start)
    return samples


def one_way(kernel: DeviceKernel, n: int, slot: int = 1) -> float:
    """Records per second into a windowed sum that answers once per ``CAPACITY``, written a
    ring's free room at a time."""
    kernel.assign(slot, windowed_sum(CAPACITY), (CAPACITY,))
    _reset(kernel, slot)
    slots = kernel.slots
    record = slots.layout.encode(Sample(1.0), message_id=1)
    batch = np.repeat(np.asarray(record)[None], CAPACITY)
    to_kernel, to_host = slots.to_kernel[slot], slots.to_host[slot]
    sent = answers = 0
    start = time.perf_counter()
    while sent < n:
        sent += to_kernel.push_many(batch[: min(to_kernel.free, n - sent)])
        answers += len(to_host.pop_many(CAPACITY))
    _spin(lambda: int(slots.control[slot]["messages_in"]) >= n, "one-way: records not taken")
    return n / (time.perf_counter() - start)


def chain(kernel: DeviceKernel, n: int) -> tuple[float, float]:
    """Records per second through ``CHAIN`` actors (forwarders into a windowed sum of 1), and
    the p50 latency of one record through them."""
    last = CHAIN + 1  # slots 2..CHAIN+1; the sum at the end
    kernel.assign(last, windowed_sum(1), (1,))
    for slot in range(last - 1, 1, -1):
        kernel.assign(slot, forwarder("next"), (slot + 1,))
    for slot in range(2, last + 1):
        _reset(kernel, slot)
    slots = kernel.slots
    record = slots.layout.encode(Sample(1.0), message_id=1)
    first, out = slots.to_kernel[2], slots.to_host[last]
    samples = []
    for _ in range(min(n, 200)):
        start = time.perf_counter()
        first.try_push(record)
        while out.try_pop() is None:
            pass
        samples.append(time.perf_counter() - start)
    batch = np.repeat(np.asarray(record)[None], CAPACITY)
    sent = got = 0
    start = time.perf_counter()
    while got < n:
        if sent < n:
            sent += first.push_many(batch[: min(first.free, n - sent)])
        got += len(out.pop_many(CAPACITY))
    return n / (time.perf_counter() - start), _pct(samples, 0.5)


async def runtime_requests(device: str | None, n: int) -> list[float]:
    """``runtime.request`` round trips to a calculator on ``device`` (None: a host echo)."""
    async with ActorRuntime() as runtime:
        if device is None:
            await runtime.launch("actor", _echo)
        else:
            await runtime.launch("actor", calculator(), device=device)
        await runtime.activate("actor")
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await runtime.request("actor", CalculateRequest(1.0, 2.0), timeout=5)
            samples.append(time.perf_counter() - start)
        return samples


def run(
    *, round_trips: int = 20_000, messages: int = 1_000_000, devices: tuple[str, ...] = DEVICES
) -> tuple[list[DeviceResult], list[str]]:
    """Each device's figures, and why any device was left out."""
    results, skipped = [], []
    host = asyncio.run(runtime_requests(None, round_trips // 10))
    results.append(
        DeviceResult("host ActorRuntime", 0, 0, 0, 0, 0, _pct(host, 0.5), _pct(host, 0.99))
    )
    for device in devices:
        try:
            kernel = _kernel(device, CHAIN + 2)
        except BackendUnavailableError as exc:
            skipped.append(f"{device}: {exc}")
            continue
        scale = 10 if device == "model" else 1  # the Python model is slow: fewer records
        try:
            rings = ring_round_trips(kernel, round_trips // scale)
            rate = one_way(kernel, messages // scale)
            chain_rate, chain_p50 = chain(kernel, messages // (10 * scale))
        finally:
            kernel.close()
        requests = asyncio.run(runtime_requests(device, round_trips // 10 // scale))
        figures = (_pct(rings, 0.5), _pct(rings, 0.99), rate, chain_rate, chain_p50)
        results.append(DeviceResult(device, *figures, _pct(requests, 0.5), _pct(requests, 0.99)))
    return results, skipped


def report(rows: list[DeviceResult], skipped: list[str]) -> str:
    lines = [
        "targets (on the GPU): ring round trip under 10 µs, one-way above 5M messages/s",
        "",
        "| where | ring round trip p50 µs | p99 µs | one-way messages/s | chain of 8 messages/s "
        "| chain p50 µs | runtime.request p50 µs | p99 µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.device == "host ActorRuntime":
            lines.append(
                f"| {r.device} | | | | | | {r.request_p50_us:.1f} | {r.request_p99_us:.1f} |"
            )
            continue
        lines.append(
            f"| {r.device} | {r.ring_p50_us:.1f} | {r.ring_p99_us:.1f} | "
            f"{r.one_way_per_second:,.0f} | {r.chain_per_second:,.0f} | {r.chain_p50_us:.1f} | "
            f"{r.request_p50_us:.1f} | {r.request_p99_us:.1f} |"
        )
    lines += ["", *(f"- not measured on {s}" for s in skipped)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
