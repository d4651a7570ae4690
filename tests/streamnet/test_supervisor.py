"""Supervisors behave as Erlang/OTP specifies: who restarts, in which order, how often."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from streamnet import (
    ActorContext,
    ActorRuntime,
    Backoff,
    ChildSpec,
    RestartIntensityError,
    Supervisor,
    message,
)


@message
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

    async def until(self, predicate, timeout: float = 3.0) -> None:
        """Wait for ``predicate``: woken by the children's events, re-checked every 20 ms
        for state that changes without one (a supervisor's)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.02)


async def child(ctx: ActorContext, world: World) -> None:
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


def specs(world: World, *names: str, restart: str = "permanent") -> list[ChildSpec]:
    return [ChildSpec(n, child, (world,), restart=restart, shutdown_timeout=1) for n in names]  # type: ignore[arg-type]


async def started(world: World, runtime: ActorRuntime, sup: Supervisor, n: int) -> None:
    await world.until(lambda: sum(world.starts.values()) >= n)


@pytest.mark.parametrize(
    ("strategy", "restarted", "stop_order"),
    [
        ("one_for_one", {"b"}, []),
        ("one_for_all", {"a", "b", "c"}, ["stop c", "stop a"]),
        ("rest_for_one", {"b", "c"}, ["stop c"]),
    ],
)
async def test_strategies_restart_the_right_children_in_order(
    strategy, restarted, stop_order
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
async def test_restart_types(restart, how, comes_back) -> None:
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
            await asyncio.sleep(0.1)  # give a wrong restart a chance to show
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
        assert "restarted 2 times within 10 s" in str(sup.failure)
        assert isinstance(sup.failure.__cause__, RuntimeError)
        assert runtime.state("a") == "terminated"
        assert runtime.supervision_failures == [("sup", sup.failure)]


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

    async def flaky(ctx: ActorContext, world: World) -> None:
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
        assert 0.8 * plain.delay(n) <= jittery.delay(n, rng) <= 1.2 * plain.delay(n)


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
        assert sup._streak == 2
        await asyncio.sleep(0.35)  # quiet spell longer than reset_after
        await runtime.send("b", Cmd("crash"))
        await world.until(lambda: world.starts["b"] == 4)
        assert sup._streak == 1  # the streak started over
        await sup.stop()


async def test_watchdog_fails_a_stuck_actor_and_its_supervisor_restarts_it(caplog) -> None:
    import logging

    from streamnet import WatchdogTimeout

    caplog.set_level(logging.ERROR, logger="streamnet")
    world = World()
    release = asyncio.Event()

    async def sticky(ctx: ActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while not ctx.should_terminate:
            try:
                cmd = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            if cmd.what == "hang":
                await release.wait()  # holds the message, makes no progress
            world.handled.append(cmd.what)
            world.note("handled")

    async with ActorRuntime() as runtime:
        spec = ChildSpec("s", sticky, (world,), heartbeat_timeout=0.2, shutdown_timeout=1)
        sup = Supervisor(runtime, "sup", [spec])
        await sup.start()
        await asyncio.sleep(0.5)  # idle (nothing held) is not stuck
        assert world.starts["s"] == 1
        await runtime.send("s", Cmd("hang"))
        await world.until(lambda: world.starts["s"] == 2)
        assert (
            isinstance(runtime._actors["s"].failure, WatchdogTimeout)
            or runtime.state("s") == "active"
        )
        await runtime.send("s", Cmd("fine"))
        await world.until(lambda: "fine" in world.handled)
        assert [m.what for m in runtime.dead_letters("s")] == ["hang"]
        await sup.stop()


async def test_watchdog_spares_an_actor_that_reports_progress() -> None:
    world = World()

    async def slow_but_alive(ctx: ActorContext, world: World) -> None:
        world.starts[ctx.actor_id] += 1
        while not ctx.should_terminate:
            try:
                await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            for _ in range(8):  # 0.4 s of work, reporting progress as it goes
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
