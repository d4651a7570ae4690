"""Tasks the runtime starts, and the driver through which a task can let go of its coroutine.

An actor's coroutine, and every coroutine started with :func:`start_task`, runs
through a :class:`Driver`: an awaitable that forwards each step of the task to
the coroutine, in a `contextvars.Context` of its own. When a kernel the
coroutine waits for (``Context.to_thread``) outlives the coroutine's
cancellation, the driver lets go: the task ends as cancelled at once, and the
coroutine stays suspended where it was, its cleanup not run, until the kernel
ends (:meth:`Driver.resume_after`). So nothing frees what a running kernel uses,
and nothing waits for a kernel that takes long (an interrupted run ends).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from concurrent.futures import Future as ConcurrentFuture
from contextvars import ContextVar
from typing import Any, ParamSpec, Protocol, TypeVar

from channels import ChannelAborted, ChannelBroken
from streamnet._errors import RemoteRankError
from streamnet.observe._logging import logger

__all__ = ["Driver", "current_driver", "map_in_threads", "retrieve", "start_task", "stop_tasks"]

T = TypeVar("T")
U = TypeVar("U")
P = ParamSpec("P")
R = TypeVar("R")


class _Kernels(Protocol):
    """What :func:`stop_tasks` and :func:`map_in_threads` use of a `Context`."""

    @property
    def cancel_grace(self) -> float: ...

    async def to_thread(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


_CONSEQUENCES = (ChannelAborted, ChannelBroken, RemoteRankError)
"""Failures that report an earlier one (or a normal end downstream), never a cause."""

_driver: ContextVar[tuple[asyncio.Task[Any], Driver[Any]] | None] = ContextVar(
    "streamnet_driver", default=None
)


def start_task(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Run ``coro`` as a task of the running loop, on behalf of the running actor.

    As ``asyncio.create_task``, with three differences that matter when an
    actor starts helper tasks (sends to peers, read-ahead):

    - Inside an actor, the task counts as that actor (deadlock detection,
      statistics) and its name starts with the actor's (``shuffle#0: send``).
    - A failure that only reports an earlier one (`ChannelAborted`,
      `RemoteRankError`) or a normal end downstream (`ChannelBroken`) is marked
      retrieved, so the tasks a failing actor abandons stay quiet. Any other
      failure that nobody awaits is logged once, when the task is collected,
      as asyncio does ("Task exception was never retrieved"), with the task's
      name; a task that is awaited raises there, and is not logged.
    - A kernel it awaits (``ctx.to_thread``) that outlives its cancellation by
      the Context's ``cancel_grace`` is left running, and the task ends (see
      `Context.to_thread`).

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     task = start_task(asyncio.sleep(0, "done"), name="nap")
    ...     return task.get_name(), await task
    >>> asyncio.run(main())
    ('nap', 'done')
    """
    from streamnet._actor import current_actor_name  # _actor imports this module's users

    actor = current_actor_name()
    label = name if name is not None else getattr(coro, "__qualname__", "task")
    if actor is not None:
        label = f"{actor}: {label}"
    driver = Driver(coro)
    task: asyncio.Task[T] = asyncio.get_running_loop().create_task(driver, name=label)
    task.add_done_callback(lambda done: done.exception() if driver.reported else None)
    return task


def current_driver() -> Driver[Any] | None:
    """The driver of the running task's coroutine, or None (a task started otherwise)."""
    found = _driver.get()
    if found is None or found[0] is not asyncio.current_task():
        return None  # a task started inside a driven one, by plain asyncio
    return found[1]


