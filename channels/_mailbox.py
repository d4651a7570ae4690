"""Mailbox: a bounded priority queue for persistent actors, with an overflow policy."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from channels._errors import ChannelClosed, ChannelError
from channels._parking_lot import ParkingLot

__all__ = ["Mailbox", "MailboxClosed", "MailboxFull", "MailboxStatistics", "OverflowPolicy"]

T = TypeVar("T")

OverflowPolicy = Literal["block", "reject", "drop_oldest"]
"""What ``put`` does when the mailbox is full: wait, raise `MailboxFull`, or move the
oldest message to the dead letters to make room."""


class MailboxFull(ChannelError):
    """``put`` on a full mailbox whose policy is ``"reject"``."""


class MailboxClosed(ChannelClosed):
    """``put`` on a closed mailbox, or ``get`` on one that is closed and empty.

    ``channel`` is the mailbox concerned.
    """


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A snapshot of one mailbox.

    Attributes
    ----------
    name, capacity, overflow
        What the mailbox is and how it is bounded (``capacity`` is None when unbounded).
    size
        Messages waiting in it now.
    delivered
        Messages taken out of it.
    dead_letters
        Messages set aside: dropped by ``drop_oldest``, or by the owner of the mailbox.
    waiting_senders, waiting_receivers
        Calls blocked on the mailbox now.
    closed
        True once ``close`` was called (and until ``reopen``).
    """

    name: str
    capacity: int | None
    overflow: OverflowPolicy
    size: int
    delivered: int
    dead_letters: int
    waiting_senders: int
    waiting_receivers: int
    closed: bool


