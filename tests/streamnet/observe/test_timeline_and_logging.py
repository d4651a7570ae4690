from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from streamnet import (
    ActorLogFilter,
    Channel,
    Context,
    Message,
    Network,
    StreamnetError,
    define_actor,
)


@define_actor
async def producer(ctx: Context, ch_out: Channel[Any], n: int) -> None:
    for i in range(n):
        await ch_out.send(ctx, Message(i, i))


@define_actor
async def slow_consumer(ctx: Context, ch_in: Channel[Any]) -> None:
    async for _ in ch_in:
        await asyncio.sleep(0.002)  # slow (the behaviour under test): the producer waits on it


def _run(trace: bool) -> Network:
    ctx = Context(trace=trace)
    ch = ctx.create_channel(capacity=1)
    net = Network(ctx, [producer(ctx, ch, 20), slow_consumer(ctx, ch)])
    net.run()
    return net


def test_timeline_covers_each_actor_with_busy_and_blocked_spans() -> None:
    net = _run(trace=True)
    timeline = net.timeline()
    assert timeline.actors == ("producer#0", "slow_consumer#0")
    kinds = {(s.actor, s.kind) for s in timeline.spans}
    assert ("producer#0", "blocked on output") in kinds  # the consumer is slower
    assert ("slow_consumer#0", "busy") in kinds
    stats = {a.name: a for a in net.statistics().actors}
    for actor in timeline.actors:
        spans = sorted((s for s in timeline.spans if s.actor == actor), key=lambda s: s.start)
        assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(spans))
        total = sum(s.end - s.start for s in spans)
        assert total == pytest.approx(stats[actor].wall_seconds, rel=1e-6, abs=1e-6)
        blocked_out = sum(s.end - s.start for s in spans if s.kind == "blocked on output")
        assert blocked_out == pytest.approx(stats[actor].blocked_output_seconds, rel=1e-6, abs=1e-9)


def test_chrome_trace_is_valid_trace_event_json(tmp_path: Path) -> None:
    path = _run(trace=True).timeline().save_chrome_trace(tmp_path / "trace.json")
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {"producer#0", "slow_consumer#0"}
    complete = [e for e in events if e["ph"] == "X"]
    assert complete
    for e in complete:
        assert set(e) >= {"name", "ph", "ts", "dur", "pid", "tid"}
        assert e["dur"] >= 0
        assert e["ts"] >= 0


def test_timeline_needs_a_traced_run() -> None:
    ctx = Context()
    ch = ctx.create_channel()
    net = Network(ctx, [producer(ctx, ch, 1), slow_consumer(ctx, ch)])
    with pytest.raises(StreamnetError, match="has not run yet"):
        net.timeline()
    net.run()
    with pytest.raises(StreamnetError, match=r"Context\(trace=True\)"):
        net.timeline()


def test_failure_is_logged_once_with_actor_rank_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @define_actor
    async def broken(ctx: Context, ch_out: Channel[Any]) -> None:
        raise ValueError("nope")

    ctx = Context()
    ch = ctx.create_channel()
    with (
        caplog.at_level(logging.ERROR, logger="streamnet"),
        pytest.raises(ValueError, match="nope"),
    ):
        Network(ctx, [broken(ctx, ch), slow_consumer(ctx, ch)]).run()
    records = [r for r in caplog.records if r.name == "streamnet"]
    assert len(records) == 1
    record = records[0]
    assert record.getMessage() == "actor broken#0 failed on rank 0: ValueError: nope"
    assert record.exc_info is not None
    assert (record.actor, record.rank) == ("broken#0", 0)  # type: ignore[attr-defined]


def test_log_filter_names_the_actor_in_user_records(caplog: pytest.LogCaptureFixture) -> None:
    user = logging.getLogger("my.job")
    user.addFilter(ActorLogFilter())

    @define_actor
    async def chatty(ctx: Context, ch_in: Channel[Any]) -> None:
        async for msg in ch_in:
            user.warning("saw %d", msg.payload)

    ctx = Context()
    ch = ctx.create_channel()
    with caplog.at_level(logging.WARNING, logger="my.job"):
        Network(ctx, [producer(ctx, ch, 2), chatty(ctx, ch)]).run()
    assert [(r.actor, r.getMessage()) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("chatty#0", "saw 0"),
        ("chatty#0", "saw 1"),
    ]


def test_timeline_plots_a_gantt_chart(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    ax = _run(trace=True).timeline().plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["slow_consumer#0", "producer#0"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"busy", "blocked on output"}
    ax.figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 0


@define_actor
async def relay(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    async for msg in ch_in:
        await ch_out.send(ctx, msg)


@pytest.mark.timeout(60)
def test_trace_memory_is_bounded_by_trace_limit() -> None:
    """It grew by every wait (a few per message), 650 MB over 500k messages."""
    import gc
    import tracemalloc

    n, limit = 20_000, 100
    ctx = Context(trace=True, trace_limit=limit, channel_capacity=1)
    a, b = ctx.create_channel(), ctx.create_channel()
    net = Network(ctx, [producer(ctx, a, n), relay(ctx, a, b), consumer(ctx, b)])
    tracemalloc.start()
    try:
        net.run(progress=False)
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 1_000_000, f"{retained} bytes kept for {n} messages"  # unbounded: ~7 MB
    timeline = net.timeline()
    assert set(timeline.truncated) == {"producer#0", "relay#0", "consumer#0"}
    for actor in timeline.actors:
        waits = [s for s in timeline.spans if s.actor == actor and s.kind != "busy"]
        assert len(waits) == limit  # the latest ones
    with pytest.raises(ValueError, match="`trace_limit` must be an int >= 1, got 0"):
        Context(trace=True, trace_limit=0)


@define_actor
async def consumer(ctx: Context, ch_in: Channel[Any]) -> None:
    async for _ in ch_in:
        pass
