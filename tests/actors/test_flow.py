from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

import actors
from streamnet import Channel, Context, Message, Network, SequenceError, TableChunk, define_actor


def test_fanout_gives_every_consumer_everything() -> None:
    df = pl.DataFrame({"x": range(50)})
    ctx = Context()
    src = ctx.create_channel()
    outs = [ctx.create_channel() for _ in range(3)]
    sinks = [actors.collect(ctx, ch, into="polars") for ch in outs]
    Network(
        ctx, [actors.from_polars(ctx, src, df, chunk_rows=7), actors.fanout(ctx, src, outs), *sinks]
    ).run()
    for sink in sinks:
        assert_frame_equal(sink.result(), df)


def test_fanout_goes_at_the_pace_of_the_slowest_consumer() -> None:
    @define_actor
    async def slow(ctx: Context, ch_in: Channel[Any]) -> None:
        async for _ in ch_in:
            await asyncio.sleep(0.002)  # the behaviour under test: a consumer slower than the others

    ctx = Context()
    src, fast, slow_ch = (
        ctx.create_channel(),
        ctx.create_channel(capacity=1),
        ctx.create_channel(capacity=1),
    )
    net = Network(
        ctx,
        [
            actors.from_polars(ctx, src, pl.DataFrame({"x": range(30)}), chunk_rows=1),
            actors.fanout(ctx, src, [fast, slow_ch]),
            actors.collect(ctx, fast),
            slow(ctx, slow_ch),
        ],
    )
    net.run()
    stats = net.statistics()
    assert stats.channel(slow_ch.name).peak_buffered_messages == 1
    assert stats.actor("fanout#0").blocked_output_seconds > 0


def test_fanout_keeps_feeding_the_others_when_one_consumer_stops() -> None:
    ctx = Context()
    src, a, b, a2 = (ctx.create_channel() for _ in range(4))
    full, head = actors.collect(ctx, b), actors.collect(ctx, a2)
    Network(
        ctx,
        [
            actors.from_arrow(ctx, src, pa.table({"x": range(100)}), chunk_rows=5),
            actors.fanout(ctx, src, [a, b]),
            actors.limit(ctx, a, a2, 7),
            head,
            full,
        ],
    ).run()
    assert head.result().num_rows == 7
    assert full.result().num_rows == 100


def test_fanout_stops_upstream_once_every_consumer_stopped() -> None:
    ctx = Context()
    src, a, b, a2, b2 = (ctx.create_channel() for _ in range(5))
    heads = [actors.collect(ctx, a2), actors.collect(ctx, b2)]
    source = actors.from_arrow(ctx, src, pa.table({"x": range(100_000)}), chunk_rows=5)
    net = Network(
        ctx,
        [
            source,
            actors.fanout(ctx, src, [a, b]),
            actors.limit(ctx, a, a2, 7),
            actors.limit(ctx, b, b2, 3),
            *heads,
        ],
    )
    net.run()  # no actor left input unread by mistake
    assert [h.result().num_rows for h in heads] == [7, 3]
    assert net.statistics().actor(source.name).messages_out < 100  # of 20,000 chunks


def test_merge_forwards_everything_and_keeps_sequence_numbers() -> None:
    @define_actor
    async def numbered(ctx: Context, ch_out: Channel[Any], seqs: Iterable[int]) -> None:
        for s in seqs:
            await ch_out.send(ctx, Message(s, TableChunk.from_arrow(pa.table({"s": [s]}))))

    ctx = Context()
    a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, out)
    Network(
        ctx,
        [
            numbered(ctx, a, range(0, 40, 2)),
            numbered(ctx, b, range(1, 40, 2)),
            actors.merge(ctx, [a, b], out),
            sink,
        ],
    ).run()
    assert sink.result()["s"].to_pylist() == list(range(40))


def test_merge_renumbers_independent_streams() -> None:
    ctx = Context()
    a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, out, into="polars")
    Network(
        ctx,
        [
            actors.from_polars(ctx, a, pl.DataFrame({"x": range(10)}), chunk_rows=3),
            actors.from_polars(ctx, b, pl.DataFrame({"x": range(10, 20)}), chunk_rows=3),
            actors.merge(ctx, [a, b], out, renumber=True),
            sink,
        ],
    ).run()
    assert sorted(sink.result()["x"].to_list()) == list(range(20))


def test_lineariser_actor_orders_and_reports_duplicates() -> None:
    @define_actor
    async def numbered(ctx: Context, ch_out: Channel[Any], seqs: Iterable[int]) -> None:
        for s in seqs:
            await ch_out.send(ctx, Message(s, TableChunk.from_arrow(pa.table({"s": [s]}))))

    seen: list[int] = []

    @define_actor
    async def record(ctx: Context, ch_in: Channel[Any]) -> None:
        async for msg in ch_in:
            seen.append(msg.sequence_number)

    ctx = Context()
    a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    Network(
        ctx,
        [
            numbered(ctx, a, [0, 4, 5]),
            numbered(ctx, b, [1, 2, 9]),
            actors.lineariser(ctx, [a, b], out),
            record(ctx, out),
        ],
    ).run()
    assert seen == [0, 1, 2, 4, 5, 9]
    ctx = Context()
    a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    with pytest.raises(SequenceError, match="sequence number 1 arrived twice"):
        Network(
            ctx,
            [
                numbered(ctx, a, [0, 1]),
                numbered(ctx, b, [1]),
                actors.lineariser(ctx, [a, b], out),
                record(ctx, out),
            ],
        ).run()


