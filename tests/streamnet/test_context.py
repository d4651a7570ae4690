from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from streamnet import BackendUnavailableError, Context, Network, define_actor, start_task


async def test_to_thread_runs_off_the_event_loop_thread() -> None:
    with Context(num_threads=2) as ctx:
        loop_thread = threading.get_ident()
        ident = await ctx.to_thread(threading.get_ident)
        assert ident != loop_thread
        assert await ctx.to_thread(pow, 2, 10) == 1024
        assert await ctx.to_thread(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]


async def test_to_thread_after_close_raises() -> None:
    ctx = Context()
    ctx.close()
    with pytest.raises(RuntimeError, match="closed"):
        await ctx.to_thread(int)


async def test_to_thread_propagates_exceptions() -> None:
    with Context() as ctx, pytest.raises(ZeroDivisionError):
        await ctx.to_thread(lambda: 1 / 0)


@pytest.mark.timeout(30)
async def test_cancelled_caller_cleans_up_only_after_its_running_kernel_ends() -> None:
    """Cleanup after a cancelled ``to_thread`` never races the kernel (a closed writer crashed)."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def kernel() -> None:
        started.set()
        release.wait(20)
        order.append("kernel ended")

    async def caller(ctx: Context) -> None:
        try:
            await ctx.to_thread(kernel)
        finally:
            order.append("cleanup")

    with Context(num_threads=2) as ctx:
        task = asyncio.create_task(caller(ctx))
        await asyncio.to_thread(started.wait, 20)
        task.cancel()
        task.cancel()  # a second cancellation does not cut the wait short either
        done, _ = await asyncio.wait([task], timeout=0.2)
        assert not done, "the caller went on while its kernel still ran"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert order == ["kernel ended", "cleanup"]


async def test_cancelled_caller_drops_a_kernel_not_started_yet() -> None:
    started, gate = threading.Event(), threading.Event()
    ran: list[int] = []

    def block() -> bool:
        started.set()
        return gate.wait(20)

    with Context(num_threads=1) as ctx:
        blocker = asyncio.ensure_future(ctx.to_thread(block))
        queued = asyncio.ensure_future(ctx.to_thread(ran.append, 1))
        await asyncio.to_thread(started.wait, 20)  # the one thread is busy: `queued` waits
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.set()
        assert await blocker
        assert await ctx.to_thread(len, ran) == 0


def test_create_channel_uses_context_defaults() -> None:
    ctx = Context(channel_capacity=5)
    ch = ctx.create_channel(int)
    assert (ch.capacity, ch.payload_type, ch.name) == (5, int, "ch#0")
    assert ctx.create_channel(capacity=1, max_bytes=10, name="x").name == "x"


def test_options_are_read_only() -> None:
    ctx = Context(options={"k": 1})
    assert ctx.options["k"] == 1
    with pytest.raises(TypeError):
        ctx.options["k"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "tpu"}, "backend"),
        ({"num_threads": 0}, "num_threads"),
        ({"channel_capacity": 0}, "channel_capacity"),
        ({"cancel_grace": -1}, "cancel_grace"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Context(**kwargs)


def test_gpu_backend_says_it_is_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="gpu"):
        Context(backend="gpu")


async def test_async_context_manager_closes() -> None:
    async with Context() as ctx:
        await ctx.to_thread(int)
    assert ctx.closed


# ------------------------------------------------------------ a kernel outliving its cancellation
class LogEvent(logging.Handler):
    """Sets ``seen`` (on the test's loop) once a ``streamnet`` record contains ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.loop = asyncio.get_running_loop()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.loop.call_soon_threadsafe(self.seen.set)


@pytest.fixture
def streamnet_debug() -> Iterator[logging.Logger]:
    logger = logging.getLogger("streamnet")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(level)


def blocking_kernel(order: list[str]) -> tuple[asyncio.Event, threading.Event, Any]:
    """A kernel that says when it runs and ends when released, noting its end in ``order``."""
    loop = asyncio.get_running_loop()
    running, release = asyncio.Event(), threading.Event()

    def kernel() -> None:
        loop.call_soon_threadsafe(running.set)
        release.wait(20)
        order.append("kernel ended")

    return running, release, kernel


@pytest.mark.timeout(30)
async def test_an_actor_waits_for_its_kernel_at_most_cancel_grace_and_cleans_up_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The run ends at once; what would free the kernel's data runs only once it ended."""
    order: list[str] = []
    running, release, kernel = blocking_kernel(order)
    cleaned = asyncio.Event()

    @define_actor
    async def slow(ctx: Context) -> None:
        try:
            await ctx.to_thread(kernel)
        finally:
            order.append("cleanup")
            cleaned.set()

    ctx = Context(cancel_grace=0.1)
    run = asyncio.ensure_future(Network(ctx, [slow(ctx)]).run_async())
    async with asyncio.timeout(10):
        await running.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run  # while the kernel still runs
    assert order == []
    release.set()
    async with asyncio.timeout(10):
        await cleaned.wait()
    assert order == ["kernel ended", "cleanup"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(
        "actor `slow#0` was cancelled while its kernel `blocking_kernel.<locals>.kernel` ran in "
        "the thread pool; the kernel still runs after "
    )
    assert warning.endswith(
        " s (Context(cancel_grace=0.1)) and is left running: the caller's cleanup waits until "
        "it ends"
    )
    ctx.close()


@pytest.mark.timeout(30)
async def test_a_second_cancellation_stops_the_wait_for_a_running_kernel(
    caplog: pytest.LogCaptureFixture, streamnet_debug: logging.Logger
) -> None:
    order: list[str] = []
    running, release, kernel = blocking_kernel(order)
    waiting = LogEvent("it waits for the kernel at most 60 s")
    streamnet_debug.addHandler(waiting)
    cleaned = asyncio.Event()

    async def caller(ctx: Context) -> None:
        try:
            await ctx.to_thread(kernel)
        finally:
            order.append("cleanup")
            cleaned.set()

    try:
        with Context(cancel_grace=60) as ctx:
            task = start_task(caller(ctx), name="caller")
            async with asyncio.timeout(10):
                await running.wait()
                task.cancel()
                await waiting.seen.wait()
                task.cancel()  # long before the grace is over
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert order == []
            release.set()
            async with asyncio.timeout(10):
                await cleaned.wait()
    finally:
        streamnet_debug.removeHandler(waiting)
    assert order == ["kernel ended", "cleanup"]
    assert "task `caller` was cancelled while its kernel" in caplog.text
    assert "(Context(cancel_grace=60)) and is left running" in caplog.text
