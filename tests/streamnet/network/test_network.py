from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings
import weakref
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from waiting import until

from streamnet import (
    Channel,
    ChannelAborted,
    Context,
    Message,
    Network,
    SharedChannelWarning,
    StreamnetError,
    TableChunk,
    UnreadInputError,
    WiringError,
    define_actor,
    run_actor_network,
)


@define_actor()
async def accumulator(ctx, ch_in, ch_out):  # type: ignore[no-untyped-def]  # as the design writes it
    """The canonical actor from the design, as written."""
    total = 0
    msg: Message[TableChunk] | None
    while (msg := await ch_in.recv(ctx)) is not None:
        table = TableChunk.from_message(msg)
        total += table.table_view().num_rows()
        await ch_out.send(ctx, Message(msg.sequence_number, table))
    await ch_out.drain(ctx)


@define_actor
async def table_source(ctx: Context, ch_out: Channel[Any], n: int, rows: int = 10) -> None:
    for i in range(n):
        table = pa.table({"x": list(range(i * rows, (i + 1) * rows))})
        await ch_out.send(ctx, Message(i, TableChunk.from_arrow(table)))
    await ch_out.drain(ctx)


@define_actor
async def collect(ctx: Context, ch_in: Channel[Any], into: list[Any]) -> None:
    while (msg := await ch_in.recv(ctx)) is not None:
        into.append(msg)


@define_actor
async def numbers(ctx: Context, ch_out: Channel[Any], n: int) -> None:
    for i in range(n):
        await ch_out.send(ctx, Message(i, i))


@define_actor
async def passthrough(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    async for msg in ch_in:
        await ch_out.send(ctx, msg)


@define_actor
async def fail_after(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any], k: int) -> None:
    seen = 0
    async for msg in ch_in:
        seen += 1
        if seen > k:
            raise ValueError(f"bad row after {k}")
        await ch_out.send(ctx, msg)


def test_design_example_runs_as_written() -> None:
    with Context() as ctx:
        a, b = ctx.create_channel(TableChunk), ctx.create_channel(TableChunk)
        out: list[Message[TableChunk]] = []
        run_actor_network(
            ctx, actors=[table_source(ctx, a, 5), accumulator(ctx, a, b), collect(ctx, b, out)]
        )
    assert [m.sequence_number for m in out] == [0, 1, 2, 3, 4]
    assert sum(TableChunk.from_message(m).num_rows for m in out) == 50


async def test_run_async_in_a_running_loop() -> None:
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    out: list[Any] = []
    await Network(
        ctx, [numbers(ctx, a, 100), passthrough(ctx, a, b), collect(ctx, b, out)]
    ).run_async()
    assert [m.payload for m in out] == list(range(100))


async def test_run_from_a_thread_with_a_running_loop_like_jupyter() -> None:
    ctx = Context()
    a = ctx.create_channel()
    out: list[Any] = []
    Network(ctx, [numbers(ctx, a, 10), collect(ctx, a, out)]).run()  # blocking call inside a loop
    assert len(out) == 10


async def test_forgotten_drain_never_deadlocks() -> None:
    @define_actor
    async def forgets(ctx: Context, ch_out: Channel[Any]) -> None:
        await ch_out.send(ctx, Message(0, 0))

    ctx = Context()
    a = ctx.create_channel()
    out: list[Any] = []
    async with asyncio.timeout(5):
        await Network(ctx, [forgets(ctx, a), collect(ctx, a, out)]).run_async()
    assert len(out) == 1


async def test_several_producers_end_the_stream_together() -> None:
    ctx = Context()
    a = ctx.create_channel(capacity=1)
    out: list[Any] = []
    async with asyncio.timeout(5):
        await Network(
            ctx, [numbers(ctx, a, 30), numbers(ctx, a, 20), collect(ctx, a, out)]
        ).run_async()
    assert len(out) == 50


