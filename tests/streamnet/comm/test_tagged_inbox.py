"""TaggedInbox: what every communicator received, by slot, and who waits for it."""

from __future__ import annotations

import asyncio
import threading

import pytest
from waiting import until

from streamnet.comm._tagged_inbox import TaggedInbox, settle

pytestmark = pytest.mark.timeout(10)


async def test_items_come_out_per_slot_in_arrival_order() -> None:
    inbox = TaggedInbox()
    for i in range(3):
        inbox.put("a", i)
    inbox.put("b", "x")
    assert [await inbox.get("a", lambda: None) for _ in range(3)] == [0, 1, 2]
    assert await inbox.get("b", lambda: None) == "x"
    assert inbox.slots() == []


async def test_a_cancelled_receiver_passes_its_wake_up_on() -> None:
    inbox = TaggedInbox()
    first = asyncio.ensure_future(inbox.get("s", lambda: None))
    second = asyncio.ensure_future(inbox.get("s", lambda: None))
    await until(lambda: inbox.waiting() == 2)
    inbox.put("s", "item")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs: `second` must get the item
    assert await asyncio.wait_for(second, 2) == "item"


async def test_wake_makes_receivers_run_their_check_again() -> None:
    inbox = TaggedInbox()
    failed = False

    def check() -> None:
        if failed:
            raise RuntimeError("peer failed")

    waiting = asyncio.ensure_future(inbox.get(("e1", "t"), check))
    other = asyncio.ensure_future(inbox.get(("e2", "t"), check))
    await until(lambda: inbox.waiting() == 2)
    failed = True
    inbox.wake(lambda slot: slot[0] == "e1")
    with pytest.raises(RuntimeError, match="peer failed"):
        await asyncio.wait_for(waiting, 2)
    assert inbox.waiting() == 1 and not other.done()  # a slot the predicate refused sleeps on
    other.cancel()


async def test_discard_drops_only_the_chosen_slots() -> None:
    inbox = TaggedInbox()
    inbox.put(("e1", 1), "old")
    inbox.put(("e2", 1), "new")
    inbox.discard(lambda slot: slot[0] == "e1")
    assert inbox.slots() == [("e2", 1)]


async def test_settle_resolves_a_future_of_another_threads_loop() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    thread = threading.Thread(target=settle, args=(future, ValueError("from afar")))
    thread.start()
    thread.join()
    with pytest.raises(ValueError, match="from afar"):
        await asyncio.wait_for(future, 2)
