"""ParkingLot: where tasks wait until another task wakes them.

The one wait/cancel loop of the distribution (trio's ``lowlevel.ParkingLot``):
channels, mailboxes and the runtime's inboxes park their blocked calls here
instead of each keeping futures of its own. A parked task is woken by
``unpark``; it then looks again at what it waits for and parks again if it has
to. The rules that make that safe are kept here once:

- **No lost wake-up.** A task woken and then cancelled (or timed out, or woken
  by another lot of ``park_any``) before it ran passes its wake-up on to the
  next task parked in the lot that woke it.
- **Deadlines.** ``park(deadline=...)`` raises `TimeoutError` once the event
  loop's clock reaches ``deadline``: a timed wait is one call, and the lot shows
  the deadline (`Parked`), so a runtime knows such a wait ends by itself.
- **Other threads.** A lot made with ``threadsafe=True`` may be unparked from a
  thread other than the parked task's event loop (the wake-up goes through that
  loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from asyncio import AbstractEventLoop, CancelledError, get_running_loop
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

__all__ = ["Parked", "ParkingLot", "ParkingLotStatistics"]


@dataclass(frozen=True, slots=True)
class Parked:
    """One task parked in a lot (see :meth:`ParkingLot.parked`).

    Attributes
    ----------
    task
        The parked task (None for a coroutine driven outside a task).
    deadline
        When its wait ends by itself, in the event loop's clock (``loop.time()``);
        None when only a wake-up ends it.
    """

    task: asyncio.Task[Any] | None
    deadline: float | None


@dataclass(frozen=True, slots=True)
class ParkingLotStatistics:
    """A snapshot of one lot.

    Attributes
    ----------
    tasks_waiting
        Tasks parked in it and not woken yet.
    """

    tasks_waiting: int


_FUTURE, _TASK, _DEADLINE, _LOTS = range(4)
"""The fields of a lot's entry for one parked task, a plain list (no record object to
build per wait): the future it awaits (resolved with the lot that woke it, or None when
its deadline passed), its task, its deadline, and the lots it is in (a tuple that
``repark`` replaces)."""

_Entry = list[Any]


# The task running on a loop, looked up once per wait (for `ParkingLot.parked`). On
# CPython 3.11 ``asyncio.current_task`` is Python code that reads this dict, a call that
# cost a channel about a twentieth of a hop; from 3.12 on it is C code.
_running_task: Callable[[AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info < (3, 12):
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    _running_task = _current_tasks.get
else:
    _running_task = asyncio.current_task


def _expire(future: asyncio.Future[ParkingLot | None]) -> None:
    """A waiter's deadline passed: wake it with None, unless something woke it first."""
    if not future.done():
        future.set_result(None)


