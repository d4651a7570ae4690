"""Supervisors behave as Erlang/OTP specifies: who restarts, in which order, how often."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from waiting import until

from streamnet import (
    ActorRuntime,
    ActorStateError,
    Backoff,
    ChildSpec,
    PersistentActorContext,
    RestartIntensityError,
    RestartType,
    SupervisionStrategy,
    Supervisor,
    SupervisorStatistics,
    persistent_message,
)


@persistent_message
@dataclass
class Cmd:
    what: str


class World:
    """What the test children did: starts per child, and the order of events."""

    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self.events: list[str] = []
        self.handled: list[str] = []
        self.changed = asyncio.Event()

    def note(self, event: str) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, predicate: Callable[..., object], timeout: float = 3.0) -> None:
        """Wait for ``predicate``: woken by the children's events, re-checked every 20 ms
        for state that changes without one (a supervisor's)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.02)


async def child(ctx: PersistentActorContext, world: World) -> None:
    world.starts[ctx.actor_id] += 1
    world.note(f"start {ctx.actor_id}")
    try:
        while not ctx.should_terminate:
            try:
                cmd = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            if cmd.what == "crash":
                raise RuntimeError(f"{ctx.actor_id} crashed")
            if cmd.what == "exit":
                return
            world.handled.append(f"{ctx.actor_id}:{cmd.what}")
            world.note("handled")
    finally:
        world.note(f"stop {ctx.actor_id}")


def specs(world: World, *names: str, restart: RestartType = "permanent") -> list[ChildSpec]:
    return [ChildSpec(n, child, (world,), restart=restart, shutdown_timeout=1) for n in names]


async def started(world: World, runtime: ActorRuntime, sup: Supervisor, n: int) -> None:
    await world.until(lambda: sum(world.starts.values()) >= n)


async def settled(sup: Supervisor, timeout: float = 5.0) -> None:
    """Wait until the supervisor has handled every exit it was told of."""
    await until(lambda: sup.statistics().pending_exits == 0, timeout=timeout)


@pytest.mark.parametrize(
    ("strategy", "restarted", "stop_order"),
    [
        ("one_for_one", {"b"}, []),
        ("one_for_all", {"a", "b", "c"}, ["stop c", "stop a"]),
        ("rest_for_one", {"b", "c"}, ["stop c"]),
    ],
)
async def test_strategies_restart_the_right_children_in_order(
    strategy: SupervisionStrategy, restarted: set[str], stop_order: list[str]
) -> None:
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "a", "b", "c"), strategy=strategy)
        await sup.start()
        assert world.events == ["start a", "start b", "start c"]
        world.events.clear()
        await runtime.send("b", Cmd("crash"))
        await world.until(
            lambda: sup.restarts == 1 and sum(world.starts.values()) == 3 + len(restarted)
        )
        assert {n for n, count in world.starts.items() if count == 2} == restarted
        stops = [e for e in world.events if e.startswith("stop") and e != "stop b"]
        starts = [e for e in world.events if e.startswith("start")]
        assert stops == stop_order  # the others stop in reverse start order...
        assert starts == [f"start {n}" for n in "abc" if n in restarted]  # ...and start in order
        assert all(runtime.state(n) == "active" for n in "abc")
        await sup.stop()
        assert [e for e in world.events[-3:]] == ["stop c", "stop b", "stop a"]


@pytest.mark.parametrize(
    ("restart", "how", "comes_back"),
    [
        ("permanent", "crash", True),
        ("permanent", "exit", True),
        ("transient", "crash", True),
        ("transient", "exit", False),
        ("temporary", "crash", False),
        ("temporary", "exit", False),
    ],
)
async def test_restart_types(restart: RestartType, how: str, comes_back: bool) -> None:
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "w", restart=restart))
        await sup.start()
        await runtime.send("w", Cmd(how))
        await world.until(lambda: "stop w" in world.events)
        if comes_back:
            await world.until(lambda: world.starts["w"] == 2)
            assert sup.children == ["w"]
        else:
            await settled(sup)  # the exit is handled: a wrong restart would show now
            assert world.starts["w"] == 1
            assert sup.children == []
        await sup.stop()


