"""ParkingLot, cell by cell: park, unpark, cancel, deadline, repark, park_any, threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.lowlevel import Parked, ParkingLot, ParkingLotStatistics

pytestmark = pytest.mark.timeout(30)


async def parked(lot: ParkingLot, count: int) -> None:
    """Return once ``count`` tasks are parked in ``lot``.

    A lot has no event to say so; each turn of the loop lets the tasks run one step.
    """
    async with asyncio.timeout(5):
        while len(lot) != count:  # noqa: ASYNC110 (a state, looked at once per loop turn)
            await asyncio.sleep(0)


def park_task(lot: ParkingLot, log: list[str], name: str) -> asyncio.Task[None]:
    async def waiter() -> None:
        await lot.park()
        log.append(name)

    return asyncio.create_task(waiter(), name=name)


# ----------------------------------------------------------------------------- park / unpark
async def test_unpark_wakes_the_task_parked_longest_first() -> None:
    lot = ParkingLot()
    log: list[str] = []
    tasks = [park_task(lot, log, name) for name in "abc"]
    await parked(lot, 3)
    assert lot.unpark() == 1
    await tasks[0]
    assert log == ["a"] and len(lot) == 2
    assert lot.unpark(2) == 2
    await asyncio.gather(*tasks)
    assert log == ["a", "b", "c"] and len(lot) == 0


async def test_unpark_with_nobody_parked_wakes_nobody() -> None:
    lot = ParkingLot()
    assert lot.unpark() == 0 and lot.unpark_all() == 0
    assert not lot


async def test_unpark_all_wakes_every_task() -> None:
    lot = ParkingLot()
    log: list[str] = []
    tasks = [park_task(lot, log, name) for name in "abc"]
    await parked(lot, 3)
    assert lot.unpark_all() == 3
    await asyncio.gather(*tasks)
    assert log == ["a", "b", "c"]


async def test_parked_shows_tasks_and_deadlines_in_wake_order() -> None:
    lot = ParkingLot()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3600
    first = asyncio.create_task(lot.park())
    await parked(lot, 1)
    second = asyncio.create_task(lot.park(deadline=deadline))
    await parked(lot, 2)
    assert lot.parked() == [Parked(first, None), Parked(second, deadline)]
    assert lot.statistics() == ParkingLotStatistics(tasks_waiting=2)
    lot.unpark_all()
    await asyncio.gather(first, second)
    assert lot.parked() == [] and lot.statistics().tasks_waiting == 0


# ----------------------------------------------------------------------------- cancellation
async def test_a_cancelled_task_leaves_the_lot_and_the_next_unpark_wakes_another() -> None:
    lot = ParkingLot()
    log: list[str] = []
    a, b = park_task(lot, log, "a"), park_task(lot, log, "b")
    await parked(lot, 2)
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    assert len(lot) == 1
    assert lot.unpark() == 1
    await b
    assert log == ["b"]


async def test_a_task_woken_then_cancelled_passes_its_wake_up_on() -> None:
    """No lost wake-up: the wake-up goes to the next task parked in the lot."""
    lot = ParkingLot()
    log: list[str] = []
    a, b = park_task(lot, log, "a"), park_task(lot, log, "b")
    await parked(lot, 2)
    assert lot.unpark() == 1  # wakes `a`...
    a.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await a
    await asyncio.wait_for(b, 5)  # `b` got the wake-up `a` could not use
    assert log == ["b"]


async def test_a_task_woken_through_park_any_then_cancelled_passes_the_wake_up_on() -> None:
    one, other = ParkingLot(), ParkingLot()
    log: list[str] = []
    a = asyncio.create_task(ParkingLot.park_any([one, other]))
    await parked(one, 1)
    b = park_task(one, log, "b")
    await parked(one, 2)
    one.unpark()
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    await asyncio.wait_for(b, 5)
    assert log == ["b"] and not other and len(one) == 0


# ----------------------------------------------------------------------------- deadlines
async def test_park_with_a_deadline_raises_timeout_error_and_leaves_the_lot() -> None:
    lot = ParkingLot()
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await lot.park(deadline=loop.time() + 0.01)
    assert not lot and lot.unpark() == 0


async def test_park_with_a_deadline_already_past_raises_at_once() -> None:
    lot = ParkingLot()
    with pytest.raises(TimeoutError):
        await lot.park(deadline=asyncio.get_running_loop().time() - 1)
    assert not lot


async def test_a_wait_that_timed_out_does_not_take_a_wake_up() -> None:
    lot = ParkingLot()
    log: list[str] = []
    loop = asyncio.get_running_loop()
    timed = asyncio.create_task(lot.park(deadline=loop.time() + 0.01))
    await parked(lot, 1)
    b = park_task(lot, log, "b")
    await parked(lot, 2)
    with pytest.raises(TimeoutError):
        await timed
    assert lot.unpark() == 1
    await asyncio.wait_for(b, 5)
    assert log == ["b"]


async def test_a_woken_task_returns_even_if_its_deadline_passes_before_it_runs() -> None:
    lot = ParkingLot()
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(lot.park(deadline=loop.time() + 3600))
    await parked(lot, 1)
    lot.unpark()
    await asyncio.wait_for(task, 5)  # no TimeoutError: it was woken


# ----------------------------------------------------------------------------- park_any
async def test_park_any_returns_the_lot_that_woke_the_task_and_leaves_the_others() -> None:
    one, other = ParkingLot(), ParkingLot()
    task = asyncio.create_task(ParkingLot.park_any([one, other]))
    await parked(other, 1)
    assert len(one) == 1
    assert other.unpark() == 1
    assert await asyncio.wait_for(task, 5) is other
    assert not one and not other


async def test_park_any_woken_by_one_lot_is_not_woken_again_by_another() -> None:
    """The second lot's wake-up goes to the task parked there next, not to the woken one."""
    one, other = ParkingLot(), ParkingLot()
    log: list[str] = []
    task = asyncio.create_task(ParkingLot.park_any([one, other]))
    await parked(other, 1)
    b = park_task(other, log, "b")
    await parked(other, 2)
    assert one.unpark() == 1
    assert other.unpark() == 1  # skips the task `one` woke: wakes `b`
    assert await asyncio.wait_for(task, 5) is one
    await asyncio.wait_for(b, 5)
    assert log == ["b"]


