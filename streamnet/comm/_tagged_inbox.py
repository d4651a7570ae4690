"""TaggedInbox: the received messages of a communicator, by slot, and who waits for them.

Every communicator (in-process, MPI, Ray) files what arrives under a *slot*
(its source and tag, plus whatever else tells exchanges apart) and hands it to
the receiver waiting on that slot, in arrival order. This is that store.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from channels.lowlevel import ParkingLot

__all__ = ["TaggedInbox", "settle"]


class TaggedInbox:
    """Messages by slot, in arrival order, with the receivers waiting for each slot.

    A receiver may wait on an event loop other than the one that delivers (a
    network run on a helper thread); it is woken thread-safely.

    Examples
    --------
    >>> import asyncio
    >>> inbox = TaggedInbox()
    >>> inbox.put((1, "tag"), "hello")
    >>> asyncio.run(inbox.get((1, "tag"), lambda: None))
    'hello'
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, deque[Any]] = {}
        self._lots: dict[Hashable, ParkingLot] = {}  # the receivers waiting, per slot

    def put(self, slot: Hashable, item: Any) -> None:
        """File ``item`` under ``slot`` and wake the first receiver waiting for it."""
        self._items.setdefault(slot, deque()).append(item)
        lot = self._lots.get(slot)
        if lot is not None:
            lot.unpark()

    async def get(self, slot: Hashable, check: Callable[[], None]) -> Any:
        """The next item of ``slot``, waiting for it; ``check()`` runs before each wait
        and raises to end it (a failed rank), so :meth:`wake` makes receivers look again."""
        while True:
            items = self._items.get(slot)
            if items:
                item = items.popleft()
                if not items:
                    del self._items[slot]
                return item
            check()
            lot = self._lots.get(slot)
            if lot is None:
                lot = self._lots[slot] = ParkingLot(threadsafe=True)
            try:
                await lot.park()
            finally:
                if not lot and self._lots.get(slot) is lot:
                    del self._lots[slot]  # nobody else waits on the slot

    def wake(self, where: Callable[[Any], bool] = lambda slot: True) -> None:
        """Wake every receiver waiting on a slot ``where`` accepts, to run its check again."""
        for slot, lot in list(self._lots.items()):
            if where(slot):
                lot.unpark_all()

    def discard(self, where: Callable[[Any], bool]) -> None:
        """Drop the items of every slot ``where`` accepts (nobody will ask for them)."""
        for slot in [s for s in self._items if where(s)]:
            del self._items[slot]

    def waiting(self) -> int:
        """How many receivers wait, on any slot."""
        return sum(len(lot) for lot in self._lots.values())

    def slots(self) -> Iterable[Any]:
        """The slots holding items now."""
        return list(self._items)


def settle(future: asyncio.Future[None], outcome: BaseException | None = None) -> None:
    """Resolve ``future`` (with ``outcome`` as its exception, if given) unless it is done,
    from any thread: on another loop's future this goes through that loop."""

    def resolve() -> None:
        if future.done():
            return
        if outcome is None:
            future.set_result(None)
        else:
            future.set_exception(outcome)

    loop = future.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        resolve()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(resolve)