async def test_intensity_exceeded_stops_children_and_escalates_to_the_top() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "a", "b"), max_restarts=2, max_seconds=10)
        await sup.start()
        for round_ in range(3):
            await runtime.send("b", Cmd("crash"))
            await world.until(lambda r=round_: world.events.count("stop b") >= r + 1)
            if round_ < 2:
                await world.until(lambda r=round_: world.starts["b"] == r + 2)
        await world.until(lambda: sup.state == "failed")
        assert isinstance(sup.failure, RestartIntensityError)
        assert str(sup.failure) == (
            "supervisor `sup` gives up: child `b` failed (RuntimeError: b crashed) after 2 "
            "restarts within 10 s; `max_restarts=2` allows no more"
        )
        assert isinstance(sup.failure.__cause__, RuntimeError)
        assert runtime.state("a") == "terminated"
        assert runtime.supervision_failures == [("sup", sup.failure)]


async def test_a_supervisor_reports_statistics_and_tells_its_watchers_it_gives_up() -> None:
    import dataclasses

    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "a", "b"), max_restarts=1, max_seconds=10)
        assert sup.statistics() == SupervisorStatistics(
            supervisor_id="sup", state="created", strategy="one_for_one",
            children=("a", "b"), restarts=0, failure=None,
        )  # fmt: skip
        causes: list[BaseException] = []
        sup.watch(causes.append)
        unwatched: list[BaseException] = []
        sup.watch(unwatched.append)()  # watching, then not
        await sup.start()
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: sup.restarts == 1 and world.starts["b"] == 2)
        running = sup.statistics()
        assert (running.state, running.restarts, running.failure) == ("running", 1, None)
        assert causes == []
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: sup.state == "failed")
        assert isinstance(sup.failure, RestartIntensityError)
        assert causes == [sup.failure]  # once, with the cause
        assert unwatched == []
        assert sup.statistics().failure is sup.failure
        with pytest.raises(dataclasses.FrozenInstanceError):
            running.restarts = 5  # type: ignore[misc]


async def test_a_child_supervisor_escalates_and_its_parent_restarts_it() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        inner = Supervisor(runtime, "inner", specs(world, "x"), max_restarts=0, max_seconds=10)
        outer = Supervisor(runtime, "outer", [*specs(world, "y"), inner], strategy="one_for_one")
        await outer.start()
        await runtime.send("x", Cmd("crash"))  # inner may not restart: it escalates
        await world.until(lambda: outer.restarts == 1 and world.starts["x"] == 2)
        assert inner.state == "running"  # started afresh by its parent
        assert world.starts["y"] == 1  # one_for_one: the sibling is untouched
        assert runtime.supervision_failures == []
        await outer.stop()


