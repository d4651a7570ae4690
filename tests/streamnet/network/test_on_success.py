"""Commit steps: what actors register with `on_success` runs only once the whole run succeeded."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from streamnet import (
    Context,
    Message,
    Network,
    RemoteRankError,
    define_actor,
    on_success,
    run_ranks_async,
)


class InjectedFault(RuntimeError):
    """The failure a test injects."""


@define_actor
async def numbers(ctx: Context, ch_out: Any) -> None:
    for seq in range(3):
        await ch_out.send(ctx, Message(seq, seq))
    await ch_out.drain(ctx)


def staging_actor(log: list[str], staged: asyncio.Event | None = None, count: int = 1) -> Any:
    """A collective actor that reads its input to the end, then registers a step that logs;
    ``staged`` is set once ``count`` of them registered."""

    @define_actor(collective=True)
    async def stages(ctx: Context, ch_in: Any, name: str, *, commit_fails: bool = False) -> None:
        async for _ in ch_in:
            pass

        def commit() -> None:
            if commit_fails:
                raise InjectedFault(f"commit of {name} failed")
            log.append(f"commit {name}")

        on_success(commit, abort=lambda: log.append(f"abort {name}"))
        log.append(f"staged {name}")
        if staged is not None and sum(e.startswith("staged") for e in log) == count:
            staged.set()

    return stages


@define_actor
async def fails_after(ctx: Context, ch_in: Any, ended: asyncio.Event) -> None:
    """Read to the end, wait until ``ended``, then fail."""
    async for _ in ch_in:
        pass
    await ended.wait()
    raise InjectedFault("failed after the other actors ended")


@pytest.mark.timeout(30)
def test_commit_steps_run_in_order_once_every_actor_ended() -> None:
    log: list[str] = []
    both_staged = asyncio.Event()
    stages = staging_actor(log, both_staged, count=2)
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()

    @define_actor
    async def last(ctx: Context) -> None:
        await both_staged.wait()  # both registered their step: none may have committed yet
        log.append("last actor ends")

    Network(ctx, [numbers(ctx, a), numbers(ctx, b), stages(ctx, a, "first"),
                  stages(ctx, b, "second"), last(ctx)]).run()  # fmt: skip
    assert log[-3:] == ["last actor ends", "commit first", "commit second"]
    assert not any(entry.startswith("abort") for entry in log)


@pytest.mark.timeout(30)
def test_commit_steps_follow_the_networks_order_not_which_actor_registered_first() -> None:
    """The actor listed second registers first; the first listed still commits first, as
    it would on every rank and every run."""
    log: list[str] = []
    second_staged = asyncio.Event()
    ctx = Context()

    @define_actor
    async def registers(ctx: Context, name: str, after: asyncio.Event | None) -> None:
        if after is not None:
            await after.wait()
        on_success(lambda: log.append(f"commit {name}"))
        if after is None:
            second_staged.set()

    Network(ctx, [registers(ctx, "first", second_staged), registers(ctx, "second", None)]).run()
    assert log == ["commit first", "commit second"]


@pytest.mark.timeout(30)
def test_a_run_that_fails_after_a_step_was_registered_aborts_it_and_commits_nothing() -> None:
    """The failure comes after the registering actor ended: its step is aborted."""
    log: list[str] = []
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    registered = asyncio.Event()

    @define_actor
    async def stages(ctx: Context, ch_in: Any) -> None:
        async for _ in ch_in:
            pass
        on_success(lambda: log.append("commit"), abort=lambda: log.append("abort"))
        registered.set()

    with pytest.raises(InjectedFault, match="failed after the other actors ended"):
        Network(ctx, [numbers(ctx, a), numbers(ctx, b), stages(ctx, a),
                      fails_after(ctx, b, registered)]).run()  # fmt: skip
    assert log == ["abort"]


@pytest.mark.timeout(30)
async def test_a_cancelled_run_aborts_its_steps() -> None:
    log: list[str] = []
    ctx = Context()
    registered = asyncio.Event()

    @define_actor
    async def stages_then_waits(ctx: Context) -> None:
        on_success(lambda: log.append("commit"), abort=lambda: log.append("abort"))
        registered.set()
        await asyncio.Event().wait()

    run = asyncio.ensure_future(Network(ctx, [stages_then_waits(ctx)]).run_async())
    await registered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert log == ["abort"]
    ctx.close()


@pytest.mark.timeout(30)
def test_a_failing_commit_step_keeps_earlier_ones_aborts_the_rest_and_says_so() -> None:
    log: list[str] = []
    stages = staging_actor(log)
    ctx = Context()
    a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    nodes = [
        stages(ctx, a, "one"),
        stages(ctx, b, "two", commit_fails=True),
        stages(ctx, c, "three"),
    ]
    network = Network(ctx, [numbers(ctx, a), numbers(ctx, b), numbers(ctx, c), *nodes])
    with pytest.raises(InjectedFault, match="commit of two failed") as info:
        network.run()
    committed = [entry for entry in log if not entry.startswith("staged")]
    assert committed[0] == "commit one"
    assert sorted(committed[1:]) == ["abort three", "abort two"]
    notes = "\n".join(info.value.__notes__)
    assert (
        "the commit step of actor `stages#1` failed; the steps committed before it stay "
        "committed (`stages#0`); it and those after it were abandoned (after it: `stages#2`)"
    ) in notes
    assert network.state == "failed"


def test_on_success_outside_a_running_actor_is_refused() -> None:
    with pytest.raises(RuntimeError, match="only an actor running in a Network can register"):
        on_success(lambda: None)


@pytest.mark.timeout(30)
def test_a_step_registered_after_the_actors_ended_is_refused() -> None:
    ctx = Context()
    late: list[BaseException] = []

    @define_actor
    async def registers_late(ctx: Context) -> None:
        as_the_actor = contextvars.copy_context()

        def register() -> None:
            try:
                on_success(lambda: None)
            except RuntimeError as exc:
                late.append(exc)

        on_success(lambda: as_the_actor.run(register))  # once the actors ended

    Network(ctx, [registers_late(ctx)]).run()
    assert "after its network's actors ended" in str(late[0])


# -- several ranks ------------------------------------------------------------------------------


def _note_when_waiting(ctx: Context, reached: asyncio.Event) -> None:
    """Set ``reached`` when this rank's network waits for the other ranks after its actors."""
    comm = ctx.communicator
    real = comm.barrier

    async def barrier(tag: Any) -> None:
        reached.set()
        await real(tag)

    comm.barrier = barrier  # type: ignore[method-assign]


