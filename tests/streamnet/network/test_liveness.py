"""Liveness: deadlocked networks fail with DeadlockError, and a blocked event loop is reported."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import polars as pl
import pytest

import actors
from channels import Channel, recv_any
from streamnet import (
    ActorNode,
    Context,
    DeadlockError,
    InProcessWorld,
    Message,
    Network,
    RemoteRankError,
    TableChunk,
    define_actor,
    run_ranks_async,
)
from streamnet.network._driver import NetworkDriver
from streamnet.network._liveness import deadlocked, timer_targets

pytestmark = pytest.mark.timeout(60)


class Looks:
    """Counts the looks running networks take at their actors; releases events after some."""

    def __init__(self) -> None:
        self.count = 0
        self._targets: list[tuple[int, Any]] = []

    def release_after(self, looks: int, event: Any) -> Any:
        """Set ``event`` (asyncio or threading) once ``looks`` more looks were taken."""
        self._targets.append((self.count + looks, event))
        return event

    def after(self, looks: int) -> asyncio.Event:
        return self.release_after(looks, asyncio.Event())  # type: ignore[no-any-return]

    def seen(self) -> None:
        self.count += 1
        for target, event in self._targets:
            if self.count >= target:
                event.set()


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> Looks:
    counter = Looks()
    original = NetworkDriver.look

    def counting(self: NetworkDriver, finished: int) -> None:
        original(self, finished)
        counter.seen()

    monkeypatch.setattr(NetworkDriver, "look", counting)
    return counter


@define_actor
async def echo(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    async for msg in ch_in:
        await ch_out.send(ctx, msg)


@define_actor
async def numbers(ctx: Context, ch_out: Channel[Any], n: int) -> None:
    for i in range(n):
        await ch_out.send(ctx, Message(i, i))


@define_actor
async def collect(ctx: Context, ch_in: Channel[Any], into: list[Any]) -> None:
    async for msg in ch_in:
        into.append(msg.payload)


async def run_expecting_deadlock(net: Network) -> str:
    async with asyncio.timeout(10):
        with pytest.raises(DeadlockError) as info:
            await net.run_async()
    assert net.state == "failed"
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left behind
    return str(info.value)


# ------------------------------------------------------------------------ deadlocks
async def test_two_actors_waiting_on_each_others_output_fail_with_deadlock_error() -> None:
    ctx = Context()
    ab, ba = ctx.create_channel(name="ab"), ctx.create_channel(name="ba")
    net = Network(
        ctx, [echo(ctx, ba, ab).named("left"), echo(ctx, ab, ba).named("right")], feedback=[ba]
    )
    text = await run_expecting_deadlock(net)
    assert text.startswith("network `network` is deadlocked")
    assert "actor `left` waits to receive from channel `ba` (empty; produced by `right`)" in text
    assert "actor `right` waits to receive from channel `ab` (empty; produced by `left`)" in text


async def test_a_loop_whose_channels_fill_up_fails_with_deadlock_error() -> None:
    @define_actor
    async def flood(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any], n: int) -> None:
        for i in range(n):  # sends everything before it reads anything back
            await ch_out.send(ctx, Message(i, i))
        async for _ in ch_in:
            pass

    ctx = Context(channel_capacity=1)
    ab, ba = ctx.create_channel(name="ab"), ctx.create_channel(name="ba")
    net = Network(ctx, [flood(ctx, ba, ab, 10), echo(ctx, ab, ba)], feedback=[ba])
    text = await run_expecting_deadlock(net)
    assert (
        "actor `flood#0` waits to send into channel `ab` (full: 1 of 1 messages; "
        "consumed by `echo#0`)" in text
    )
    assert "actor `echo#0` waits to send into channel `ba` (full: 1 of 1 messages" in text


async def test_an_actor_that_never_reads_an_input_its_producer_fills_is_a_deadlock() -> None:
    @define_actor
    async def two_outputs(ctx: Context, first_out: Channel[Any], second_out: Channel[Any]) -> None:
        for i in range(5):
            await first_out.send(ctx, Message(i, i))
        await second_out.send(ctx, Message(0, "last"))

    @define_actor
    async def second_first(ctx: Context, first_in: Channel[Any], second_in: Channel[Any]) -> None:
        await second_in.recv(ctx)  # waits for what comes after everything on `first`
        async for _ in first_in:
            pass
        async for _ in second_in:
            pass

    ctx = Context()
    first, second = ctx.create_channel(name="first"), ctx.create_channel(name="second")
    net = Network(ctx, [two_outputs(ctx, first, second), second_first(ctx, first, second)])
    text = await run_expecting_deadlock(net)
    assert "actor `two_outputs#0` waits to send into channel `first` (full: 2 of 2" in text
    assert (
        "actor `second_first#0` waits to receive from channel `second` (empty; produced by "
        "`two_outputs#0`)" in text
    )


async def test_a_deadlock_on_one_rank_is_raised_and_reaches_the_others() -> None:
    @define_actor
    async def two_outputs(ctx: Context, first_out: Channel[Any], second_out: Channel[Any]) -> None:
        for i in range(5):
            await first_out.send(ctx, Message(i, i))
        await second_out.send(ctx, Message(0, "last"))

    @define_actor
    async def second_first(ctx: Context, first_in: Channel[Any], second_in: Channel[Any]) -> None:
        await second_in.recv(ctx)
        async for _ in first_in:
            pass

    gate = asyncio.Event()  # rank 1 stays in its shuffle until rank 0 failed
    seen: dict[int, BaseException] = {}

    @define_actor
    async def held(ctx: Context, ch_out: Channel[Any]) -> None:
        await gate.wait()

    async def job(ctx: Context) -> None:
        a, b, first, second = (ctx.create_channel() for _ in range(4))
        source = actors.from_polars(ctx, a, pl.DataFrame({"k": [1, 2]}))
        nodes: list[ActorNode[Any]] = [source if ctx.rank == 0 else held(ctx, a)]
        nodes += [actors.shuffle(ctx, a, b, "k"), actors.collect(ctx, b)]
        if ctx.rank == 0:
            nodes += [two_outputs(ctx, first, second), second_first(ctx, first, second)]
        try:
            await Network(ctx, nodes).run_async()
        except BaseException as exc:
            seen[ctx.rank] = exc
            gate.set()
            raise

    async with asyncio.timeout(20):
        with pytest.raises(DeadlockError, match="network `network` on rank 0 is deadlocked"):
            await run_ranks_async(2, job)
    assert isinstance(seen[1], RemoteRankError)
    assert isinstance(seen[1].cause, DeadlockError)


def test_only_stalled_actors_that_nothing_can_wake_are_deadlocked() -> None:
    a, b = Channel[int](name="a"), Channel[int](name="b")
    stalled: dict[str, list[Any]] = {"x": [((a,), "receive")], "y": [((b,), "send")]}
    served_by_z = {("a", "receive"): ["y"], ("b", "send"): ["z"]}
    assert deadlocked(stalled, ["z"], lambda ch, kind: served_by_z[ch.name, kind]) == []
    in_a_ring = {("a", "receive"): ["y"], ("b", "send"): ["x"]}
    assert sorted(deadlocked(stalled, ["z"], lambda ch, kind: in_a_ring[ch.name, kind])) == [
        "x",
        "y",
    ]


# ------------------------------------------------------------------------ a peer's failure
async def test_a_network_started_after_a_peer_failed_fails_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = InProcessWorld(2)
    world.communicator(1).abort(ValueError("disk full"))
    ran: list[str] = []

    @define_actor
    async def never(ctx: Context) -> None:
        ran.append("ran")

    ctx = Context(communicator=world.communicator(0))
    net = Network(ctx, [never(ctx)])
    async with asyncio.timeout(10):
        with pytest.raises(RemoteRankError, match="rank 1 failed: ValueError: disk full") as info:
            await net.run_async()
    assert (info.value.rank, ran, net.state) == (1, [], "failed")
    assert [r.getMessage() for r in caplog.records if r.name == "streamnet"] == [
        "network network failed on rank 0: RemoteRankError: rank 1 failed: ValueError: disk full"
    ]


async def test_a_network_that_finished_is_not_failed_by_a_peers_later_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rank 1's failure is heard of as rank 0's last actor returns, and after the run."""
    world = InProcessWorld(2)
    peer = world.communicator(1)

    @define_actor
    async def last(ctx: Context) -> None:
        if ctx.rank == 0:
            peer.abort(ValueError("later"))  # its news arrives once this actor has returned

    async def run(rank: int) -> Network:
        ctx = Context(communicator=world.communicator(rank))
        net = Network(ctx, [last(ctx)])
        await net.run_async()
        return net

    async with asyncio.timeout(10):
        networks = await asyncio.gather(run(0), run(1))
        peer.abort(KeyError("even later"))
        # A watcher added now is told after whatever the failure scheduled (a loop runs
        # its callbacks in order): once it is, a network still watching would have heard.
        told = asyncio.get_running_loop().create_future()
        world.communicator(0).watch(told.set_result)
        await told
    assert [net.state for net in networks] == ["done", "done"]
    assert str(world.communicator(0).failure) == "rank 1 failed: ValueError: later"
    assert [r for r in caplog.records if r.name == "streamnet"] == []


