from __future__ import annotations

import asyncio

import pytest
from waiting import until

from channels import Channel, ChannelAborted, Message, recv_any


async def test_recv_any_returns_the_ready_channel() -> None:
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    await b.send(None, Message(3, 3))
    index, msg = await asyncio.wait_for(recv_any(None, [a, b]), 1)
    assert index == 1 and msg is not None and msg.payload == 3


async def test_recv_any_waits_for_the_first_to_become_ready() -> None:
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    waiting = asyncio.create_task(recv_any(None, [a, b]))
    await until(lambda: a.statistics().waiting_receivers == b.statistics().waiting_receivers == 1)
    assert not waiting.done()
    await a.send(None, Message(1, 1))
    index, msg = await asyncio.wait_for(waiting, 1)
    assert index == 0 and msg is not None
    # The waiter it left on `b` is gone: a later message on b is not lost.
    await b.send(None, Message(2, 2))
    assert (await b.recv(None)).payload == 2  # type: ignore[union-attr]


async def test_recv_any_reports_end_of_stream_per_channel() -> None:
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    await a.drain(None)
    index, msg = await recv_any(None, [a, b])
    assert (index, msg) == (0, None)


async def test_recv_any_merges_all_messages() -> None:
    inputs = [Channel[int](capacity=2) for _ in range(3)]

    async def produce(k: int) -> None:
        for i in range(20):
            await inputs[k].send(None, Message(k * 100 + i, k))
        await inputs[k].drain(None)

    async def merge() -> list[int]:
        got, open_ = [], list(inputs)
        while open_:
            index, msg = await recv_any(None, open_)
            if msg is None:
                open_.pop(index)
            else:
                got.append(msg.sequence_number)
        return got

    async with asyncio.timeout(5):
        *_, got = await asyncio.gather(*(produce(k) for k in range(3)), merge())
    assert got is not None
    assert sorted(got) == sorted(k * 100 + i for k in range(3) for i in range(20))


async def test_recv_any_raises_on_aborted_channel() -> None:
    a: Channel[int] = Channel()
    a.abort(RuntimeError("gone"))
    with pytest.raises(ChannelAborted):
        await recv_any(None, [a])


async def test_recv_any_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        await recv_any(None, [])


async def test_cancelled_recv_any_leaves_no_waiter_behind() -> None:
    a: Channel[int] = Channel()
    waiting = asyncio.create_task(recv_any(None, [a]))
    await until(lambda: a.statistics().waiting_receivers == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert a.statistics().waiting_receivers == 0


async def test_recv_any_with_a_timeout_raises_timeout_error_and_leaves_no_waiter() -> None:
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    with pytest.raises(TimeoutError):
        await recv_any(None, [a, b], timeout=0.01)
    assert a.statistics().waiting_receivers == b.statistics().waiting_receivers == 0
    await b.send(None, Message(5, 5))
    index, msg = await recv_any(None, [a, b], timeout=0)
    assert index == 1 and msg is not None and msg.payload == 5


async def test_recv_any_passes_on_a_wake_up_it_does_not_use() -> None:
    """The receiver parked after it on the channel that woke it gets that message."""
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    either = asyncio.create_task(recv_any(None, [a, b]))
    async with asyncio.timeout(5):
        while b.statistics().waiting_receivers < 1:  # noqa: ASYNC110 (a state, once per turn)
            await asyncio.sleep(0)
    only_b = asyncio.create_task(b.recv(None))
    async with asyncio.timeout(5):
        while b.statistics().waiting_receivers < 2:  # noqa: ASYNC110
            await asyncio.sleep(0)
    await b.send(None, Message(2, 2))  # wakes `either`, parked first on `b`...
    await a.send(None, Message(1, 1))  # ...which then takes from `a`, the first ready
    index, msg = await asyncio.wait_for(either, 5)
    assert index == 0 and msg is not None and msg.payload == 1
    got = await asyncio.wait_for(only_b, 5)  # woken by the wake-up `either` passed on
    assert got is not None and got.payload == 2
