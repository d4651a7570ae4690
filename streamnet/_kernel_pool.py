"""The thread pool a Context runs blocking kernels in, and how a cancelled caller waits for one.

Started on first use, shut down once with its Context. A kernel sees its
caller's context variables (the actor's name), like `asyncio.to_thread`.
Each kernel's time queued for a thread and its time running are counted on
its caller's traffic counter (`channels.lowlevel.current_counter`: an actor's
recorder), so that statistics tell an actor's own work from its wait for a
thread that other actors' kernels hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import types
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any, ParamSpec, TypeVar

from channels.lowlevel import TrafficCounter, current_counter
from streamnet._tasks import current_driver
from streamnet.observe._logging import logger

__all__ = ["KernelPool"]

P = ParamSpec("P")
R = TypeVar("R")


class KernelPool:
    """A pool of ``num_threads`` threads for blocking kernels (`Context.to_thread`).

    ``cancel_grace`` bounds how long a cancelled actor waits for its running kernel.
    """

    def __init__(self, num_threads: int, *, cancel_grace: float) -> None:
        self.num_threads = num_threads
        self.cancel_grace = cancel_grace
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._closed = False
        self._kernels = 0  # kernels submitted and not finished
        self._kernels_lock = threading.Lock()

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` in a thread of the pool and await it (see
        `Context.to_thread` for what a cancellation does).

        Raises
        ------
        RuntimeError
            The pool was closed.
        """
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        counter = current_counter()
        times: list[float] = []  # when the kernel started and ended, set by its thread
        # Like asyncio.to_thread: the kernel sees the caller's context (its actor's name...).
        submitted = perf_counter()
        kernel = self._executor_now().submit(
            contextvars.copy_context().run, _timed, call, times
        )
        with self._kernels_lock:
            self._kernels += 1
        kernel.add_done_callback(self._done)  # also when cancelled before it started
        done = asyncio.wrap_future(kernel)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            if kernel.cancel():  # it never ran
                raise
            driver = current_driver()
            grace = self.cancel_grace if driver is not None else None
            logger.debug(
                "%s was cancelled while its kernel `%s` runs; it waits for the kernel %s",
                _caller(),
                _kernel_name(fn),
                "to end" if grace is None else f"at most {grace:g} s",
            )
            since = asyncio.get_running_loop().time()
            await _outlast(done, grace)
            if driver is None or kernel.done():
                raise
            _warn_left_running(fn, asyncio.get_running_loop().time() - since, self.cancel_grace)
            driver.let_go()
            driver.resume_after(kernel)
            await _suspend()  # the task ends here; the kernel's end resumes this coroutine
            raise
        finally:
            if counter is not None:
                _count(counter, submitted, times)

    def _done(self, future: object) -> None:
        with self._kernels_lock:
            self._kernels -= 1

    @property
    def running(self) -> bool:
        """Whether a kernel runs (or waits to run) now."""
        return self._kernels > 0

    def _executor_now(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._executor_lock:
                if self._closed:
                    raise RuntimeError("Context is closed; create a new Context")
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.num_threads, thread_name_prefix="streamnet"
                    )
                executor = self._executor
        return executor

    def close(self) -> None:
        """Shut the threads down, waiting for running kernels; later runs raise. Idempotent."""
        with self._executor_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _timed(call: Callable[[], R], times: list[float]) -> R:
    """Run ``call``, appending to ``times`` when it started, then when it ended."""
    times.append(perf_counter())
    try:
        return call()
    finally:
        times.append(perf_counter())


def _count(counter: TrafficCounter, submitted: float, times: list[float]) -> None:
    """Count a kernel submitted at ``submitted`` on its caller's ``counter``: its wait for
    a thread (until it started, or until now if it never did) and its run, once it ended."""
    if not times:  # cancelled before a thread took it
        counter.waited("thread", submitted, perf_counter())
        return
    started = times[0]
    counter.waited("thread", submitted, started)
    if len(times) > 1:
        counter.thread_seconds += times[1] - started


async def _outlast(done: asyncio.Future[Any], grace: float | None) -> None:
    """Wait until ``done`` is done, at most ``grace`` seconds or until the caller is
    cancelled again; with ``grace`` None, through any cancellation.

    The caller re-raises its own cancellation.
    """
    if grace is None:
        while not done.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([done])
    else:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([done], timeout=grace)
    if done.done() and not done.cancelled():
        done.exception()  # retrieved: a failure after cancellation is superseded by it


@types.coroutine
def _suspend() -> Generator[None, None, None]:
    """Give the step back to the task's driver, which ends the task (see `Driver.let_go`)."""
    yield


def _caller() -> str:
    from streamnet._actor import current_actor_name  # _actor imports the Context, so this

    actor = current_actor_name()
    if actor is not None:
        return f"actor `{actor}`"
    task = asyncio.current_task()
    return f"task `{task.get_name() if task is not None else '?'}`"


def _kernel_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def _warn_left_running(fn: Callable[..., Any], waited: float, grace: float) -> None:
    logger.warning(
        "%s was cancelled while its kernel `%s` ran in the thread pool; the kernel still runs "
        "after %.1f s (Context(cancel_grace=%g)) and is left running: the caller's cleanup "
        "waits until it ends",
        _caller(),
        _kernel_name(fn),
        waited,
        grace,
    )