async def test_park_any_with_a_deadline_leaves_every_lot() -> None:
    one, other = ParkingLot(), ParkingLot()
    with pytest.raises(TimeoutError):
        await ParkingLot.park_any([one, other], deadline=asyncio.get_running_loop().time() + 0.01)
    assert not one and not other


async def test_park_any_refuses_no_lots() -> None:
    with pytest.raises(ValueError, match="`lots` is empty"):
        await ParkingLot.park_any([])


# ----------------------------------------------------------------------------- repark
async def test_repark_moves_tasks_without_waking_them() -> None:
    old, new = ParkingLot(), ParkingLot()
    log: list[str] = []
    tasks = [park_task(old, log, name) for name in "abc"]
    await parked(old, 3)
    assert old.repark(new) == 1
    assert len(old) == 2 and len(new) == 1
    assert old.repark_all(new) == 2
    assert not old and len(new) == 3
    assert old.unpark_all() == 0  # they are `new`'s now
    assert log == []
    assert new.unpark_all() == 3
    await asyncio.gather(*tasks)
    assert log == ["a", "b", "c"]


async def test_a_reparked_task_woken_then_cancelled_passes_the_wake_up_on_in_its_new_lot() -> None:
    old, new = ParkingLot(), ParkingLot()
    log: list[str] = []
    a = park_task(old, log, "a")
    await parked(old, 1)
    old.repark(new)
    b = park_task(new, log, "b")
    await parked(new, 2)
    new.unpark()
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    await asyncio.wait_for(b, 5)
    assert log == ["b"]


# ----------------------------------------------------------------------------- threads
async def test_a_threadsafe_lot_is_unparked_from_another_thread() -> None:
    lot = ParkingLot(threadsafe=True)
    log: list[str] = []
    task = park_task(lot, log, "a")
    await parked(lot, 1)
    woken: list[int] = []
    thread = threading.Thread(target=lambda: woken.append(lot.unpark()))
    thread.start()
    await asyncio.wait_for(task, 5)
    thread.join()
    assert woken == [1] and log == ["a"]


# ----------------------------------------------------------------------------- interleavings
Step = tuple[str, int]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("produce"), st.integers(1, 3)),
        st.tuples(st.just("produce and cancel the woken"), st.integers(1, 3)),
        st.tuples(st.just("start"), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("run"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=20,
)


@given(steps)
def test_no_wake_up_is_lost_whatever_the_interleaving(script: list[Step]) -> None:
    """Consumers take items, parking while there are none; a producer adds items and
    unparks one consumer per item; consumers are cancelled at any point, also just after
    being woken. Once the tasks settle, no consumer is parked while items wait."""

    async def main() -> None:
        lot = ParkingLot()
        items = [0]
        taken = [0]
        produced = 0
        consumers: list[asyncio.Task[None]] = []

        async def consume() -> None:
            while True:
                while not items[0]:
                    await lot.park()
                items[0] -= 1
                taken[0] += 1

        consumers += [asyncio.create_task(consume()) for _ in range(3)]
        await parked(lot, 3)
        for op, arg in script:
            if op == "produce":
                for _ in range(arg):
                    items[0] += 1
                    produced += 1
                    lot.unpark()
            elif op == "produce and cancel the woken":
                woken = [parked.task for parked in lot.parked()[:arg]]
                for _ in range(arg):
                    items[0] += 1
                    produced += 1
                    lot.unpark()
                for task in woken:
                    assert task is not None
                    task.cancel()  # before it runs: its wake-up must go on
            elif op == "start":
                consumers.append(asyncio.create_task(consume()))
            elif op == "cancel" and consumers:
                consumers[arg % len(consumers)].cancel()
            else:
                for _ in range(arg):
                    await asyncio.sleep(0)
        async with asyncio.timeout(5):  # settle: every consumer still alive is parked
            while len(lot) != sum(not task.done() for task in consumers):  # noqa: ASYNC110
                await asyncio.sleep(0)
        live = sum(not task.done() for task in consumers)
        assert taken[0] + items[0] == produced
        assert not (live and items[0]), f"{live} consumers parked while {items[0]} items wait"
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

    asyncio.run(main())
