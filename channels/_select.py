"""Receive from whichever of several channels is ready first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from time import perf_counter
from typing import Any, TypeVar

from channels._channel import _EMPTY, Channel
from channels._message import Message
from channels._observer import _counter

__all__ = ["recv_any"]

T = TypeVar("T")


async def recv_any(
    ctx: object, channels: Sequence[Channel[T]], *, timeout: float | None = None
) -> tuple[int, Message[T] | None]:
    """Receive from the first of ``channels`` that has a message or has ended.

    Returns ``(index, message)``. A ``None`` message means ``channels[index]``
    reached the end of its stream: drop it from the list before calling again.
    When several are ready, the earliest in the list wins; rotate the list
    between calls to share fairly. ``timeout`` is the most seconds to wait
    (None: as long as it takes).

    Raises
    ------
    TimeoutError
        ``timeout`` passed and no channel had a message or had ended.
    ValueError
        ``channels`` is empty.
    ChannelAborted
        The chosen channel was aborted.

    Examples
    --------
    >>> import asyncio
    >>> from channels import Channel, Message
    >>> async def main():
    ...     a, b = Channel[int](), Channel[int]()
    ...     await b.send(None, Message(0, 7))
    ...     return await recv_any(None, [a, b])
    >>> index, msg = asyncio.run(main())
    >>> index, msg.payload
    (1, 7)
    """
    if not channels:
        raise ValueError("recv_any: `channels` is empty; there is nothing to receive from")
    start = 0.0
    while True:
        blocked = perf_counter() - start if start else 0.0
        for index, channel in enumerate(channels):
            result = channel._poll(blocked)
            if result is not _EMPTY:
                return index, result
        if not start:
            start = perf_counter()
            if timeout is not None:
                async with asyncio.timeout(timeout):
                    return await recv_any(ctx, channels)
        await _wait_any(channels)


async def _wait_any(channels: Sequence[Channel[Any]]) -> None:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    for channel in channels:
        channel._recv_waiters.append(fut)
    counter = _counter.get()
    waiting = counter.waiting if counter is not None else None
    if waiting is not None:
        waiting.add(fut)
    try:
        await fut
    finally:
        if waiting is not None:
            waiting.discard(fut)
        for channel in channels:
            with contextlib.suppress(ValueError):
                channel._recv_waiters.remove(fut)