async def test_restarted_actor_keeps_its_inbox_and_redelivers_once_when_asked() -> None:
    world = World()

    async def flaky(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while not ctx.should_terminate:
            try:
                cmd = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            if cmd.what == "poison":
                raise RuntimeError("poison")
            world.handled.append(cmd.what)
            world.note("handled")

    async with ActorRuntime() as runtime:
        spec = ChildSpec("f", flaky, (world,), redeliver=True, shutdown_timeout=1)
        sup = Supervisor(runtime, "sup", [spec], max_restarts=5)
        await sup.start()
        poison = Cmd("poison")
        await runtime.send("f", poison)
        await runtime.send("f", Cmd("after"))  # sent while the actor crashes and restarts
        await world.until(lambda: "after" in world.handled)
        assert world.starts["f"] == 3  # crashed on the poison, again on its one redelivery
        assert [m.what for m in runtime.dead_letters("f")] == ["poison"]
        await sup.stop()


async def test_simple_one_for_one_starts_children_from_a_template() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        template = ChildSpec("worker", child, (world,), shutdown_timeout=1)
        sup = Supervisor(runtime, "pool", strategy="simple_one_for_one", template=template)
        await sup.start()
        for name in ("w1", "w2", "w3"):
            await sup.start_child(name)
        await runtime.send("w2", Cmd("crash"))
        await world.until(lambda: world.starts["w2"] == 2)
        assert (world.starts["w1"], world.starts["w3"]) == (1, 1)
        await sup.stop()
    with pytest.raises(ValueError, match="template"):
        Supervisor(ActorRuntime(), "bad", strategy="simple_one_for_one")


def test_backoff_delays_grow_to_a_cap_with_bounded_jitter() -> None:
    plain = Backoff(initial=0.1, maximum=1.0, factor=2.0, jitter=0.0)
    assert [plain.delay(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittery = Backoff(initial=0.1, maximum=1.0, factor=2.0, jitter=0.2)
    rng = random.Random(1)
    for n in range(6):
        assert 0.8 * plain.delay(n) <= jittery.delay(n, rng=rng) <= 1.2 * plain.delay(n)


async def test_supervisor_waits_out_the_backoff_and_resets_after_a_quiet_spell() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        backoff = Backoff(initial=0.05, maximum=1.0, factor=4.0, jitter=0.0, reset_after=0.3)
        sup = Supervisor(runtime, "sup", specs(world, "b"), backoff=backoff, max_restarts=10)
        await sup.start()
        loop = asyncio.get_running_loop()
        gaps = []
        for expected_starts in (2, 3):
            t0 = loop.time()
            await runtime.send("b", Cmd("crash"))
            await world.until(lambda e=expected_starts: world.starts["b"] == e)
            gaps.append(loop.time() - t0)
        assert gaps[0] >= 0.05  # first restart of a streak waits `initial`
        assert gaps[1] >= 0.2  # the next one waits initial * factor
        assert sup.statistics().backoff_streak == 2
        # The behaviour under test is a span of time: a quiet spell longer than reset_after.
        await asyncio.sleep(backoff.reset_after + 0.05)
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: world.starts["b"] == 4)
        assert sup.statistics().backoff_streak == 1  # the streak started over
        await sup.stop()


async def test_watchdog_fails_a_stuck_actor_and_its_supervisor_restarts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from streamnet import WatchdogTimeout

    caplog.set_level(logging.ERROR, logger="streamnet")
    world = World()
    release = asyncio.Event()

    async def sticky(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while not ctx.should_terminate:
            try:
                cmd = await ctx.receive()  # idle, it reports no progress while it waits
            except TimeoutError:  # told to terminate
                continue
            if cmd.what == "hang":
                await release.wait()  # holds the message, makes no progress
            world.handled.append(cmd.what)
            world.note("handled")

    async with ActorRuntime() as runtime:
        spec = ChildSpec("s", sticky, (world,), heartbeat_timeout=0.2, shutdown_timeout=1)
        sup = Supervisor(runtime, "sup", [spec])
        await sup.start()
        # The behaviour under test is a span of time: idle (nothing held) for longer than
        # heartbeat_timeout is not stuck.
        await asyncio.sleep(0.5)
        assert world.starts["s"] == 1
        await runtime.send("s", Cmd("hang"))
        await world.until(lambda: world.starts["s"] == 2)
        assert (
            isinstance(runtime.failure("s"), WatchdogTimeout)
            or runtime.state("s") == "active"
        )
        await runtime.send("s", Cmd("fine"))
        await world.until(lambda: "fine" in world.handled)
        assert [m.what for m in runtime.dead_letters("s")] == ["hang"]
        await sup.stop()


async def test_watchdog_spares_an_actor_that_reports_progress() -> None:
    world = World()

    async def slow_but_alive(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while not ctx.should_terminate:
            try:
                await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            for _ in range(8):  # 0.4 s of work (the behaviour under test), reporting progress
                await asyncio.sleep(0.05)
                ctx.heartbeat()
            world.handled.append("done")
            world.note("handled")

    async with ActorRuntime() as runtime:
        sup = Supervisor(
            runtime, "sup", [ChildSpec("w", slow_but_alive, (world,), heartbeat_timeout=0.2)]
        )
        await sup.start()
        await runtime.send("w", Cmd("work"))
        await world.until(lambda: world.handled == ["done"])
        assert world.starts["w"] == 1
        await sup.stop()


async def test_stop_during_a_backoff_restarts_nothing() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        backoff = Backoff(initial=30.0, maximum=30.0, jitter=0.0)
        sup = Supervisor(runtime, "sup", specs(world, "a", "b"), backoff=backoff)
        await sup.start()
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: runtime.state("b") == "failed" and sup.statistics().in_backoff)
        await sup.stop()  # while the restart of `b` waits out its 30 s backoff
        await settled(sup)  # the pending restart ends with the stop, not 30 s later
        assert world.starts == {"a": 1, "b": 1}
        assert (sup.state, runtime.state("a"), runtime.state("b")) == (
            "stopped", "terminated", "failed",
        )  # fmt: skip


async def test_runtime_shutdown_stops_the_supervisor_first() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        backoff = Backoff(initial=30.0, maximum=30.0, jitter=0.0)
        sup = Supervisor(runtime, "sup", specs(world, "a", "b"), backoff=backoff)
        await sup.start()
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: runtime.state("b") == "failed" and sup.statistics().in_backoff)
    assert (sup.state, sup.statistics().pending_exits) == ("stopped", 0)  # restart called off
    assert world.starts == {"a": 1, "b": 1}
    assert world.events[-1] == "stop a"


@pytest.mark.parametrize("max_restarts", [1, 5])
@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_children_failing_together_count_as_one_group_restart(
    strategy: SupervisionStrategy, max_restarts: int
) -> None:
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(
            runtime, "sup", specs(world, "a", "b", "c"), strategy=strategy,
            max_restarts=max_restarts, max_seconds=10,
        )  # fmt: skip
        await sup.start()
        await runtime.send("a", Cmd("crash"))
        await runtime.send("b", Cmd("crash"))  # both crash in the same turn of the loop
        await world.until(lambda: world.starts["c"] == 2)
        await settled(sup)
        assert (sup.state, sup.restarts) == ("running", 1)
        assert world.starts == {"a": 2, "b": 2, "c": 2}
        assert [runtime.state(n) for n in "abc"] == ["active"] * 3
        await sup.stop()


@pytest.mark.parametrize("redeliver", [False, True])
async def test_a_crash_while_idle_sets_aside_no_message(redeliver: bool) -> None:
    world = World()

    async def idle_crasher(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        life = world.starts[ctx.actor_id]
        while not ctx.should_terminate:
            try:
                cmd = await ctx.receive(timeout=0.02)
            except TimeoutError:
                if life == 1 and world.handled and not ctx.should_terminate:
                    raise RuntimeError("crashed while idle") from None
                continue
            world.handled.append(cmd.what)
            world.note("handled")

    async with ActorRuntime() as runtime:
        spec = ChildSpec("w", idle_crasher, (world,), redeliver=redeliver, shutdown_timeout=1)
        sup = Supervisor(runtime, "sup", [spec])
        await sup.start()
        await runtime.send("w", Cmd("one"))  # handled, then the actor crashes while idle
        await world.until(lambda: world.starts["w"] == 2)
        await runtime.send("w", Cmd("two"))
        await world.until(lambda: "two" in world.handled)
        assert world.handled == ["one", "two"]  # "one" is not handled twice...
        assert runtime.dead_letters("w") == []  # ...nor set aside
        await sup.stop()


async def test_messages_sent_during_a_restart_reach_the_new_instance() -> None:
    world = World()
    release = asyncio.Event()

    async def slow_to_stop(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        try:
            while not ctx.should_terminate:
                try:
                    cmd = await ctx.receive(timeout=0.05)
                except TimeoutError:
                    continue
                if cmd.what == "crash":
                    raise RuntimeError("crash")
                if cmd.what == "ask":
                    await ctx.send(cmd.reply(Cmd("answer")))
                world.handled.append(f"{ctx.actor_id}:{cmd.what}")
                world.note("handled")
        finally:
            if ctx.should_terminate:
                world.note(f"stopping {ctx.actor_id}")
                await release.wait()

    async with ActorRuntime() as runtime:
        children = [ChildSpec(n, slow_to_stop, (world,), shutdown_timeout=5) for n in "ab"]
        sup = Supervisor(runtime, "sup", children, strategy="one_for_all")
        await sup.start()
        await runtime.send("a", Cmd("crash"))
        await world.until(lambda: "stopping b" in world.events)  # a group restart under way
        assert (runtime.state("a"), runtime.state("b")) == ("failed", "terminating")
        await runtime.send("a", Cmd("x"))
        await runtime.send("b", Cmd("y"))
        ask = asyncio.ensure_future(runtime.request("b", Cmd("ask"), timeout=5))
        await world.until(lambda: runtime.statistics("b").inbox.size == 2)
        release.set()
        assert (await asyncio.wait_for(ask, 5)).what == "answer"
        await world.until(lambda: len(world.handled) == 3)
        assert sorted(world.handled) == ["a:x", "b:ask", "b:y"]
        assert world.starts == {"a": 2, "b": 2}
        await sup.stop()


async def test_restart_intensity_error_says_exactly_what_happened() -> None:
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "x"), max_restarts=0, max_seconds=10)
        await sup.start()
        await runtime.send("x", Cmd("crash"))
        await world.until(lambda: sup.state == "failed")
    assert str(sup.failure) == (
        "supervisor `sup` gives up: child `x` failed (RuntimeError: x crashed) and "
        "`max_restarts=0` allows no restart"
    )


async def test_a_supervised_crash_is_logged_once_at_warning_with_the_traceback_on_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamnet")
    world = World()
    async with ActorRuntime() as runtime:
        sup = Supervisor(runtime, "sup", specs(world, "b"))
        await sup.start()
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: world.starts["b"] == 2)
        await settled(sup)
        await sup.stop()
    loud = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [("WARNING", "supervisor `sup`: child `b` failed: RuntimeError: b crashed")]
    traced = [r for r in caplog.records if r.exc_info]
    assert [r.levelname for r in traced] == ["DEBUG"]


# --- a send blocked on a full inbox: kept through a restart, failed when no restart comes ---
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("restarted", "delivered"),
        ("temporary", "failed"),
        ("gives_up", "failed"),
        ("stopped", "terminated"),
    ],
)
async def test_a_send_blocked_on_a_full_inbox_waits_for_a_restart_or_fails_without_one(
    case: str, outcome: str
) -> None:
    world = World()
    release = asyncio.Event()

    async def holder(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while True:
            cmd = await ctx.receive()
            if cmd.what == "hold":  # keeps this message until released; the inbox fills up
                world.note("holding")
                await release.wait()
                if ctx.should_terminate:
                    return
                raise RuntimeError("crashed on hold")
            world.handled.append(cmd.what)
            world.note("handled")

    restart: RestartType = "temporary" if case == "temporary" else "permanent"
    async with ActorRuntime(mailbox_capacity=1) as runtime:
        spec = ChildSpec("w", holder, (world,), restart=restart, shutdown_timeout=60)
        # a backoff keeps the restart waiting while the blocked send is woken, if it is
        backoff = Backoff(initial=0.05, jitter=0.0) if case == "restarted" else None
        max_restarts = 0 if case == "gives_up" else 5
        sup = Supervisor(runtime, "sup", [spec], max_restarts=max_restarts, backoff=backoff)
        await sup.start()
        await runtime.send("w", Cmd("hold"))
        await world.until(lambda: "holding" in world.events)
        await runtime.send("w", Cmd("fill"))  # the inbox is full now
        blocked = asyncio.ensure_future(runtime.send("w", Cmd("blocked")))
        await world.until(lambda: runtime.statistics("w").inbox.waiting_senders == 1)
        stopping = None
        if case == "stopped":
            stopping = asyncio.ensure_future(sup.stop())
            await world.until(lambda: runtime.state("w") == "terminating")
        release.set()
        async with asyncio.timeout(5):  # a hang shows as this timeout
            if outcome == "delivered":
                await blocked  # the kept inbox stayed open: the new instance takes it
                await world.until(lambda: world.handled == ["fill", "blocked"])
                assert world.starts["w"] == 2
            else:
                with pytest.raises(ActorStateError, match=f"actor `w` is {outcome}"):
                    await blocked
                assert runtime.statistics("w").inbox.closed
            if stopping is not None:
                await stopping
            await settled(sup)
        await sup.stop()


# --- spawned children are linked to their parent -------------------------------------
async def spawner(ctx: PersistentActorContext, world: World) -> None:
    """Spawns a child `kid`, then behaves as `child`."""
    await ctx.spawn("kid", child, world)
    await child(ctx, world)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("strategy", "crash"), [("one_for_one", "parent"), ("one_for_all", "other")]
)
async def test_a_supervised_parent_that_spawns_is_restarted_and_spawns_again(
    strategy: SupervisionStrategy, crash: str
) -> None:
    world = World()
    async with ActorRuntime() as runtime:
        children = [
            ChildSpec("parent", spawner, (world,), shutdown_timeout=5),
            ChildSpec("other", child, (world,), shutdown_timeout=5),
        ]
        sup = Supervisor(runtime, "sup", children, strategy=strategy, max_restarts=1)
        await sup.start()
        await world.until(lambda: world.starts["kid"] == 1)
        world.events.clear()
        await runtime.send(crash, Cmd("crash"))
        await world.until(lambda: world.starts["kid"] == 2)
        await settled(sup)
        assert (sup.state, sup.restarts) == ("running", 1)  # no second failure on the spawn
        assert world.starts["parent"] == 2
        events = world.events
        assert events.index("stop kid") < events.index("start parent")  # the link ended first
        assert [runtime.state(n) for n in ("parent", "kid", "other")] == ["active"] * 3
        await runtime.send("kid", Cmd("ping"))
        await world.until(lambda: "kid:ping" in world.handled)
        await sup.stop()
        assert runtime.state("kid") == "terminated"


