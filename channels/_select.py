"""Receive from whichever of several channels is ready first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import perf_counter
from typing import TypeVar

from channels._channel import Channel
from channels._message import Message
from channels._observer import current_counter
from channels._parking_lot import ParkingLot

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
    ready = _first_ready(channels)
    if ready is not None:
        return ready, await channels[ready].recv(ctx)
    start = perf_counter()
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    lots = [channel.recv_waiters for channel in channels]
    while ready is None:
        try:
            woken_by = await ParkingLot.park_any(lots, deadline=deadline)
        except TimeoutError:
            names = ", ".join(f"`{channel.name}`" for channel in channels)
            raise TimeoutError(f"channels {names} stayed empty for {timeout} s") from None
        ready = _first_ready(channels)
        if ready is not None and lots[ready] is not woken_by:
            # It takes from another channel than the one that woke it, whose message
            # may still be there: that wake-up goes to the next receiver parked there.
            woken_by.unpark()
    if (counter := current_counter()) is not None:
        counter.waited("input", start, perf_counter())
    return ready, await channels[ready].recv(ctx)


def _first_ready(channels: Sequence[Channel[T]]) -> int | None:
    """The index of the first channel whose ``recv`` returns at once, or None."""
    for index, channel in enumerate(channels):
        if len(channel) or channel.state != "open":
            return index
    return None