async def test_raising_actor_in_five_actor_network_raises_original_and_leaves_no_task() -> None:
    ctx = Context()
    c = [ctx.create_channel(capacity=1) for _ in range(4)]
    out: list[Any] = []
    net = Network(
        ctx,
        [
            numbers(ctx, c[0], 10**9),
            passthrough(ctx, c[0], c[1]),
            fail_after(ctx, c[1], c[2], 3),
            passthrough(ctx, c[2], c[3]),
            collect(ctx, c[3], out),
        ],
    )
    async with asyncio.timeout(2):
        with pytest.raises(ValueError, match="bad row after 3") as info:
            await net.run_async()
    assert type(info.value) is ValueError  # raised as itself, not wrapped
    assert any("fail_after#0" in note for note in info.value.__notes__)
    assert net.state == "failed"
    assert asyncio.all_tasks() == {asyncio.current_task()}
    states = {a.name: a.state for a in net.statistics().actors}
    assert states["fail_after#0"] == "failed"
    assert all(c.state == "aborted" for c in net.channels)


async def test_failure_in_a_source_cancels_a_blocked_sink() -> None:
    @define_actor
    async def broken_source(ctx: Context, ch_out: Channel[Any]) -> None:
        await until(lambda: ch_out.statistics().waiting_receivers == 1)  # the sink is blocked
        raise KeyError("missing")

    ctx = Context()
    a = ctx.create_channel()
    out: list[Any] = []
    async with asyncio.timeout(2):
        with pytest.raises(KeyError):
            await Network(ctx, [broken_source(ctx, a), collect(ctx, a, out)]).run_async()


async def test_failure_cancels_an_actor_blocked_outside_channels() -> None:
    blocked = asyncio.Event()

    @define_actor
    async def sleeper(ctx: Context, ch_in: Channel[Any]) -> None:
        blocked.set()
        await asyncio.Event().wait()  # blocked for good, and not on a channel

    @define_actor
    async def boom(ctx: Context, ch_out: Channel[Any]) -> None:
        await blocked.wait()
        raise RuntimeError("boom")

    ctx = Context()
    a = ctx.create_channel()
    async with asyncio.timeout(2):
        with pytest.raises(RuntimeError, match="boom"):
            await Network(ctx, [boom(ctx, a), sleeper(ctx, a)]).run_async()


async def test_actor_ignoring_cancellation_does_not_hang_the_network() -> None:
    hold = True
    blocked = asyncio.Event()

    @define_actor
    async def stubborn(ctx: Context, ch_in: Channel[Any]) -> None:
        while True:
            try:
                blocked.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if not hold:
                    raise

    @define_actor
    async def boom(ctx: Context, ch_out: Channel[Any]) -> None:
        await blocked.wait()
        raise RuntimeError("boom")

    ctx = Context(cancel_grace=0.1)
    a = ctx.create_channel()
    net = Network(ctx, [boom(ctx, a), stubborn(ctx, a)])
    async with asyncio.timeout(3):
        with pytest.raises(RuntimeError, match="boom") as info:
            await net.run_async()
    assert any("stubborn#0" in n and "did not stop" in n for n in info.value.__notes__)
    hold = False
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    assert len(leftovers) == 1
    for task in leftovers:
        task.cancel()
    await asyncio.wait(leftovers, timeout=1)


async def test_consumer_stopping_early_stops_the_producer_cleanly() -> None:
    @define_actor
    async def take(ctx: Context, ch_in: Channel[Any], n: int, into: list[Any]) -> None:
        async for msg in ch_in:
            into.append(msg.payload)
            if len(into) == n:
                await ch_in.shutdown(ctx)  # on purpose: upstream may stop
                return

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    out: list[Any] = []
    net = Network(ctx, [numbers(ctx, a, 10**9), passthrough(ctx, a, b), take(ctx, b, 5, out)])
    async with asyncio.timeout(5):
        await net.run_async()
    assert out == [0, 1, 2, 3, 4]
    assert net.state == "done"
    assert {a.state for a in net.statistics().actors} == {"done"}