# --- temporary children in group restarts -----------------------------------------------
@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_a_group_restart_leaves_out_temporary_children(
    strategy: SupervisionStrategy, restart: RestartType
) -> None:
    world = World()
    async with ActorRuntime() as runtime:
        children = [*specs(world, "a", "b"), *specs(world, "c", restart=restart)]
        sup = Supervisor(runtime, "sup", children, strategy=strategy)
        await sup.start()
        await runtime.send("b", Cmd("crash"))  # `c` was started after `b`: in both groups
        await world.until(lambda: sup.restarts == 1)
        await settled(sup)
        assert "stop c" in world.events  # stopped with the group in every case
        expected_a = 2 if strategy == "one_for_all" else 1
        if restart == "temporary":  # stopped, never restarted, no longer a child
            assert world.starts == {"a": expected_a, "b": 2, "c": 1}
            assert sup.children == ["a", "b"]
            assert runtime.state("c") == "terminated"
            with pytest.raises(ActorStateError, match="cannot send to actor `c`: it is terminated"):
                await runtime.send("c", Cmd("late"))
        else:
            assert world.starts == {"a": expected_a, "b": 2, "c": 2}
            assert sup.children == ["a", "b", "c"]
            assert runtime.state("c") == "active"
        assert sup.state == "running"
        await sup.stop()