# ------------------------------------------------------------------------ what is no deadlock
async def _delivers_late(source: Callable[[Context, Channel[Any]], ActorNode[Any]]) -> None:
    """``source`` sends one late message to a collecting actor: it arrives, no DeadlockError."""
    ctx = Context()
    a = ctx.create_channel()
    out: list[Any] = []
    async with asyncio.timeout(30):
        await Network(ctx, [source(ctx, a), collect(ctx, a, out)]).run_async()
    assert out == ["late"]


async def test_an_actor_running_a_kernel_is_not_deadlocked(looks: Looks) -> None:
    released = looks.release_after(5, threading.Event())

    @define_actor
    async def slow_source(ctx: Context, ch_out: Channel[Any]) -> None:
        assert await ctx.to_thread(released.wait, 30)  # meanwhile its consumer waits
        await ch_out.send(ctx, Message(0, "late"))

    await _delivers_late(slow_source)


async def test_an_actor_awaiting_something_else_is_not_deadlocked(looks: Looks) -> None:
    @define_actor
    async def waits_for_an_event(ctx: Context, ch_out: Channel[Any]) -> None:
        await looks.after(5).wait()  # not a channel: the network cannot judge it
        await ch_out.send(ctx, Message(0, "late"))

    await _delivers_late(waits_for_an_event)