async def test_channel_broken_on_an_input_is_a_failure() -> None:
    @define_actor
    async def misuse(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        await ch_in.shutdown(ctx)
        await ch_in.send(ctx, Message(0, 0))  # sending into its own input

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    out: list[Any] = []
    with pytest.raises(StreamnetError, match="shut down"):
        await Network(
            ctx, [numbers(ctx, a, 3), misuse(ctx, a, b), collect(ctx, b, out)]
        ).run_async()


async def test_a_cancelled_error_from_an_actors_own_code_is_a_failure() -> None:
    """An actor that awaits a task someone cancelled gets CancelledError, though nobody
    cancelled the actor: its stream ended there, so the run fails (it succeeded, with the
    rows the actor never sent silently missing)."""

    @define_actor
    async def awaits_a_cancelled_task(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for msg in ch_in:
            if msg.sequence_number == 1:
                helper = asyncio.ensure_future(asyncio.sleep(10))
                helper.cancel()
                await helper
            await ch_out.send(ctx, msg)
        await ch_out.drain(ctx)

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    out: list[Any] = []
    node = awaits_a_cancelled_task(ctx, a, b)
    with pytest.raises(RuntimeError, match="`awaits_a_cancelled_task#0` raised CancelledError, though it was not cancelled") as info:
        await Network(ctx, [numbers(ctx, a, 5), node, collect(ctx, b, out)]).run_async()
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert node.state == "failed"


async def test_a_second_failure_is_noted_on_the_first() -> None:
    blocked = asyncio.Event()

    @define_actor
    async def boom(ctx: Context, ch_out: Channel[Any]) -> None:
        await blocked.wait()
        raise RuntimeError("first")

    @define_actor
    async def bad_cleanup(ctx: Context, ch_in: Channel[Any]) -> None:
        try:
            blocked.set()
            await asyncio.Event().wait()
        finally:
            raise OSError("cleanup failed")

    ctx = Context()
    a = ctx.create_channel()
    with pytest.raises(RuntimeError, match="first") as info:
        await Network(ctx, [boom(ctx, a), bad_cleanup(ctx, a)]).run_async()
    assert any("bad_cleanup#0" in n and "cleanup failed" in n for n in info.value.__notes__)


async def test_downstream_sees_abort_not_a_normal_end() -> None:
    seen: list[Any] = []
    got_first = asyncio.Event()

    @define_actor
    async def watcher(ctx: Context, ch_in: Channel[Any]) -> None:
        try:
            await ch_in.recv(ctx)
            got_first.set()
            await ch_in.recv(ctx)  # blocks: the next thing it sees is the abort
        except ChannelAborted as exc:
            seen.append(exc)
            raise

    @define_actor
    async def boom(ctx: Context, ch_out: Channel[Any]) -> None:
        await ch_out.send(ctx, Message(0, 0))
        await got_first.wait()
        raise OSError("disk")

    ctx = Context()
    a = ctx.create_channel()
    with pytest.raises(OSError, match="disk"):
        await Network(ctx, [boom(ctx, a), watcher(ctx, a)]).run_async()
    assert len(seen) == 1 and isinstance(seen[0].__cause__, OSError)


async def test_cancelling_run_async_cancels_every_actor() -> None:
    ctx = Context()
    a = ctx.create_channel()
    running = asyncio.Event()

    @define_actor
    async def forever(ctx: Context, ch_in: Channel[Any]) -> None:
        running.set()
        await asyncio.Event().wait()

    net = Network(ctx, [numbers(ctx, a, 10**9), forever(ctx, a)])
    task = asyncio.create_task(net.run_async())
    await asyncio.wait_for(running.wait(), 5)
    await until(lambda: a.statistics().waiting_senders == 1)  # the producer is blocked too
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert net.state == "cancelled"
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_network_runs_once() -> None:
    ctx = Context()
    a = ctx.create_channel()
    net = Network(ctx, [numbers(ctx, a, 1), collect(ctx, a, [])])
    await net.run_async()
    with pytest.raises(StreamnetError, match="runs once"):
        await net.run_async()


# ---------------------------------------------------------------- validation
def test_validation_reports_every_problem_at_once() -> None:
    @define_actor
    async def odd(ctx: Context, left: Channel[Any]) -> None: ...

    ctx = Context()
    dangling_in = ctx.create_channel(name="nobody-produces")
    dangling_out = ctx.create_channel(name="nobody-consumes")
    c = ctx.create_channel(name="c")
    with pytest.raises(WiringError) as info:
        Network(ctx, [collect(ctx, dangling_in, []), numbers(ctx, dangling_out, 1), odd(ctx, c)])
    problems = info.value.problems
    assert len(problems) == 3
    assert any(
        "`nobody-produces` has no producer" in p and "`collect#0`.ch_in" in p for p in problems
    )
    assert any(
        "`nobody-consumes` has no consumer" in p and "`numbers#0`.ch_out" in p for p in problems
    )
    assert any(
        "`odd#0` parameter `left`" in p and "neither an input nor an output" in p for p in problems
    )
    assert str(info.value).startswith("network wiring has 3 problems:\n  - ")
    assert isinstance(info.value, ValueError)


def test_validation_explains_non_nodes() -> None:
    async def plain(ctx: Context, ch_out: Channel[Any] | None) -> None: ...

    ctx = Context()
    with pytest.raises(WiringError) as info:
        Network(ctx, [numbers, plain, plain(ctx, None), 3])  # type: ignore[list-item]
    text = str(info.value)
    assert "actors[0] is the actor definition `numbers`, not a node" in text
    assert "actors[1] is the function" in text and "@define_actor" in text
    assert "actors[2] is a coroutine" in text
    assert "actors[3] is a int" in text


def test_validation_rejects_empty_and_duplicate_and_foreign_context() -> None:
    ctx, other = Context(), Context()
    with pytest.raises(WiringError, match="no actors"):
        Network(ctx, [])
    a = ctx.create_channel()
    producer = numbers(ctx, a, 1)
    with pytest.raises(WiringError, match="listed twice"):
        Network(ctx, [producer, producer, collect(ctx, a, [])])
    b = other.create_channel()
    with pytest.raises(WiringError, match="another Context"):
        Network(ctx, [numbers(other, b, 1), collect(other, b, [])])


def test_channel_used_by_two_networks_is_rejected() -> None:
    ctx = Context()
    a = ctx.create_channel(name="shared")
    first = Network(ctx, [numbers(ctx, a, 1), collect(ctx, a, [])])
    with pytest.raises(WiringError, match="`shared` already belongs to another network"):
        Network(ctx, [numbers(ctx, a, 1), collect(ctx, a, [])])
    del first


def test_a_network_no_longer_referenced_is_freed_with_its_context_and_threads() -> None:
    """Nothing of the library keeps a network alive once its user drops it: not the
    record of which network owns a channel. Else every network run in a notebook would
    keep its Context, its data and its thread pool until the process ends."""

    def run_one() -> tuple[weakref.ref[Context], weakref.ref[Network]]:
        ctx = Context()
        ch = ctx.create_channel()
        network = Network(ctx, [numbers(ctx, ch, 3), collect(ctx, ch, [])])
        network.run()
        return weakref.ref(ctx), weakref.ref(network)

    ctx_ref, network_ref = run_one()
    gc.collect()
    assert network_ref() is None
    assert ctx_ref() is None


def test_payload_type_mismatch_between_annotations_is_rejected() -> None:
    @define_actor
    async def ints(ctx: Context, ch_out: Channel[int]) -> None: ...

    @define_actor
    async def strs(ctx: Context, ch_in: Channel[str]) -> None: ...

    @define_actor
    async def tables(ctx: Context, ch_in: Channel[TableChunk]) -> None: ...

    ctx = Context()
    a = ctx.create_channel(name="a")
    with pytest.raises(
        WiringError, match="`a`: `ints#0`.ch_out sends int but `strs#0`.ch_in expects str"
    ):
        Network(ctx, [ints(ctx, a), strs(ctx, a)])
    b = ctx.create_channel(TableChunk, name="b")
    with pytest.raises(WiringError, match="`b` carries TableChunk but `ints#1`.ch_out sends int"):
        Network(ctx, [ints(ctx, b), tables(ctx, b)])  # type: ignore[arg-type]  # on purpose


def test_compatible_annotations_pass() -> None:
    @define_actor
    async def bools(ctx: Context, ch_out: Channel[bool]) -> None:
        await ch_out.send(ctx, Message(0, True))

    @define_actor
    async def ints(ctx: Context, ch_in: Channel[int]) -> list[int]:
        return [msg.payload async for msg in ch_in]

    ctx = Context()
    a = ctx.create_channel(int)
    sink = ints(ctx, a)
    # A bool is an int: the wiring accepts it (mypy's Channel is invariant, the run time is not).
    net = Network(ctx, [bools(ctx, a), sink])  # type: ignore[arg-type]
    net.run()
    assert sink.result() == [True]
    assert net.state == "done"


def test_network_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="`ctx` must be a streamnet.Context"):
        Network(None, [])  # type: ignore[arg-type]
    ctx = Context()
    a = ctx.create_channel()
    with pytest.raises(TypeError, match="list of actor nodes"):
        Network(ctx, numbers(ctx, a, 1))  # type: ignore[arg-type]


# ---------------------------------------------------------------- KeyboardInterrupt
@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_keyboard_interrupt_cancels_the_network_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from streamnet import Context, Message, Network, define_actor

            @define_actor
            async def endless(ctx, ch_out):
                i = 0
                while True:
                    await ch_out.send(ctx, Message(i, i))
                    i += 1

            @define_actor
            async def slow(ctx, ch_in):
                print("started", flush=True)
                try:
                    async for _ in ch_in:
                        await asyncio.sleep(0.01)  # a slow sink: the run is busy at the Ctrl-C
                finally:
                    print("sink cleaned up", flush=True)

            ctx = Context()
            ch = ctx.create_channel()
            try:
                Network(ctx, [endless(ctx, ch), slow(ctx, ch)]).run()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(3)
            """
        )
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert "sink cleaned up" in out and "interrupted" in out


SLOW_KERNEL_JOB = """
import logging, sys, threading
from streamnet import Context, Network, define_actor

logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
logging.getLogger("streamnet").setLevel(logging.DEBUG)
release = threading.Event()

def kernel():  # a long read, a slow disk
    print("kernel running", flush=True)
    release.wait(60)
    print("kernel ended", flush=True)

@define_actor
async def slow(ctx):
    try:
        await ctx.to_thread(kernel)
    finally:
        print("cleanup", flush=True)

ctx = Context(cancel_grace=float(sys.argv[1]))
try:
    Network(ctx, [slow(ctx)]).run()
except KeyboardInterrupt:
    print("interrupted", flush=True)
release.set()
"""


LEFT_RUNNING = (
    r"WARNING actor `slow#0` was cancelled while its kernel `kernel` ran in the thread pool; "
    r"the kernel still runs after [0-9.]+ s \(Context\(cancel_grace={grace}\)\) and is left "
    r"running: the caller's cleanup waits until it ends"
)


def start_job(tmp_path: Path, source: str, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / "job.py"
    script.write_text(source)
    root = Path(__file__).resolve().parents[3]
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "error"},
    )


def wait_for_line(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """The lines ``proc`` printed up to the first that contains ``needle``."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"the job ended without printing {needle!r}: {lines}")


def assert_quiet_end(err: str) -> None:
    """No task destroyed pending, no actor failing with GeneratorExit, no context error."""
    for bad in ("Task was destroyed", "GeneratorExit", "different Context", "Traceback"):
        assert bad not in err, err


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
@pytest.mark.timeout(60)
def test_ctrl_c_waits_for_a_running_kernel_at_most_cancel_grace(tmp_path: Path) -> None:
    proc = start_job(tmp_path, SLOW_KERNEL_JOB, "0.2")
    wait_for_line(proc, "kernel running")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=45)
    lines = [line for line in out.splitlines() if not line.startswith("DEBUG")]
    assert lines[1:] == [
        "interrupted",  # before the kernel ended: the run did not wait for it
        "kernel ended",
        "cleanup",  # once the kernel ended, in its thread (the loop is closed by then)
    ]
    assert re.fullmatch(LEFT_RUNNING.format(grace=0.2), lines[0]), lines[0]
    assert proc.returncode == 0
    assert_quiet_end(err)


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
@pytest.mark.timeout(60)
def test_a_second_ctrl_c_ends_the_wait_for_a_running_kernel(tmp_path: Path) -> None:
    proc = start_job(tmp_path, SLOW_KERNEL_JOB, "600")
    wait_for_line(proc, "kernel running")
    proc.send_signal(signal.SIGINT)
    wait_for_line(proc, "it waits for the kernel at most 600 s")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=45)
    lines = out.splitlines()
    assert lines[-3:] == ["interrupted", "kernel ended", "cleanup"]
    assert re.fullmatch(LEFT_RUNNING.format(grace=600), lines[-4]), lines[-4]
    assert proc.returncode == 0
    assert_quiet_end(err)