# --- stress: many children, random crashes, nothing lost ----------------------------
@persistent_message
@dataclass
class Job:
    n: int
    poison: bool = False
    """The child crashes on it: it goes to the dead letters (after one redelivery if asked)."""
    crash_when_idle: bool = False
    """The child handles it, then crashes when it next waits for input: nothing is lost."""


async def job_worker(ctx: PersistentActorContext, processed: Counter[tuple[str, int]], world: World) -> None:
    crash_when_idle = False
    while not ctx.should_terminate:
        try:
            job = await ctx.receive(timeout=0 if crash_when_idle else 0.05)
        except TimeoutError:  # with timeout 0: as soon as the inbox is empty
            if crash_when_idle and not ctx.should_terminate:
                raise RuntimeError(f"{ctx.actor_id} crashed while idle") from None
            continue
        if job.poison:
            raise RuntimeError(f"{ctx.actor_id} crashed on job {job.n}")
        await asyncio.sleep(0)  # others run while this job is in hand
        processed[(ctx.actor_id, job.n)] += 1
        crash_when_idle = crash_when_idle or job.crash_when_idle
        world.changed.set()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "backoff", [None, Backoff(initial=0.001, maximum=0.004)], ids=["no_backoff", "backoff"]
)
@pytest.mark.parametrize(("strategy", "redeliver"), [("one_for_one", False), ("one_for_all", True)])
async def test_stress_every_message_is_processed_once_or_dead_lettered(
    strategy: SupervisionStrategy, redeliver: bool, backoff: Backoff | None
) -> None:
    actors, per_actor = 50, 1000
    rng = random.Random(13)
    names = [f"w{i}" for i in range(actors)]
    jobs = {
        name: [
            Job(n, poison=rng.random() < 0.001, crash_when_idle=rng.random() < 0.001)
            for n in range(per_actor)
        ]
        for name in names
    }
    poison = {(name, j.n) for name in names for j in jobs[name] if j.poison}
    world = World()
    processed: Counter[tuple[str, int]] = Counter()
    async with ActorRuntime(mailbox_capacity=64) as runtime:
        spec = [
            ChildSpec(name, job_worker, (processed, world), redeliver=redeliver, shutdown_timeout=5)
            for name in names
        ]
        sup = Supervisor(
            runtime, "pool", spec, strategy=strategy, max_restarts=100_000, max_seconds=60,
            backoff=backoff,
        )  # fmt: skip
        await sup.start()
        for n in range(per_actor):
            for name in rng.sample(names, actors):
                await runtime.send(name, jobs[name][n])  # never refused, even mid-restart

        def dead() -> set[tuple[str, int]]:
            return {(name, j.n) for name in names for j in runtime.dead_letters(name)}

        expected = actors * per_actor - len(poison)
        await world.until(lambda: processed.total() == expected and len(dead()) == len(poison), 30)
        await settled(sup)
        await sup.stop()
        assert sup.state == "stopped" and sup.failure is None
        everything = {(name, n) for name in names for n in range(per_actor)}
        assert set(processed) == everything - poison
        assert set(processed.values()) == {1}  # exactly once
        assert dead() == poison
        assert sum(len(runtime.dead_letters(name)) for name in names) == len(poison)