class Driver(Coroutine[Any, Any, T]):
    """Runs ``coro`` for the task that awaits it (``return await Driver(coro)``), or for
    the task made of it (``loop.create_task(Driver(coro))``); see the module's documentation.
    """

    __slots__ = ("_bound", "_context", "_coro", "_let_go", "_loop", "_reported")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._let_go = False
        self._bound = False
        self._reported = False
        """Whether it failed with a failure that reports another (see `start_task`)."""
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()

    def __await__(self) -> Generator[Any, None, T]:
        return self  # an iterator with send and throw

    def __iter__(self) -> Driver[T]:
        return self

    def __next__(self) -> Any:
        """One step of the task: resume the coroutine (the path taken when awaited)."""
        if not self._bound:
            self._bind()
        try:
            awaited = self._context.run(self._coro.send, None)
        except _CONSEQUENCES:
            self._reported = True
            self._unbind()
            raise
        except BaseException:  # the coroutine ended (StopIteration carries its result)
            self._unbind()
            raise
        if self._let_go:
            raise asyncio.CancelledError("its coroutine was left waiting for a kernel")
        return awaited

    def send(self, value: Any) -> Any:
        """One step of the task: resume the coroutine with ``value``."""
        return self._step(self._coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """One step of the task: raise into the coroutine (a cancellation...)."""
        exc = typ
        if val is not None or tb is not None:  # the old three-argument form
            exc = val if isinstance(val, BaseException) else typ(*(() if val is None else (val,)))
            if tb is not None:
                exc = exc.with_traceback(tb)
        return self._step(self._coro.throw, exc)

    def close(self) -> None:
        """The task's coroutine is closed: close ``coro`` too, unless it was let go."""
        if not self._let_go:
            self._context.run(self._coro.close)

    @property
    def reported(self) -> bool:
        """Whether the coroutine failed with a failure that reports another."""
        return self._reported

    @property
    def cr_await(self) -> Coroutine[Any, Any, T]:
        """The coroutine driven (what a walk down a task's awaits finds next)."""
        return self._coro

    def _bind(self) -> None:
        """The first step runs in the task that drives the coroutine: note it."""
        self._bound = True
        task = asyncio.current_task()
        if task is not None:
            self._context.run(_driver.set, (task, self))

    def _unbind(self) -> None:
        """The coroutine ended: forget its task. The note made by `_bind` (the task, in the
        context that holds this driver, which the task holds) is a reference cycle, which
        would keep the task's result (a chunk read ahead...) until the cyclic garbage
        collector runs, long after the task was awaited."""
        if self._bound:
            self._context.run(_driver.set, None)

    def _step(self, method: Any, arg: Any) -> Any:
        if not self._bound:
            self._bind()
        try:
            awaited = self._context.run(method, arg)
        except _CONSEQUENCES:
            self._reported = True
            self._unbind()
            raise
        except BaseException:  # the coroutine ended (StopIteration carries its result)
            self._unbind()
            raise
        if self._let_go:
            raise asyncio.CancelledError("its coroutine was left waiting for a kernel")
        return awaited

    # ------------------------------------------------------------------ letting go
    def let_go(self) -> None:
        """End the task at the coroutine's next suspension, leaving the coroutine there."""
        self._let_go = True

    def resume_after(self, kernel: ConcurrentFuture[Any]) -> None:
        """Once ``kernel`` is done, resume the coroutine (let go) in a new task of its loop,
        or, if that loop is closed by then, close it in the thread that ran the kernel.

        Until then the coroutine is only referenced from ``kernel``'s callbacks,
        which the thread running the kernel holds: if the process ends first,
        it is never finalized, so its cleanup never runs beside the kernel.
        """

        def finished(_: object) -> None:
            try:
                self._loop.call_soon_threadsafe(self._resume)
            except RuntimeError:  # the loop is closed: no task can run it there
                self._close_here()

        kernel.add_done_callback(finished)

    def _resume(self) -> None:
        if self._loop.is_closed():  # pragma: no cover - closed between the two calls
            self._close_here()
            return
        self._let_go = False
        task: asyncio.Task[T] = self._loop.create_task(self)
        task.add_done_callback(_log_late_failure)

    def _close_here(self) -> None:
        try:
            self._context.run(self._coro.close)
        except BaseException as exc:  # its cleanup needed the loop: nothing more to do
            logger.debug("closing a coroutine left waiting for a kernel failed: %r", exc)


def _log_late_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.warning(
            "cleanup after a kernel that outlived its cancellation failed: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )


def retrieve(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s exception as seen (a done callback for futures nobody may look at)."""
    if not future.cancelled():
        future.exception()


async def stop_tasks(ctx: _Kernels, tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they ended, at most the Context's ``cancel_grace``.

    So that nothing they run (a kernel, a spill) outlives the collective that
    started them, and the run's spill release after it. A kernel that outlives
    its cancellation lets its task end after that long too (`Context.to_thread`).
    The caller's own cancellation meanwhile (it often comes right after the
    failure that brought it here) does not cut the wait short: it is raised after.
    """
    left = {task for task in tasks if not task.done()}
    for task in left:
        task.cancel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.cancel_grace
    cancelled: asyncio.CancelledError | None = None
    while left and (remaining := deadline - loop.time()) > 0:
        try:
            _, left = await asyncio.wait(left, timeout=remaining)
        except asyncio.CancelledError as exc:
            cancelled = exc
            left = {task for task in left if not task.done()}
    if cancelled is not None:
        raise cancelled


async def map_in_threads(
    ctx: _Kernels, items: AsyncIterator[T], fn: Callable[[T], U], *, depth: int
) -> AsyncIterator[U]:
    """``fn`` over ``items`` in the Context's thread pool, up to ``depth`` at once, results
    in order; the calls still running when the caller stops end with it (:func:`stop_tasks`)."""
    pending: deque[asyncio.Future[U]] = deque()
    try:
        async for item in items:
            pending.append(start_task(ctx.to_thread(fn, item)))
            if len(pending) >= depth:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        await stop_tasks(ctx, pending)