# ---------------------------------------------------------------- reading inputs to the end
@define_actor
async def first_three(ctx: Context, ch_in: Channel[Any], into: list[Any]) -> None:
    async for msg in ch_in:
        into.append(msg.payload)
        if len(into) == 3:
            return  # leaves the rest of the stream unread


async def test_an_actor_returning_with_input_unread_is_an_error_naming_it() -> None:
    ctx = Context()
    a = ctx.create_channel(name="numbers")
    net = Network(ctx, [numbers(ctx, a, 1000), first_three(ctx, a, [])])
    async with asyncio.timeout(5):
        with pytest.raises(UnreadInputError) as info:
            await net.run_async()
    text = str(info.value)
    assert re.match(
        r"actor `first_three#0` returned without reading its input `ch_in` to the end: "
        r"channel `numbers` (still holds \d+ message\(s\)|was sent message sequence number "
        r"\d+ after the actor returned)\.",  # as the producer was ahead or not
        text,
    )
    assert "`await ch_in.shutdown(ctx)`" in text and "@define_actor(stops_early=True)" in text
    assert net.state == "failed"


async def test_an_actor_returning_with_messages_left_in_a_drained_input_is_an_error() -> None:
    @define_actor
    async def a_then_b(ctx: Context, a_out: Channel[Any], b_out: Channel[Any]) -> None:
        for i in range(3):
            await a_out.send(ctx, Message(i, i))
        await a_out.drain(ctx)
        await b_out.send(ctx, Message(0, 0))

    @define_actor
    async def waits_then_takes_one(
        ctx: Context, ch_in: Channel[Any], other_in: Channel[Any]
    ) -> None:
        async for _ in other_in:  # by then `ch_in` holds everything and was drained
            pass
        await ch_in.recv(ctx)

    ctx = Context()
    a, b = ctx.create_channel(name="a", capacity=4), ctx.create_channel(name="b")
    net = Network(ctx, [a_then_b(ctx, a, b), waits_then_takes_one(ctx, a, b)])
    with pytest.raises(UnreadInputError, match="channel `a` still holds 2 message"):
        await net.run_async()