# --- requests through a crash: only the crashed instance's own requests fail --------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["sending", "queued", "held", "held_redelivered", "kept"])
async def test_a_crash_fails_only_the_requests_the_crashed_instance_took(where: str) -> None:
    """``sending``: the request waits for room in the full inbox when the actor crashes on
    another message; ``queued``: it waits in the inbox. The new instance answers both.
    ``held``: the actor crashes on the request itself, which fails with the crash (unless it
    is redelivered: the new instance answers it). ``kept``: the crashed instance had taken
    the request and kept it unanswered; its state is gone, so the request fails too."""
    world = World()
    gate = asyncio.Event()

    async def worker(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        kept = []
        while True:
            cmd = await ctx.receive()
            if cmd.what == "crash" and world.starts[ctx.actor_id] == 1:
                world.note("holding")
                await gate.wait()
                raise RuntimeError("crash on `crash`")
            if cmd.what == "keep":  # answered later, by this instance (never, here)
                kept.append(cmd)
                world.note("kept")
                continue
            world.handled.append(cmd.what)
            await ctx.send(cmd.reply(Cmd(f"done {cmd.what}")))

    capacity = 1 if where == "sending" else 4
    async with ActorRuntime(mailbox_capacity=capacity) as runtime:
        spec = ChildSpec("w", worker, (world,), redeliver=where == "held_redelivered")
        sup = Supervisor(runtime, "sup", [spec])
        await sup.start()
        if where == "kept":
            keep = asyncio.ensure_future(runtime.request("w", Cmd("keep"), timeout=10))
            await world.until(lambda: "kept" in world.events)
        if where in ("held", "held_redelivered"):
            ask = asyncio.ensure_future(runtime.request("w", Cmd("crash"), timeout=10))
            await world.until(lambda: "holding" in world.events)
        else:
            await runtime.send("w", Cmd("crash"))
            await world.until(lambda: "holding" in world.events)
        if where == "sending":
            await runtime.send("w", Cmd("filler"))  # the inbox is full now
            ask = asyncio.ensure_future(runtime.request("w", Cmd("important"), timeout=10))
            await world.until(lambda: runtime.statistics("w").inbox.waiting_senders == 1)
        elif where == "queued":
            ask = asyncio.ensure_future(runtime.request("w", Cmd("important"), timeout=10))
            await world.until(lambda: runtime.statistics("w").inbox.size == 1)
        gate.set()  # the instance crashes; the supervisor restarts it
        async with asyncio.timeout(10):
            if where == "kept":
                with pytest.raises(RuntimeError, match="crash on `crash`"):
                    await keep
            elif where == "held":
                with pytest.raises(RuntimeError, match="crash on `crash`"):
                    await ask
                assert [c.what for c in runtime.dead_letters("w")] == ["crash"]
            else:
                expected = "crash" if where == "held_redelivered" else "important"
                assert (await ask).what == f"done {expected}"
            await settled(sup)
        assert world.starts["w"] == 2
        assert runtime.statistics("w").late_replies == 0  # no work done for a failed request
        await sup.stop()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", ["stopped", "gives_up"])
async def test_requests_waiting_for_a_restart_that_never_comes_say_why(case: str) -> None:
    """The supervisor stops during the restart's backoff, or gives up: the queued request
    fails naming the actor and the supervisor, not with the other message's crash."""
    world = World()
    gate = asyncio.Event()

    async def crasher(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        await ctx.receive()
        world.note("holding")
        await gate.wait()
        raise RuntimeError("crash")

    async with ActorRuntime() as runtime:
        if case == "stopped":  # the restart waits out a backoff until the supervisor stops
            sup = Supervisor(runtime, "top", [ChildSpec("c", crasher, (world,))],
                             backoff=Backoff(initial=60, maximum=60, jitter=0))  # fmt: skip
        else:
            sup = Supervisor(runtime, "top", [ChildSpec("c", crasher, (world,))], max_restarts=0)
        await sup.start()
        await runtime.send("c", Cmd("first"))
        await world.until(lambda: "holding" in world.events)
        ask = asyncio.ensure_future(runtime.request("c", Cmd("second")))  # no timeout
        await world.until(lambda: runtime.statistics("c").inbox.size == 1)
        gate.set()
        await world.until(lambda: runtime.state("c") == "failed")
        if case == "stopped":
            await sup.stop()
            why = "supervisor `top` stopped"
        else:
            await world.until(lambda: sup.state == "failed")
            why = "supervisor `top` gives up: child `c` failed"
        async with asyncio.timeout(5):  # a hang shows as this timeout
            with pytest.raises(ActorStateError) as raised:
                await ask
        assert str(raised.value).startswith(
            f"no reply from actor `c`: actor `c` is failed and was not restarted: {why}"
        )
        assert isinstance(raised.value.__cause__, RuntimeError)  # the crash, as the cause
        assert world.starts["c"] == 1
        await sup.stop()


class Plain:
    """A message without a ``message_id``."""

    def __init__(self, what: str) -> None:
        self.what = what


@pytest.mark.timeout(30)
async def test_redelivery_is_once_per_message_even_when_a_freed_message_id_is_reused() -> None:
    """A message redelivered and finished is freed; a new message may get its ``id``. The
    new one still gets its own redelivery, and what the supervisor remembers stays
    bounded: the messages it gave back that are still queued, and the last one."""
    world = World()
    crashed: set[str] = set()

    async def crash_once_on_each(ctx: PersistentActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while True:
            what = (await ctx.receive()).what  # no frame keeps the message alive
            if what.startswith("crash") and what not in crashed:
                crashed.add(what)
                raise RuntimeError(f"crash on {what}")
            world.handled.append(what)
            world.note("handled")

    async with ActorRuntime() as runtime:
        spec = ChildSpec("w", crash_once_on_each, (world,), redeliver=True)
        sup = Supervisor(runtime, "sup", [spec], max_restarts=20)
        await sup.start()
        crashes: list[weakref.ref[Plain]] = []
        for n in range(10):
            crash = Plain(f"crash {n}")  # often gets the id of the one freed just before
            crashes.append(weakref.ref(crash))
            await runtime.send("w", crash)
            await runtime.send("w", Plain(f"flush {n}"))  # the actor lets go of `crash`
            await world.until(lambda n=n: f"flush {n}" in world.handled)
            await settled(sup)
            del crash  # freed, unless something still holds it
        assert world.handled == [f"{w} {n}" for n in range(10) for w in ("crash", "flush")]
        assert runtime.dead_letters("w") == []
        gc.collect()  # the crashes' tracebacks make cycles
        assert sum(ref() is not None for ref in crashes) <= 1  # nothing keeps one per crash
        await sup.stop()
