"""spawn: start a helper task whose failure never surfaces as "Task exception was never retrieved"."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["spawn"]

T = TypeVar("T")


def spawn(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Run ``coro`` as a task of the running loop, its outcome always retrieved.

    Await the task (or gather it) where its result matters, as with
    ``asyncio.create_task``. The difference shows when an actor fails and
    abandons tasks it started (a peer rank failed, every send fails at once):
    their exceptions, consequences of the failure already raised, are
    retrieved here instead of being logged as "Task exception was never
    retrieved" when the task is garbage-collected. A task started inside an
    actor counts as that actor for the network's deadlock detection.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     task = spawn(asyncio.sleep(0, "done"))
    ...     return await task
    >>> asyncio.run(main())
    'done'
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    task.add_done_callback(retrieve)
    return task


def retrieve(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s exception as seen (a done callback)."""
    if not future.cancelled():
        future.exception()