@pytest.mark.timeout(30)
async def test_no_rank_commits_unless_every_rank_succeeded() -> None:
    """Rank 0's actors all ended well, and only then rank 1 fails: rank 0 aborts."""
    logs: dict[int, list[str]] = {0: [], 1: []}
    rank_0_ready = asyncio.Event()

    async def job(ctx: Context) -> None:
        log = logs[ctx.rank]
        stages = staging_actor(log)
        ch = ctx.create_channel()
        actors = [numbers(ctx, ch), stages(ctx, ch, f"rank {ctx.rank}")]
        if ctx.rank == 0:
            _note_when_waiting(ctx, rank_0_ready)
            # A commit that ran without waiting for rank 1 would also let rank 1 fail.
            actors.append(_sets(ctx, rank_0_ready, log))
        else:

            @define_actor
            async def fails_once_rank_0_is_ready(ctx: Context) -> None:
                await rank_0_ready.wait()
                raise InjectedFault("rank 1 failed after rank 0's actors ended")

            actors.append(fails_once_rank_0_is_ready(ctx))
        await Network(ctx, actors).run_async()

    with pytest.raises(InjectedFault, match="rank 1 failed after rank 0's actors ended"):
        async with asyncio.timeout(20):
            await run_ranks_async(2, job)
    assert logs[0] == ["staged rank 0", "abort rank 0"]
    assert logs[1] == ["staged rank 1", "abort rank 1"]


def _sets(ctx: Context, event: asyncio.Event, log: list[str]) -> Any:
    """An actor that ends at once; a commit step that sets ``event``."""

    @define_actor
    async def collective_marker(ctx: Context) -> None:
        def commit() -> None:
            log.append("marker commit")
            event.set()

        on_success(commit)

    return collective_marker(ctx)


@pytest.mark.timeout(30)
async def test_a_commit_step_failing_on_one_rank_fails_the_run_on_every_rank() -> None:
    logs: dict[int, list[str]] = {0: [], 1: []}
    errors: dict[int, BaseException] = {}

    async def job(ctx: Context) -> None:
        stages = staging_actor(logs[ctx.rank])
        ch = ctx.create_channel()
        node = stages(ctx, ch, f"rank {ctx.rank}", commit_fails=ctx.rank == 0)
        try:
            await Network(ctx, [numbers(ctx, ch), node]).run_async()
        except BaseException as exc:
            errors[ctx.rank] = exc
            raise

    with pytest.raises(InjectedFault, match="commit of rank 0 failed"):
        async with asyncio.timeout(20):
            await run_ranks_async(2, job)
    assert isinstance(errors[1], RemoteRankError) and errors[1].rank == 0
    assert logs[0] == ["staged rank 0", "abort rank 0"]
    assert logs[1] == ["staged rank 1", "commit rank 1"]  # its own step ran; the run failed