class Mailbox(Generic[T]):
    """Messages delivered by priority (higher first), first-in first-out within a priority.

    A message's priority is its ``priority`` attribute (0-255, default 128).
    ``close`` ends it: blocked and later ``put`` calls fail, ``get`` returns what is
    left and then fails; nothing waits on a closed mailbox.

    Examples
    --------
    >>> import asyncio
    >>> from types import SimpleNamespace as M
    >>> async def main():
    ...     box = Mailbox(capacity=8)
    ...     for text, prio in [("low", 1), ("high", 200), ("low2", 1)]:
    ...         await box.put(M(text=text, priority=prio))
    ...     return [(await box.get()).text for _ in range(3)]
    >>> asyncio.run(main())
    ['high', 'low', 'low2']
    """

    def __init__(
        self,
        *,
        capacity: int | None = 1024,
        overflow: OverflowPolicy = "block",
        name: str = "mailbox",
    ) -> None:
        if capacity is not None and (type(capacity) is not int or capacity < 1):
            raise ValueError(f"Mailbox: `capacity` must be None or an int >= 1, got {capacity!r}")
        if overflow not in ("block", "reject", "drop_oldest"):
            raise ValueError(
                f"Mailbox: `overflow` must be 'block', 'reject' or 'drop_oldest', got {overflow!r}"
            )
        self.name = name
        self.capacity = capacity
        self.overflow: OverflowPolicy = overflow
        self._heap: list[tuple[int, int, T]] = []
        self._order = itertools.count()
        self._front = itertools.count(-1, -1)
        self._getters = ParkingLot()
        self._putters = ParkingLot()
        self._delivered = 0
        self._closed: str | None = None
        """Why the mailbox was closed, or None while it is open."""
        self.dead_letters: list[T] = []
        """Messages set aside, oldest first: dropped by the ``drop_oldest`` policy, or
        put here by the mailbox's owner (a supervisor, for the message a child crashed on)."""

    def __len__(self) -> int:
        """Messages waiting in the mailbox now."""
        return len(self._heap)

    @property
    def get_waiters(self) -> ParkingLot:
        """Low level: the parking lot of the ``get`` calls waiting for a message.

        The mailbox wakes one task per message put, and all of them when it
        closes. A receiver that also waits for something else parks here and
        elsewhere at once (`ParkingLot.park_any`).
        """
        return self._getters

    @property
    def put_waiters(self) -> ParkingLot:
        """Low level: the parking lot of the ``put`` calls waiting for room."""
        return self._putters

    def _full(self) -> bool:
        return self.capacity is not None and len(self._heap) >= self.capacity

    async def put(self, message: T, timeout: float | None = None) -> None:
        """Deliver ``message``; when full, act on the overflow policy.

        With ``"block"``, wait at most ``timeout`` seconds for room; a put that
        times out (or is cancelled) delivers nothing.

        Raises
        ------
        MailboxClosed
            The mailbox is closed, or was closed while the put waited for room;
            nothing was delivered.
        MailboxFull
            The mailbox is full and its policy is ``"reject"``.
        TimeoutError
            The mailbox stayed full for ``timeout`` seconds.
        ValueError
            The message's priority is not an int in 0..255.
        """
        priority = _priority_of(message)
        if self._closed is not None:
            raise self._closed_error()
        if self._full():
            if self.overflow == "reject":
                raise MailboxFull(f"mailbox `{self.name}` is full ({self.capacity} messages)")
            if self.overflow == "drop_oldest":
                self._drop_oldest()
            else:
                await self._wait_for_room(timeout)
        heapq.heappush(self._heap, (-priority, next(self._order), message))
        self._getters.unpark()

    async def _wait_for_room(self, timeout: float | None) -> None:
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._full():
            try:
                await self._putters.park(deadline=deadline)
            except TimeoutError:
                raise TimeoutError(
                    f"mailbox `{self.name}` stayed full ({self.capacity} messages) for {timeout} s"
                ) from None
            if self._closed is not None:
                raise self._closed_error()

    def requeue(self, message: T) -> None:
        """Put ``message`` back to be delivered next within its priority (ignores the capacity)."""
        heapq.heappush(self._heap, (-_priority_of(message), next(self._front), message))
        self._getters.unpark()

    def _drop_oldest(self) -> None:
        oldest = min(range(len(self._heap)), key=lambda i: self._heap[i][1])
        _, _, message = self._heap[oldest]
        self._heap[oldest] = self._heap[-1]
        self._heap.pop()
        heapq.heapify(self._heap)
        self.dead_letters.append(message)

    async def get(self, timeout: float | None = None) -> T:
        """The next message by priority, waiting at most ``timeout`` seconds.

        Raises
        ------
        MailboxClosed
            The mailbox is closed and empty (messages put before ``close`` are
            still returned).
        TimeoutError
            Nothing arrived within ``timeout``.
        """
        if not self._heap:
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while not self._heap:
                if self._closed is not None:
                    raise self._closed_error()
                try:
                    await self._getters.park(deadline=deadline)
                except TimeoutError:
                    raise TimeoutError(
                        f"mailbox `{self.name}` stayed empty for {timeout} s"
                    ) from None
        return self.get_nowait()

    def queued(self) -> list[T]:
        """The messages waiting, in delivery order (a snapshot)."""
        return [message for _, _, message in sorted(self._heap, key=lambda e: e[:2])]

    def get_nowait(self) -> T:
        """The next message by priority; raises ``IndexError`` when empty."""
        _, _, message = heapq.heappop(self._heap)
        self._delivered += 1
        self._putters.unpark()
        return message

    @property
    def closed(self) -> bool:
        """True once ``close`` was called (and until ``reopen``)."""
        return self._closed is not None

    def close(self, reason: str | None = None) -> None:
        """Accept no more messages, and wake every blocked call with `MailboxClosed`.

        ``reason`` ends the error's text (the owner says what happened, e.g.
        "actor `a` is terminated"). Messages already in the mailbox stay: ``get``
        returns them, then fails. Closing a closed mailbox changes nothing.
        """
        if self._closed is not None:
            return
        self._closed = reason or ""
        self._putters.unpark_all()
        self._getters.unpark_all()

    def reopen(self) -> None:
        """Accept messages again after ``close`` (a new owner took the mailbox over);
        the messages still in it are kept."""
        self._closed = None

    def _closed_error(self) -> MailboxClosed:
        why = f": {self._closed}" if self._closed else ""
        return MailboxClosed(f"mailbox `{self.name}` is closed{why}", channel=self)

    def statistics(self) -> MailboxStatistics:
        """Size, capacity, messages delivered, dead letters and blocked calls."""
        return MailboxStatistics(
            name=self.name,
            size=len(self._heap),
            capacity=self.capacity,
            delivered=self._delivered,
            dead_letters=len(self.dead_letters),
            overflow=self.overflow,
            waiting_senders=len(self._putters),
            waiting_receivers=len(self._getters),
            closed=self._closed is not None,
        )


def _priority_of(message: Any) -> int:
    priority = getattr(message, "priority", 128)
    if type(priority) is not int or not 0 <= priority <= 255:
        raise ValueError(f"message priority must be an int in 0..255, got {priority!r}")
    return priority