def one_message_stream(ctx: Context, order: str, *, more: bool = False) -> Network:
    """A producer sends one message (``more``: then a second) and drains; its consumer
    takes one and returns. ``order`` says which of the drain and the return comes first."""
    drained, returned = asyncio.Event(), asyncio.Event()

    @define_actor
    async def producer(ctx: Context, ch_out: Channel[Any]) -> None:
        await ch_out.send(ctx, Message(0, "config"))
        if order == "consumer returns first":
            await returned.wait()
        if more:
            await ch_out.send(ctx, Message(1, "more"))
        await ch_out.drain(ctx)
        drained.set()

    @define_actor
    async def takes_one(ctx: Context, ch_in: Channel[Any]) -> Any:
        msg = await ch_in.recv(ctx)
        assert msg is not None
        if order == "producer drains first":
            await drained.wait()
        asyncio.get_running_loop().call_soon(returned.set)  # runs once this actor ended
        return msg.payload

    channel = ctx.create_channel(name="config")
    return Network(ctx, [producer(ctx, channel), takes_one(ctx, channel)])


ORDERS = ["producer drains first", "consumer returns first"]


@pytest.mark.parametrize("order", ORDERS)
async def test_a_consumer_that_returns_after_the_streams_last_message_loses_nothing(
    order: str,
) -> None:
    """Whether the producer's drain or the consumer's return comes first is scheduling."""
    ctx = Context()
    net = one_message_stream(ctx, order)
    async with asyncio.timeout(10):
        await net.run_async()
    assert net.state == "done"
    assert net.actors[1].result() == "config"


