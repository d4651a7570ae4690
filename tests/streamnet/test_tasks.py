"""start_task: helper tasks of actors, whose failures are raised where awaited and logged
once where nobody looks; tasks abandoned because of another failure stay quiet."""

from __future__ import annotations

import asyncio
import gc

import pytest

from streamnet import (
    Channel,
    Context,
    Message,
    Network,
    current_actor_name,
    define_actor,
    start_task,
)

pytestmark = pytest.mark.timeout(30)


async def fails(exc: BaseException) -> None:
    raise exc


def never_retrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What asyncio reported of tasks collected with an exception nobody retrieved."""
    gc.collect()  # a task reports an unretrieved exception when it is collected
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "asyncio" and "exception was never retrieved" in r.getMessage()
    ]


async def test_a_failure_nobody_awaits_is_logged_once_with_the_actors_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started: list[asyncio.Task[None]] = []

    @define_actor
    async def lonely(ctx: Context) -> None:
        task = start_task(fails(ValueError("lost in a helper")), name="helper")
        started.append(task)
        await asyncio.wait([task])  # it ended; nobody looks at how

    ctx = Context()
    await Network(ctx, [lonely(ctx)]).run_async()
    assert started[0].get_name() == "lonely#0: helper"
    started.clear()
    (report,) = never_retrieved(caplog)
    assert "name='lonely#0: helper'" in report
    assert "ValueError('lost in a helper')" in report


async def test_a_failure_that_is_awaited_is_raised_there_and_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @define_actor
    async def waits_for_its_helper(ctx: Context) -> None:
        await start_task(fails(ValueError("raised through the actor")))

    ctx = Context()
    with pytest.raises(ValueError, match="raised through the actor"):
        await Network(ctx, [waits_for_its_helper(ctx)]).run_async()
    assert never_retrieved(caplog) == []


async def test_a_failure_reporting_another_one_is_not_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A helper that meets an aborted channel after its actor failed says nothing new."""
    channel = Channel[int]()
    channel.abort(KeyError("the first failure"))
    tasks = [start_task(channel.send(None, Message(0, 0))), start_task(channel.recv(None))]
    await asyncio.wait(tasks)  # both raise ChannelAborted
    tasks.clear()
    assert never_retrieved(caplog) == []


async def test_a_started_task_runs_in_a_copy_of_its_starters_context() -> None:
    seen: list[str | None] = []

    async def note() -> None:
        seen.append(current_actor_name())

    @define_actor
    async def starts(ctx: Context) -> None:
        await start_task(note())

    ctx = Context()
    await Network(ctx, [starts(ctx)]).run_async()
    await start_task(note())
    assert seen == ["starts#0", None]


def test_a_task_not_awaited_and_never_run_warns_of_nothing() -> None:
    """Cancelled before its first step, its coroutine is closed (not 'never awaited')."""

    async def main() -> None:
        task = start_task(asyncio.sleep(10))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gc.collect()  # a coroutine never awaited would warn here (warnings are errors)


def test_its_name_outside_an_actor_is_the_coroutines() -> None:
    async def main() -> str:
        task = start_task(asyncio.sleep(0))
        await task
        return task.get_name()

    assert asyncio.run(main()) == "sleep"


class _Big:
    """A result to follow with a weak reference."""


async def test_a_tasks_result_is_freed_once_awaited_without_the_cyclic_collector() -> None:
    """A helper task's result (a chunk read ahead) goes with the last reference to it: the
    task's note of itself in its context must not make a cycle that only gc breaks."""
    import weakref

    async def make() -> _Big:
        await asyncio.sleep(0)
        return _Big()

    gc.collect()
    gc.disable()
    try:
        task = start_task(make())
        result = await task
        alive = weakref.ref(result)
        del task, result
        await asyncio.sleep(0)  # the task's done callbacks run
        assert alive() is None
    finally:
        gc.enable()