class ParkingLot:
    """Tasks waiting, first in first out, until another task wakes them.

    Parameters
    ----------
    threadsafe
        Allow ``unpark`` and ``unpark_all`` from a thread other than the parked
        tasks' event loops.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     lot, ready = ParkingLot(), []
    ...     async def consumer():
    ...         while not ready:  # look, and park until woken to look again
    ...             await lot.park()
    ...         return ready.pop()
    ...     task = asyncio.create_task(consumer())
    ...     await asyncio.sleep(0)  # the consumer parks
    ...     ready.append("item")
    ...     woken = lot.unpark()
    ...     return woken, await task
    >>> asyncio.run(main())
    (1, 'item')
    """

    __slots__ = ("_threadsafe", "_waiters")

    def __init__(self, *, threadsafe: bool = False) -> None:
        self._waiters: deque[_Entry] = deque()
        self._threadsafe = threadsafe

    def __len__(self) -> int:
        """Tasks parked here and not woken yet."""
        return sum(not entry[_FUTURE].done() for entry in self._waiters)

    def __bool__(self) -> bool:
        """Whether a task may be parked here (cheap: true for a moment after the last one
        was woken through another lot of ``park_any``)."""
        return bool(self._waiters)

    def __repr__(self) -> str:
        return f"<ParkingLot {len(self)} parked>"

    # ------------------------------------------------------------------ parking
    async def park(self, *, deadline: float | None = None) -> None:
        """Wait until woken by :meth:`unpark` (or :meth:`unpark_all`).

        Parameters
        ----------
        deadline
            Give up at this time of the running loop's clock (``loop.time()``);
            None waits as long as it takes.

        Raises
        ------
        TimeoutError
            ``deadline`` passed first (at once if it already had).
        asyncio.CancelledError
            The task was cancelled; a wake-up it had already got goes to the next
            task parked here.
        """
        if deadline is not None:
            await self._wait((self,), deadline)
            return
        # The common case, kept short: one lot, no deadline (what `_enter` does).
        loop = get_running_loop()
        entry: _Entry = [loop.create_future(), _running_task(loop), None, (self,)]
        self._waiters.append(entry)
        try:
            await entry[_FUTURE]
        except CancelledError:
            _abandon(entry)
            raise

    @classmethod
    async def park_any(
        cls, lots: Sequence[ParkingLot], *, deadline: float | None = None
    ) -> ParkingLot:
        """Wait in every one of ``lots`` at once, until one of them wakes the task.

        Returns the lot that woke it. A task that does not use that wake-up (it
        finds what it waits for elsewhere) should pass it on with
        ``lot.unpark()``. ``deadline`` and the errors are those of :meth:`park`.

        Raises
        ------
        ValueError
            ``lots`` is empty.
        """
        if not lots:
            raise ValueError("ParkingLot.park_any: `lots` is empty; nothing could wake the task")
        return await cls._wait(tuple(lots), deadline)

    @staticmethod
    async def _wait(lots: tuple[ParkingLot, ...], deadline: float | None) -> ParkingLot:
        loop = get_running_loop()
        timer = None
        if deadline is not None and deadline <= loop.time():
            raise TimeoutError
        future: asyncio.Future[ParkingLot | None] = loop.create_future()
        entry: _Entry = [future, _running_task(loop), deadline, lots]
        for lot in lots:
            _entries(lot).append(entry)
        if deadline is not None:
            timer = loop.call_at(deadline, _expire, future)
        try:
            woken_by = await future
        except CancelledError:
            _abandon(entry)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if woken_by is None:
            _leave(entry, None)
            raise TimeoutError
        if len(entry[_LOTS]) > 1:
            _leave(entry, woken_by)
        return woken_by

    # ------------------------------------------------------------------ waking
    def unpark(self, count: int = 1) -> int:
        """Wake the ``count`` tasks parked longest; returns how many were woken."""
        waiters = self._waiters
        woken = 0
        threadsafe = self._threadsafe
        while waiters and woken < count:
            future = waiters.popleft()[_FUTURE]
            if future.done():
                continue  # timed out, cancelled, or woken through another lot
            if threadsafe:
                woken += self._wake_from_anywhere(future)
            else:
                future.set_result(self)
                woken += 1
        return woken

    def unpark_all(self) -> int:
        """Wake every task parked here; returns how many were woken."""
        waiters = self._waiters
        woken = 0
        while waiters:
            woken += self.unpark()
        return woken

    def repark(self, new_lot: ParkingLot, count: int = 1) -> int:
        """Move the ``count`` tasks parked longest here to ``new_lot`` without waking them
        (they are woken by ``new_lot`` from then on); returns how many moved.

        A task parked in several lots with :meth:`park_any` leaves this one for
        ``new_lot`` and stays in the others.
        """
        waiters = self._waiters
        moved = 0
        while waiters and moved < count:
            entry = waiters.popleft()
            if not entry[_FUTURE].done():
                entry[_LOTS] = (*(lot for lot in entry[_LOTS] if lot is not self), new_lot)
                new_lot._waiters.append(entry)
                moved += 1
        return moved

    def repark_all(self, new_lot: ParkingLot) -> int:
        """Move every task parked here to ``new_lot`` without waking them."""
        return self.repark(new_lot, len(self._waiters))

    def _wake_from_anywhere(self, future: asyncio.Future[ParkingLot | None]) -> bool:
        """Wake the task awaiting ``future`` (not done), from its loop or another thread."""
        loop = future.get_loop()
        try:
            running = get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            future.set_result(self)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve, future)
        else:
            return False
        return True

    def _resolve(self, future: asyncio.Future[ParkingLot | None]) -> None:
        """The end of a wake-up from another thread, on the parked task's loop."""
        if future.done():
            self.unpark()  # cancelled or timed out meanwhile: the wake-up goes on
        else:
            future.set_result(self)

    # ------------------------------------------------------------------ introspection
    def parked(self) -> list[Parked]:
        """The tasks parked here now, in the order they will be woken."""
        return [
            Parked(entry[_TASK], entry[_DEADLINE])
            for entry in self._waiters
            if not entry[_FUTURE].done()
        ]

    def statistics(self) -> ParkingLotStatistics:
        """How many tasks are parked here."""
        return ParkingLotStatistics(tasks_waiting=len(self))


# ---------------------------------------------------------------------- within the package
# A channel's send and recv are the hottest waits: they check for a parked task with a
# length check instead of a method call, and wait without the coroutine of `park` (its
# common case, taken apart: `_enter`, then await the entry's future in the caller's own
# frame, and `_abandon` if that await is interrupted). The rules stay here.

_entries: Callable[[ParkingLot], deque[_Entry]] = attrgetter("_waiters")
"""The entries of a lot. Like ``bool(lot)``, the deque is not empty for a moment after
the last task parked in it was woken through another lot."""


def _enter(lot: ParkingLot, entries: deque[_Entry]) -> _Entry:
    """Park the running task in ``lot`` (whose entries are ``entries``) without waiting:
    the caller awaits ``entry[_FUTURE]`` and calls `_abandon` if that is interrupted."""
    loop = get_running_loop()
    entry: _Entry = [loop.create_future(), _running_task(loop), None, (lot,)]
    entries.append(entry)
    return entry


def _abandon(entry: _Entry) -> None:
    """A parked task's wait was interrupted (it was cancelled): it leaves every lot it is
    in, and a wake-up it had already got goes to the next task parked in the lot that
    gave it."""
    _leave(entry, None)
    future = entry[_FUTURE]
    if future.done() and not future.cancelled() and (waker := future.result()) is not None:
        waker.unpark()


def _leave(entry: _Entry, woken_by: ParkingLot | None) -> None:
    """Take ``entry`` out of the lots it is in, but ``woken_by`` (which took it out)."""
    for lot in entry[_LOTS]:
        if lot is not woken_by:
            with contextlib.suppress(ValueError):  # already out: the lot that woke it
                _entries(lot).remove(entry)