@pytest.mark.parametrize("order", ORDERS)
async def test_a_message_sent_to_a_consumer_that_returned_is_an_error_naming_it(
    order: str,
) -> None:
    ctx = Context()
    net = one_message_stream(ctx, order, more=True)
    async with asyncio.timeout(10):
        with pytest.raises(UnreadInputError) as info:
            await net.run_async()
    detail = {  # buffered when the consumer returned, or sent after
        "producer drains first": "still holds 1 message(s)",
        "consumer returns first": "was sent message sequence number 1 after the actor returned",
    }[order]
    assert str(info.value).startswith(
        "actor `takes_one#0` returned without reading its input `ch_in` to the end: channel "
        f"`config` {detail}. Read until `recv` returns None"
    )
    assert net.state == "failed"
    assert net.actors[1].state == "failed"


async def test_an_actor_declared_to_stop_early_may_leave_its_input() -> None:
    taken: list[Any] = []
    stops = define_actor(stops_early=True)(first_three.fn)
    ctx = Context()
    a = ctx.create_channel()
    net = Network(ctx, [numbers(ctx, a, 10**9), stops(ctx, a, taken)])
    async with asyncio.timeout(5):
        await net.run_async()  # and the endless producer stops with it
    assert taken == [0, 1, 2]
    assert net.state == "done"