def test_throttle_caps_the_rate() -> None:
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, b)
    start = time.monotonic()
    Network(
        ctx,
        [
            actors.from_arrow(ctx, a, pa.table({"x": range(6)}), chunk_rows=1),
            actors.throttle(ctx, a, b, chunks_per_second=100),
            sink,
        ],
    ).run()
    # 6 chunks, burst 1, 100/s: at least 5 intervals of 10 ms (a lower bound, not a timing target).
    assert time.monotonic() - start >= 0.045
    assert sink.result().num_rows == 6


def test_throttle_rows_per_second_and_bad_arguments() -> None:
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, b)
    Network(
        ctx,
        [
            actors.from_arrow(ctx, a, pa.table({"x": range(100)}), chunk_rows=10),
            actors.throttle(ctx, a, b, rows_per_second=1e6),
            sink,
        ],
    ).run()
    assert sink.result().num_rows == 100
    for kwargs, match in [
        ({}, "exactly one"),
        ({"chunks_per_second": 0}, "> 0"),
        ({"chunks_per_second": 1, "burst": 0}, "burst"),
    ]:
        ctx = Context()
        a, b = ctx.create_channel(), ctx.create_channel()
        with pytest.raises(ValueError, match=match):
            Network(
                ctx,
                [
                    actors.from_arrow(ctx, a, pa.table({"x": [1]})),
                    actors.throttle(ctx, a, b, **kwargs),
                    actors.collect(ctx, b),
                ],
            ).run()


@pytest.mark.parametrize("memory_limit", [None, 20_000])
def test_concat_of_two_branches_of_one_fanout_reads_the_later_ahead(
    memory_limit: int | None,
) -> None:
    """The fanout sends each chunk to both branches in turn; concat read the second only
    after the first ended, so the fanout waited on the second branch's full channel
    (a DeadlockError). It now reads the second ahead, spilled under a memory limit."""
    df = pl.DataFrame({"x": range(400), "s": [f"value {i}" for i in range(400)]})
    ctx = Context(memory_limit=memory_limit)
    src, a, b, kept, out = (ctx.create_channel() for _ in range(5))
    sink = actors.collect(ctx, out, into="polars")
    network = Network(ctx, [
        actors.from_polars(ctx, src, df, chunk_rows=10),
        actors.fanout(ctx, src, [a, b]),
        actors.filter(ctx, b, kept, pl.col("x") % 3 == 0),
        actors.concat(ctx, [a, kept], out),
        sink,
    ], fuse=False)  # fmt: skip
    network.run()
    assert_frame_equal(sink.result(), pl.concat([df, df.filter(pl.col("x") % 3 == 0)]))
    (concat,) = [node for node in network.actors if node.name.startswith("concat")]
    assert concat.inputs_meet_upstream


@define_actor
async def _numbered(ctx: Context, ch_out: Channel[TableChunk], order: list[int]) -> None:
    """Send a one-row chunk ``x = n`` numbered ``n`` for each ``n`` of ``order``, in that order."""
    for n in order:
        await ch_out.send(ctx, Message(n, TableChunk.from_polars(pl.DataFrame({"x": [n]}))))
    await ch_out.drain(ctx)


@pytest.mark.parametrize("ahead", [False, True])
def test_concat_keeps_each_input_in_the_order_of_its_sequence_numbers(ahead: bool) -> None:
    """Messages may arrive out of their order (a pool of workers): concat keeps each
    input's order by its numbers, as `collect` does, and places the later inputs after
    it, whether it reads them ahead (two branches of one source) or not."""
    ctx = Context()
    a, b, out = (ctx.create_channel() for _ in range(3))
    sink = actors.collect(ctx, out, into="polars")
    if ahead:  # both inputs from one upstream node: the second is read ahead
        src = ctx.create_channel()
        nodes = [_numbered(ctx, src, [12, 10, 11]), actors.fanout(ctx, src, [a, b])]
        want = [10, 11, 12, 10, 11, 12]
    else:
        nodes = [_numbered(ctx, a, [2, 0, 3, 1]), _numbered(ctx, b, [11, 10])]
        want = [0, 1, 2, 3, 10, 11]
    network = Network(ctx, [*nodes, actors.concat(ctx, [a, b], out), sink], fuse=False)
    network.run()
    assert sink.result()["x"].to_list() == want


def test_concat_refuses_a_negative_number_in_a_later_input() -> None:
    ctx = Context()
    a, b, out = (ctx.create_channel() for _ in range(3))
    network = Network(ctx, [
        _numbered(ctx, a, [0]), _numbered(ctx, b, [-1]),
        actors.concat(ctx, [a, b], out), actors.collect(ctx, out),
    ])  # fmt: skip
    with pytest.raises(ValueError, match="input 1 .* numbered -1"):
        network.run()


def test_concat_of_independent_inputs_holds_the_later_back() -> None:
    """Inputs of separate sources are read one after another, as before: nothing read
    ahead, so the second source waits (its channel fills) until the first ended."""
    ctx = Context()
    a, b, out = (ctx.create_channel(capacity=1) for _ in range(3))
    sink = actors.collect(ctx, out, into="polars")
    first = pl.DataFrame({"x": range(50)})
    second = pl.DataFrame({"x": range(50, 60)})
    network = Network(ctx, [
        actors.from_polars(ctx, a, first, chunk_rows=5),
        actors.from_polars(ctx, b, second, chunk_rows=1),
        actors.concat(ctx, [a, b], out),
        sink,
    ])  # fmt: skip
    network.run()
    assert_frame_equal(sink.result(), pl.concat([first, second]))
    (concat,) = [node for node in network.actors if node.name.startswith("concat")]
    assert not concat.inputs_meet_upstream
