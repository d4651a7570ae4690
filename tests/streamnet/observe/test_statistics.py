from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from waiting import until

from streamnet import Channel, Context, Message, Network, TableChunk, define_actor

Predicate = Callable[[], bool]


@define_actor
async def source(
    ctx: Context, ch_out: Channel[Any], sizes: list[int], start_when: Predicate | None = None
) -> None:
    if start_when is not None:
        await until(start_when)
    for i, n in enumerate(sizes):
        await ch_out.send(
            ctx, Message(i, TableChunk.from_arrow(pa.table({"v": pa.array(range(n), pa.int64())})))
        )


@define_actor
async def keep_even_rows(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    async for msg in ch_in:
        table = TableChunk.from_message(msg).to_arrow()
        await ch_out.send(ctx, Message(msg.sequence_number, TableChunk.from_arrow(table[::2])))


@define_actor
async def slow_sink(ctx: Context, ch_in: Channel[Any]) -> None:
    async for _ in ch_in:
        await asyncio.sleep(0.002)  # slow (the behaviour under test): it holds upstream back


async def test_statistics_counts_are_exact() -> None:
    sizes = [5, 0, 8, 3]
    ctx = Context()
    a = ctx.create_channel(TableChunk, capacity=1, name="raw")
    b = ctx.create_channel(TableChunk, capacity=1, name="even")
    # The source starts once the sink waits for input: it is blocked on its input for a while.
    start = source(ctx, a, sizes, start_when=lambda: b.statistics().waiting_receivers == 1)
    net = Network(ctx, [start, keep_even_rows(ctx, a, b), slow_sink(ctx, b)])
    await net.run_async()
    stats = net.statistics()
    src, mid, sink = (stats.actor(n) for n in ("source#0", "keep_even_rows#0", "slow_sink#0"))
    even = [(n + 1) // 2 for n in sizes]
    assert (src.messages_out, src.rows_out, src.messages_in) == (4, sum(sizes), 0)
    assert (mid.messages_in, mid.rows_in) == (4, sum(sizes))
    assert (mid.messages_out, mid.rows_out) == (4, sum(even))
    assert (sink.messages_in, sink.rows_in, sink.messages_out) == (4, sum(even), 0)
    assert src.bytes_out == mid.bytes_in > 0
    # The slow sink holds everyone back: upstream waits on full channels.
    assert src.blocked_output_seconds > 0 and mid.blocked_output_seconds > 0
    # Those with no input or no output never wait on it; those that waited for input did.
    assert src.blocked_input_seconds == sink.blocked_output_seconds == 0
    assert sink.blocked_input_seconds > 0 and mid.blocked_input_seconds > 0
    for actor in stats.actors:
        assert actor.state == "done"
        assert actor.busy_seconds + actor.blocked_input_seconds + actor.blocked_output_seconds == (
            pytest.approx(actor.wall_seconds)
        )
    raw = stats.channel("raw")
    assert (raw.messages_sent, raw.messages_received, raw.peak_buffered_messages) == (4, 4, 1)
    assert raw.state == "drained"
    assert [x.name for x in ctx.statistics().actors] == [x.name for x in stats.actors]


async def test_statistics_as_frames_and_text() -> None:
    ctx = Context()
    a = ctx.create_channel()
    net = Network(ctx, [source(ctx, a, [3]), slow_sink(ctx, a)])
    before = net.statistics()
    assert {x.state for x in before.actors} == {"created"}
    await net.run_async()
    stats = net.statistics()
    df = stats.to_polars()
    assert df["name"].to_list() == ["source#0", "slow_sink#0"]
    assert df["rows_out"].to_list() == [3, 0]
    assert list(stats.to_pandas(what="channels")["name"]) == [a.name]
    text = str(stats)
    assert "source#0" in text and "rows out" in text
    with pytest.raises(KeyError, match="no actor named `nope`"):
        stats.actor("nope")
    with pytest.raises(ValueError, match="'actors', 'channels' or 'collectives'"):
        stats.to_polars(what="x")


async def test_statistics_render_with_rich_and_as_html() -> None:
    from rich.console import Console

    ctx = Context()
    a = ctx.create_channel()
    net = Network(ctx, [source(ctx, a, [3, 4]), slow_sink(ctx, a)])
    await net.run_async()
    console = Console(record=True, width=160)
    console.print(net.statistics())
    text = console.export_text()
    assert "source#0" in text
    assert "rows" in text and "busy" in text  # figures' headers take a line per word
    assert "<table" in net.statistics()._repr_html_()


def test_collective_statistics_are_a_snapshot_of_the_traffic() -> None:
    from streamnet import CollectiveStatistics

    sent = {1: 10}
    stats = CollectiveStatistics("shuffle#0", sent, {}, peak_buffered_bytes=0, spilled_bytes=0)
    sent[1] = 99  # the actor's own counts go on changing
    assert stats.bytes_sent == {1: 10}


# ------------------------------------------------------------------ kernels in the thread pool
@define_actor
async def run_kernel(
    ctx: Context, kernel: Callable[[], object], go: asyncio.Event, submitted: list[str]
) -> None:
    await go.wait()
    submitted.append("submitted")  # the kernel is submitted in this same step (no await between)
    await ctx.to_thread(kernel)


@dataclass
class Blocking:
    """A kernel that says it started, then runs until released (or 20 s, not to hang)."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        self.started.set()
        self.release.wait(20)


class Clock:
    """A clock that moves only when the test moves it (read from the kernels' threads too)."""

    def __init__(self) -> None:
        self.now = 1.0

    def __call__(self) -> float:
        return self.now


async def _until_set(event: threading.Event) -> None:
    await until(event.is_set)


def _one_thread_two_kernels(trace: bool = False) -> tuple[Network, dict[str, Any]]:
    """``holder`` runs a kernel that holds the only thread; ``waiter`` submits one that
    queues behind it. The test drives them with the returned parts."""
    ctx = Context(num_threads=1, trace=trace)
    parts: dict[str, Any] = {
        "holder": Blocking(), "waiter": Blocking(),
        "go_holder": asyncio.Event(), "go_waiter": asyncio.Event(),
        "holder_submitted": [], "waiter_submitted": [],
    }  # fmt: skip
    net = Network(
        ctx,
        [
            run_kernel(ctx, parts["holder"], parts["go_holder"], parts["holder_submitted"]).named(
                "holder"
            ),
            run_kernel(ctx, parts["waiter"], parts["go_waiter"], parts["waiter_submitted"]).named(
                "waiter"
            ),
        ],
    )
    return net, parts


@pytest.mark.timeout(30)
async def test_kernel_run_and_queue_time_go_to_the_actor_whose_kernel_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two actors share a one-thread pool: the one whose kernel waits for the thread that
    the other's kernel holds has queue time, and only its own kernel's run as kernel time."""
    clock = Clock()
    monkeypatch.setattr("streamnet._kernel_pool.perf_counter", clock)
    net, parts = _one_thread_two_kernels()
    run = asyncio.create_task(net.run_async())
    parts["go_holder"].set()  # submitted and started at 1.0
    await _until_set(parts["holder"].started)
    clock.now = 2.0
    parts["go_waiter"].set()  # submitted at 2.0: queued, the one thread is taken
    await until(lambda: parts["waiter_submitted"])
    assert not parts["waiter"].started.is_set()
    clock.now = 5.0
    parts["holder"].release.set()  # the holder's kernel ends at 5.0, the waiter's starts
    await _until_set(parts["waiter"].started)
    clock.now = 6.5
    parts["waiter"].release.set()  # ...and ends at 6.5
    await run
    stats = net.statistics()
    holder, waiter = stats.actor("holder"), stats.actor("waiter")
    assert (holder.kernel_seconds, holder.queued_seconds) == (4.0, 0.0)
    assert (waiter.kernel_seconds, waiter.queued_seconds) == (1.5, 3.0)


@pytest.mark.timeout(30)
async def test_time_queued_for_a_thread_is_neither_busy_nor_kernel_time() -> None:
    net, parts = _one_thread_two_kernels(trace=True)
    run = asyncio.create_task(net.run_async())
    parts["go_holder"].set()
    await _until_set(parts["holder"].started)
    holding = time.perf_counter()  # the holder's kernel runs from before this...
    parts["go_waiter"].set()
    await until(lambda: parts["waiter_submitted"])
    queued = time.perf_counter()  # ...and the waiter's waits for the thread from before this
    await asyncio.sleep(0)
    released = time.perf_counter()  # until after this
    parts["holder"].release.set()
    await _until_set(parts["waiter"].started)
    parts["waiter"].release.set()
    await run
    stats = net.statistics()
    holder, waiter = stats.actor("holder"), stats.actor("waiter")
    assert holder.kernel_seconds >= released - holding
    assert waiter.queued_seconds >= released - queued
    for actor in (holder, waiter):
        accounted = actor.busy_seconds + actor.queued_seconds
        assert accounted + actor.blocked_input_seconds + actor.blocked_output_seconds == (
            pytest.approx(actor.wall_seconds)
        )
        assert actor.busy_seconds >= actor.kernel_seconds  # it waited for its running kernel
    # The timeline shows the wait, as its own kind of span.
    spans = [s for s in net.timeline().spans if s.kind == "queued for a thread"]
    assert any(s.actor == "waiter" and s.end - s.start >= released - queued for s in spans)
    assert sum(s.end - s.start for s in spans if s.actor == "waiter") == pytest.approx(
        waiter.queued_seconds
    )
    # The tables show both columns once an actor ran a kernel.
    text = str(stats)
    assert "kernel s" in text and "queued s" in text
    assert {"kernel_seconds", "queued_seconds"} <= set(stats.to_polars().columns)


async def test_the_table_has_no_kernel_columns_when_no_kernel_ran() -> None:
    ctx = Context()
    a = ctx.create_channel()
    net = Network(ctx, [source(ctx, a, [3]), slow_sink(ctx, a)])
    await net.run_async()
    assert "queued s" not in str(net.statistics())
    assert "MB read" not in str(net.statistics())


def test_the_table_shows_the_bytes_a_source_read(tmp_path: Path) -> None:
    import actors

    path = tmp_path / "t.csv"
    path.write_text("x\n" + "".join(f"{i}\n" for i in range(100_000)))
    ctx = Context()
    ch = ctx.create_channel()
    net = Network(ctx, [actors.read_csv(ctx, ch, path), actors.collect(ctx, ch)])
    net.run()
    stats = net.statistics()
    assert stats.actor("read_csv#0").bytes_read == path.stat().st_size
    header, row = str(stats).splitlines()[0], str(stats).splitlines()[2]
    assert "MB read" in header
    assert f"{path.stat().st_size / 1e6:,.1f}" in row.split()