async def test_a_collective_waiting_on_another_rank_is_not_deadlocked(looks: Looks) -> None:
    @define_actor
    async def late_on_rank_1(ctx: Context, ch_out: Channel[Any]) -> None:
        if ctx.rank == 1:
            await looks.after(10).wait()  # rank 0's shuffle waits for this rank meanwhile
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(pl.DataFrame({"k": [ctx.rank]}))))

    async def job(ctx: Context) -> int:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b)
        nodes: list[ActorNode[Any]] = [late_on_rank_1(ctx, a), actors.shuffle(ctx, a, b, "k"), sink]
        await Network(ctx, nodes).run_async()
        return int(sink.result().num_rows)

    async with asyncio.timeout(30):
        assert sum(await run_ranks_async(2, job)) == 2


async def test_a_task_an_actor_started_counts_as_that_actor(looks: Looks) -> None:
    @define_actor
    async def pumps_from_a_task(
        ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any], into: list[Any]
    ) -> None:
        async def pump() -> None:
            await looks.after(5).wait()  # while this task waits, the actor's own waits on `back`
            await ch_out.send(ctx, Message(0, "ping"))
            await ch_out.drain(ctx)

        task = asyncio.create_task(pump())
        into.extend([msg.payload async for msg in ch_in])
        await task

    @define_actor
    async def pong(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for msg in ch_in:
            await ch_out.send(ctx, Message(msg.sequence_number, msg.payload + "-pong"))

    ctx = Context()
    fwd, back = ctx.create_channel(), ctx.create_channel()
    out: list[Any] = []
    nodes = [pumps_from_a_task(ctx, back, fwd, out), pong(ctx, fwd, back)]
    async with asyncio.timeout(30):
        await Network(ctx, nodes, feedback=[back]).run_async()
    assert out == ["ping-pong"]
    assert asyncio.get_running_loop().get_task_factory() is None  # the loop is as it was


# ------------------------------------------------------------------------ waits that end by themselves
Wait = Callable[[Any, Channel[Any]], Awaitable[Any]]


async def under_asyncio_timeout(ctx: Any, ch: Channel[Any]) -> Any:
    async with asyncio.timeout(30):
        return await ch.recv(ctx)


async def with_recv_timeout(ctx: Any, ch: Channel[Any]) -> Any:
    return await ch.recv(ctx, timeout=30)


async def under_wait_for(ctx: Any, ch: Channel[Any]) -> Any:
    return await asyncio.wait_for(ch.recv(ctx), 30)


async def with_recv_any_timeout(ctx: Any, ch: Channel[Any]) -> Any:
    return (await recv_any(ctx, [ch], timeout=30))[1]


async def under_a_timer_that_cancels(ctx: Any, ch: Channel[Any]) -> Any:
    task = asyncio.current_task()
    assert task is not None
    handle = asyncio.get_running_loop().call_later(30, task.cancel)
    try:
        return await ch.recv(ctx)
    finally:
        handle.cancel()


WAITS = [
    under_asyncio_timeout,
    with_recv_timeout,
    under_wait_for,
    with_recv_any_timeout,
    under_a_timer_that_cancels,
]


@define_actor
async def only_last(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
    """The last message of its input (a side input that matters only at the end)."""
    last = None
    async for msg in ch_in:
        last = msg
    if last is not None:
        await ch_out.send(ctx, last)


def side_input_network(ctx: Context, wait: Wait, into: list[Any]) -> Network:
    """No cycle: `enrich` first waits a while for its side input, the last value of the
    stream, while the fanout in front is blocked on its full main input."""

    @define_actor(inputs=["main", "side"])
    async def enrich(ctx: Context, main: Channel[Any], side: Channel[Any], into: list[Any]) -> None:
        factor = 1
        try:
            msg = await wait(ctx, side)
            factor = msg.payload if msg is not None else 1
        except (TimeoutError, asyncio.CancelledError):
            pass  # no side input in time: the default
        async for msg in main:
            into.append(msg.payload * factor)
        async for _ in side:
            pass

    src, main, tap, side = (ctx.create_channel(capacity=1) for _ in range(4))
    nodes = [
        numbers(ctx, src, 10),
        actors.fanout(ctx, src, [main, tap]),
        only_last(ctx, tap, side),
        enrich(ctx, main, side, into),
    ]
    return Network(ctx, nodes)


def batching_loop_network(ctx: Context, wait: Wait, into: list[Any]) -> Network:
    """A declared loop: a client waits for the reply to each request, and a batcher
    replies when no request came for a while."""

    @define_actor(inputs=["responses"], outputs=["requests"])
    async def client(
        ctx: Context, requests: Channel[Any], responses: Channel[Any], into: list[Any]
    ) -> None:
        for i in range(3):
            await requests.send(ctx, Message(i, i))
            reply = await responses.recv(ctx)
            assert reply is not None
            into.append(reply.payload)
        await requests.drain(ctx)
        async for _ in responses:
            pass

    @define_actor(inputs=["requests"], outputs=["responses"])
    async def batcher(ctx: Context, requests: Channel[Any], responses: Channel[Any]) -> None:
        batch, seq = [], 0
        while True:
            try:
                msg = await wait(ctx, requests)
            except (TimeoutError, asyncio.CancelledError):
                msg = ...  # time to flush
            if msg is None:
                break
            if msg is not ...:
                batch.append(msg.payload)
            elif batch:
                await responses.send(ctx, Message(seq, list(batch)))
                seq, batch = seq + 1, []

    requests, responses = ctx.create_channel(), ctx.create_channel()
    nodes = [client(ctx, requests, responses, into), batcher(ctx, requests, responses)]
    return Network(ctx, nodes, feedback=[responses])


@pytest.mark.parametrize("wait", WAITS)
@pytest.mark.parametrize("shape", [side_input_network, batching_loop_network])
async def test_actors_waiting_on_a_channel_with_a_deadline_are_not_deadlocked(
    looks: Looks, shape: Callable[[Context, Wait, list[Any]], Network], wait: Wait
) -> None:
    """Each wait would be a deadlock without its deadline: the deadline ends it."""
    net = shape(Context(), wait, [])
    run = asyncio.ensure_future(net.run_async())
    looked = asyncio.ensure_future(looks.after(5).wait())
    async with asyncio.timeout(20):
        await asyncio.wait([run, looked], return_when=asyncio.FIRST_COMPLETED)
    assert not run.done(), run.exception()  # 5 looks at it, and still running
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_wait_that_ends_by_itself_lets_the_network_finish(looks: Looks) -> None:
    deadlines: list[asyncio.Timeout] = []

    async def wait(ctx: Any, ch: Channel[Any]) -> Any:
        async with asyncio.timeout(30) as deadline:
            deadlines.append(deadline)
            return await ch.recv(ctx)

    out: list[Any] = []
    net = side_input_network(Context(), wait, out)
    run = asyncio.ensure_future(net.run_async())
    async with asyncio.timeout(20):
        await looks.after(5).wait()
        deadlines[0].reschedule(asyncio.get_running_loop().time())  # it passes now
        await run
    assert out == list(range(10))  # no side input in time: factor 1


async def test_a_deadline_that_went_out_of_scope_hides_no_deadlock() -> None:
    @define_actor
    async def waits_on_itself(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async with asyncio.timeout(30):  # noqa: ASYNC100  # only its timer matters:
            pass  # cancelled on the way out
        async for msg in ch_in:
            await ch_out.send(ctx, msg)

    ctx = Context()
    ab, ba = ctx.create_channel(name="ab"), ctx.create_channel(name="ba")
    net = Network(ctx, [waits_on_itself(ctx, ba, ab), echo(ctx, ab, ba)], feedback=[ba])
    text = await run_expecting_deadlock(net)
    assert "actor `waits_on_itself#0` waits to receive from channel `ba`" in text


async def test_timer_targets_are_the_tasks_a_scheduled_callback_can_wake() -> None:
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    bound, argument = loop.create_future(), loop.create_future()
    handle = loop.call_later(30, bound.cancel)  # reached as what the callback is bound to
    loop.call_later(30, argument.set_result, None)  # reached as an argument
    targets = timer_targets(loop)
    assert targets is not None
    assert {id(bound), id(argument)} <= targets and id(me) not in targets
    async with asyncio.timeout(30):  # noqa: ASYNC100  # a deadline on this task: its Timeout
        targets = timer_targets(loop)
        assert targets is not None and id(me) in targets
    handle.cancel()  # what is cancelled wakes nothing
    targets = timer_targets(loop)
    assert targets is not None and id(me) not in targets and id(bound) not in targets
    assert timer_targets(object()) is None  # type: ignore[arg-type]  # a loop it cannot read


# ------------------------------------------------------------------------ no progress
async def test_stall_timeout_ends_a_network_waiting_forever_outside_channels() -> None:
    @define_actor
    async def waits_forever(ctx: Context, ch_out: Channel[Any]) -> None:
        await asyncio.Event().wait()

    ctx = Context(stall_timeout=0.3)
    a = ctx.create_channel(name="a")
    net = Network(ctx, [waits_forever(ctx, a), collect(ctx, a, [])])
    text = await run_expecting_deadlock(net)
    assert text.startswith("network `network` made no progress for")
    assert "Context(stall_timeout=0.3)" in text
    assert "actor `waits_forever#0` waits outside any channel, at test_liveness.py:" in text
    assert "in `waits_forever`" in text
    assert "actor `collect#0` waits to receive from channel `a` (empty" in text


async def test_stall_timeout_waits_while_a_kernel_runs(looks: Looks) -> None:
    released = looks.release_after(6, threading.Event())  # 0.6 s of looks, twice the timeout

    @define_actor
    async def slow_source(ctx: Context, ch_out: Channel[Any]) -> None:
        assert await ctx.to_thread(released.wait, 30)
        await ch_out.send(ctx, Message(0, "late"))

    ctx = Context(stall_timeout=0.3)
    a = ctx.create_channel()
    out: list[Any] = []
    async with asyncio.timeout(30):
        await Network(ctx, [slow_source(ctx, a), collect(ctx, a, out)]).run_async()
    assert out == ["late"]


@pytest.mark.parametrize("option", ["stall_timeout", "blocked_loop_warning"])
@pytest.mark.parametrize("value", [0, -1.0, "1", True])
def test_liveness_options_must_be_positive_numbers(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"`{option}` must be None or a number > 0, got"):
        Context(**{option: value})


# ------------------------------------------------------------------------ blocked event loop
class Catch(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.records.append(record)
            self.seen.set()


async def test_an_actor_blocking_the_event_loop_is_named_in_a_warning() -> None:
    catch = Catch("blocked the event loop")
    logger = logging.getLogger("streamnet")
    logger.addHandler(catch)

    @define_actor
    async def hog(ctx: Context, ch_out: Channel[Any]) -> None:
        catch.seen.wait(30)  # holds the loop (the mistake under test) until the warning came
        await ch_out.send(ctx, Message(0, 0))

    ctx = Context(blocked_loop_warning=0.2)
    a = ctx.create_channel()
    try:
        async with asyncio.timeout(40):
            await Network(ctx, [hog(ctx, a), collect(ctx, a, [])]).run_async()
    finally:
        logger.removeHandler(catch)
    (record,) = catch.records
    text = record.getMessage()
    assert text.startswith("actor `hog#0` of network `network` has blocked the event loop for")
    assert "(at test_liveness.py:" in text and "in `hog`)" in text
    assert "`await ctx.to_thread(fn, ...)`" in text
    assert record.levelno == logging.WARNING
    assert record.actor == "hog#0"  # type: ignore[attr-defined]


async def test_the_watchdog_runs_only_while_a_network_runs_and_can_be_turned_off() -> None:
    def watchdogs() -> int:
        return sum(
            t.name == "streamnet-loop-watchdog" and t.is_alive() for t in threading.enumerate()
        )

    counts: list[int] = []
    before = watchdogs()  # others' (a run some failed test left behind) are not this one's

    @define_actor
    async def count(ctx: Context, ch_out: Channel[Any]) -> None:
        counts.append(watchdogs() - before)

    for warning in (1.0, None):
        ctx = Context(blocked_loop_warning=warning)
        a = ctx.create_channel()
        await Network(ctx, [count(ctx, a), collect(ctx, a, [])]).run_async()
    assert counts == [1, 0]