async def test_a_worker_leaving_a_pool_early_loses_nothing() -> None:
    @define_actor
    async def worker(
        ctx: Context, ch_in: Channel[Any], into: list[Any], quit_after: int | None
    ) -> None:
        async for msg in ch_in:
            into.append(msg.payload)
            if quit_after is not None and len(into) == quit_after:
                return  # the other worker reads the rest

    ctx = Context()
    a = ctx.create_channel()
    quitter: list[Any] = []
    stayer: list[Any] = []
    await Network(
        ctx, [numbers(ctx, a, 100), worker(ctx, a, quitter, 1), worker(ctx, a, stayer, None)]
    ).run_async()
    assert sorted(quitter + stayer) == list(range(100))


# ---------------------------------------------------------------- several consumers
def test_consumers_of_different_kinds_on_one_channel_are_warned_about() -> None:
    ctx = Context()
    a = ctx.create_channel(name="shared")
    with pytest.warns(SharedChannelWarning) as info:
        Network(ctx, [numbers(ctx, a, 3), collect(ctx, a, []), passthrough_sink(ctx, a)])
    (warning,) = info.list
    text = str(warning.message)
    assert text.startswith(
        "channel `shared` is consumed by actors of different kinds, `collect#0` and "
        "`passthrough_sink#0`: each receives only part of its stream"
    )
    assert warning.filename == __file__  # points at the Network(...) call


def test_a_worker_pool_of_one_definition_is_not_warned_about() -> None:
    ctx = Context()
    a = ctx.create_channel()
    Network(ctx, [numbers(ctx, a, 3), collect(ctx, a, []), collect(ctx, a, [])])  # errors if warned


def test_the_shared_channel_warning_can_be_silenced() -> None:
    ctx = Context()
    a = ctx.create_channel()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SharedChannelWarning)
        Network(ctx, [numbers(ctx, a, 3), collect(ctx, a, []), passthrough_sink(ctx, a)])


@define_actor
async def passthrough_sink(ctx: Context, ch_in: Channel[Any]) -> None:
    async for _ in ch_in:
        pass


