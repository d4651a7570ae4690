from __future__ import annotations

import asyncio
from collections.abc import Callable
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
    assert "rows out" in text
    assert "<table" in net.statistics()._repr_html_()


def test_collective_statistics_are_a_snapshot_of_the_traffic() -> None:
    from streamnet import CollectiveStatistics

    sent = {1: 10}
    stats = CollectiveStatistics("shuffle#0", sent, {}, peak_buffered_bytes=0, spilled_bytes=0)
    sent[1] = 99  # the actor's own counts go on changing
    assert stats.bytes_sent == {1: 10}