# ---------------------------------------------------------------- cycles
@define_actor
async def relay(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    async for msg in ch_in:
        await ch_out.send(ctx, msg)


def test_a_cycle_is_a_wiring_error_listing_it() -> None:
    ctx = Context()
    ab, bc, ca = (ctx.create_channel(name=n) for n in ("ab", "bc", "ca"))
    with pytest.raises(WiringError) as info:
        Network(ctx, [relay(ctx, ca, ab), relay(ctx, ab, bc), relay(ctx, bc, ca)])
    (problem,) = info.value.problems
    assert problem.startswith(
        "actors form a cycle: `relay#0` -[`ab`] -> `relay#1` -[`bc`] -> `relay#2` -[`ca`] -> "
        "`relay#0`"
    )
    assert "Network(..., feedback=[<channel `ca`>])" in problem


def test_an_actor_feeding_itself_is_a_cycle() -> None:
    @define_actor
    async def own_tail(
        ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any], extra_in: Channel[Any]
    ) -> None:
        pass

    ctx = Context()
    loop, start = ctx.create_channel(name="loop"), ctx.create_channel(name="start")
    with pytest.raises(WiringError, match=r"cycle: `own_tail#0` -\[`loop`\] -> `own_tail#0`"):
        Network(ctx, [numbers(ctx, start, 1), own_tail(ctx, loop, loop, start)])


async def test_a_declared_feedback_loop_runs() -> None:
    @define_actor
    async def counter(
        ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any], until: int, seen: list[Any]
    ) -> None:
        await ch_out.send(ctx, Message(0, 0))
        async for msg in ch_in:
            seen.append(msg.payload)
            if msg.payload >= until:
                await ch_out.drain(ctx)  # the loop ends: `increment` ends, then `back` does
            else:
                await ch_out.send(ctx, Message(msg.sequence_number + 1, msg.payload))

    @define_actor
    async def increment(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for msg in ch_in:
            await ch_out.send(ctx, Message(msg.sequence_number, msg.payload + 1))

    ctx = Context()
    forth, back = ctx.create_channel(), ctx.create_channel()
    seen: list[Any] = []
    async with asyncio.timeout(5):
        await Network(
            ctx, [counter(ctx, back, forth, 5, seen), increment(ctx, forth, back)], feedback=[back]
        ).run_async()
    assert seen == [1, 2, 3, 4, 5]


def test_a_feedback_declaration_must_close_a_loop_of_this_network() -> None:
    ctx = Context()
    a, b = ctx.create_channel(name="a"), ctx.create_channel(name="b")
    stray: Channel[Any] = Channel(name="stray")
    with pytest.raises(WiringError) as info:
        Network(
            ctx, [numbers(ctx, a, 1), relay(ctx, a, b), collect(ctx, b, [])], feedback=[b, stray]
        )
    assert info.value.problems == (
        "feedback channel `stray` is not a channel of this network's actors",
        "feedback channel `b` closes no loop: no actor that receives from it sends, directly "
        "or not, into it; drop it from `feedback`",
    )


def test_an_actor_whose_task_is_destroyed_unfinished_is_not_reported_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A loop closed under a running network (a script interrupted while asyncio waits for
    its tasks) leaves them to be destroyed, their coroutines closed with GeneratorExit:
    not an actor's failure, and nothing else goes wrong (their context is gone)."""
    loop = asyncio.new_event_loop()
    started = asyncio.Event()
    closed: list[str] = []

    @define_actor
    async def waits(ctx: Context) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            closed.append("closed")

    ctx = Context()
    node = waits(ctx)
    run = loop.create_task(Network(ctx, [node]).run_async())
    loop.run_until_complete(asyncio.wait_for(started.wait(), 10))
    tasks = asyncio.all_tasks(loop)
    loop.set_exception_handler(lambda loop, context: None)  # tasks destroyed pending, on purpose
    loop.close()  # with the network still running
    for task in sorted(tasks, key=lambda t: t is run):  # the actor's first, as a collector may
        task.get_coro().close()  # what destroying the task does
    assert closed == ["closed"]
    assert node.state == "cancelled"
    assert [r.getMessage() for r in caplog.records if r.name == "streamnet"] == []
