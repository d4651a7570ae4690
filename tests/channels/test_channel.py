"""Channel semantics, cell by cell: open / drained / shut down / aborted, full / empty, cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from waiting import until

from channels import (
    Channel,
    ChannelAborted,
    ChannelBroken,
    ChannelClosed,
    Message,
    TrafficCounter,
    observe,
)


class Sized:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


async def test_send_then_recv_preserves_order() -> None:
    ch: Channel[int] = Channel(capacity=3)
    for i in range(3):
        await ch.send(None, Message(i, i * 10))
    got = [(await ch.recv(None)) for _ in range(3)]
    assert [(m.sequence_number, m.payload) for m in got if m] == [(0, 0), (1, 10), (2, 20)]


async def test_send_blocks_while_full_backpressure() -> None:
    ch: Channel[int] = Channel(capacity=2)
    await ch.send(None, Message(0, 0))
    await ch.send(None, Message(1, 1))
    blocked = asyncio.create_task(ch.send(None, Message(2, 2)))
    await until(lambda: ch.statistics().waiting_senders == 1)
    assert not blocked.done()
    assert (await ch.recv(None)).sequence_number == 0  # type: ignore[union-attr]
    await asyncio.wait_for(blocked, 1)
    assert len(ch) == 2


async def test_byte_capacity_blocks_until_room() -> None:
    ch: Channel[Sized] = Channel(capacity=10, max_bytes=100)
    await ch.send(None, Message(0, Sized(60)))
    blocked = asyncio.create_task(ch.send(None, Message(1, Sized(60))))
    await until(lambda: ch.statistics().waiting_senders == 1)
    assert not blocked.done()
    await ch.recv(None)
    await asyncio.wait_for(blocked, 1)
    assert ch.statistics().buffered_bytes == 60


async def test_oversized_message_passes_when_buffer_empty() -> None:
    ch: Channel[Sized] = Channel(capacity=2, max_bytes=10)
    await asyncio.wait_for(ch.send(None, Message(0, Sized(1000))), 1)
    assert ch.statistics().peak_buffered_bytes == 1000


async def test_recv_blocks_while_empty_then_gets_message() -> None:
    ch: Channel[int] = Channel()
    waiting = asyncio.create_task(ch.recv(None))
    await until(lambda: ch.statistics().waiting_receivers == 1)
    assert not waiting.done()
    await ch.send(None, Message(5, 1))
    msg = await asyncio.wait_for(waiting, 1)
    assert msg is not None and msg.sequence_number == 5


async def test_drain_delivers_everything_sent_before_then_none() -> None:
    ch: Channel[int] = Channel(capacity=4)
    for i in range(4):
        await ch.send(None, Message(i, i))
    await ch.drain(None)
    assert ch.state == "drained"
    assert [m.payload async for m in ch] == [0, 1, 2, 3]
    assert await ch.recv(None) is None
    assert await ch.recv(None) is None


async def test_drain_wakes_blocked_receiver_with_none() -> None:
    ch: Channel[int] = Channel()
    waiting = asyncio.create_task(ch.recv(None))
    await until(lambda: ch.statistics().waiting_receivers == 1)
    await ch.drain(None)
    assert await asyncio.wait_for(waiting, 1) is None


async def test_send_after_drain_raises_channel_closed() -> None:
    ch: Channel[int] = Channel(name="numbers")
    await ch.drain(None)
    with pytest.raises(ChannelClosed, match="numbers.*drained") as info:
        await ch.send(None, Message(0, 0))
    assert not isinstance(info.value, ChannelBroken | ChannelAborted)
    assert info.value.channel is ch


async def test_drain_wakes_blocked_sender_with_channel_closed() -> None:
    ch: Channel[int] = Channel(capacity=1, producers=2)
    await ch.send(None, Message(0, 0))
    blocked = asyncio.create_task(ch.send(None, Message(1, 1)))
    await until(lambda: ch.statistics().waiting_senders == 1)
    await ch.drain(None)
    await ch.drain(None)
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(blocked, 1)


async def test_shutdown_mid_stream_drops_buffer_and_ends_stream() -> None:
    ch: Channel[int] = Channel(capacity=4)
    await ch.send(None, Message(0, 0))
    await ch.send(None, Message(1, 1))
    await ch.shutdown(None)
    assert ch.state == "shut down"
    assert len(ch) == 0
    assert await ch.recv(None) is None


async def test_send_after_shutdown_raises_channel_broken() -> None:
    ch: Channel[int] = Channel(name="c")
    await ch.shutdown(None)
    with pytest.raises(ChannelBroken, match="`c`.*shut down"):
        await ch.send(None, Message(0, 0))


async def test_shutdown_wakes_blocked_sender_with_channel_broken() -> None:
    ch: Channel[int] = Channel(capacity=1)
    await ch.send(None, Message(0, 0))
    blocked = asyncio.create_task(ch.send(None, Message(1, 1)))
    await until(lambda: ch.statistics().waiting_senders == 1)
    await ch.shutdown(None)
    with pytest.raises(ChannelBroken):
        await asyncio.wait_for(blocked, 1)


async def test_a_channel_that_discards_after_shutdown_drops_sends_blocked_or_new() -> None:
    ch: Channel[int] = Channel(capacity=1)
    assert ch.discards_after_shutdown is False
    ch.discards_after_shutdown = True
    await ch.send(None, Message(0, 0))
    blocked = asyncio.create_task(ch.send(None, Message(1, 1)))
    await until(lambda: ch.statistics().waiting_senders == 1)
    await ch.shutdown(None)
    await asyncio.wait_for(blocked, 1)  # returns: the message is dropped
    await ch.send(None, Message(2, 2))
    assert await ch.recv(None) is None
    assert ch.statistics().messages_sent == 1  # only the one sent before the shutdown
    ch.abort(ValueError("boom"))  # an aborted channel still refuses sends
    with pytest.raises(ChannelAborted):
        await ch.send(None, Message(3, 3))


async def test_abort_makes_recv_raise_with_cause() -> None:
    ch: Channel[int] = Channel(capacity=4)
    await ch.send(None, Message(0, 0))
    cause = ValueError("boom")
    ch.abort(cause)
    with pytest.raises(ChannelAborted, match="aborted by ValueError: boom") as info:
        await ch.recv(None)
    assert info.value.__cause__ is cause
    assert ch.abort_cause is cause


async def test_abort_wakes_blocked_receiver_and_sender() -> None:
    rx: Channel[int] = Channel()
    tx: Channel[int] = Channel(capacity=1)
    await tx.send(None, Message(0, 0))
    receiving = asyncio.create_task(rx.recv(None))
    sending = asyncio.create_task(tx.send(None, Message(1, 1)))
    await until(lambda: rx.statistics().waiting_receivers == tx.statistics().waiting_senders == 1)
    rx.abort(RuntimeError("x"))
    tx.abort(RuntimeError("y"))
    with pytest.raises(ChannelAborted):
        await asyncio.wait_for(receiving, 1)
    with pytest.raises(ChannelAborted):
        await asyncio.wait_for(sending, 1)


async def test_consumer_can_tell_normal_end_from_abort() -> None:
    normal: Channel[int] = Channel()
    await normal.drain(None)
    assert await normal.recv(None) is None
    assert normal.abort_cause is None
    aborted: Channel[int] = Channel()
    aborted.abort(KeyError("k"))
    with pytest.raises(ChannelAborted):
        await aborted.recv(None)


async def test_abort_overrides_drain_but_not_the_reverse() -> None:
    ch: Channel[int] = Channel()
    await ch.drain(None)
    ch.abort(ValueError("late"))
    assert ch.state == "aborted"
    await ch.shutdown(None)
    assert ch.state == "aborted"


async def test_multi_producer_stream_ends_when_all_drained() -> None:
    ch: Channel[int] = Channel(capacity=8, producers=3)
    for producer in range(3):
        await ch.send(None, Message(producer, producer))
        await ch.drain(None)
        if producer < 2:
            assert ch.state == "open"
    assert ch.state == "drained"
    assert sorted([m.payload async for m in ch]) == [0, 1, 2]


async def test_same_observer_draining_twice_counts_once() -> None:
    ch: Channel[int] = Channel(producers=2)
    token = TrafficCounter()
    with observe(token):
        await ch.drain(None)
        await ch.drain(None)
    assert ch.state == "open"
    with observe(TrafficCounter()):
        await ch.drain(None)
    assert ch.statistics().state == "drained"


async def test_wrong_payload_type_raises_type_error_naming_channel() -> None:
    ch: Channel[int] = Channel(int, name="ints")
    with pytest.raises(TypeError, match="`ints` carries int payloads, got str"):
        await ch.send(None, Message(0, "nope"))  # type: ignore[arg-type]
    assert len(ch) == 0


async def test_subscripted_channel_declares_payload_type() -> None:
    ch = Channel[int](name="sub")
    assert ch.payload_type is int
    with pytest.raises(TypeError, match="`sub` carries int"):
        await ch.send(None, Message(0, 1.5))  # type: ignore[arg-type]


async def test_union_payload_type_accepts_each_member() -> None:
    ch: Channel[int | str] = Channel(int | str, capacity=3)
    await ch.send(None, Message(0, 1))
    await ch.send(None, Message(1, "a"))
    with pytest.raises(TypeError):
        await ch.send(None, Message(2, 1.0))  # type: ignore[arg-type]


async def test_send_requires_a_message() -> None:
    ch: Channel[int] = Channel(name="m")
    with pytest.raises(TypeError, match="`m`: send takes a Message, got int"):
        await ch.send(None, 3)  # type: ignore[arg-type]


async def test_cancelled_send_never_delivers() -> None:
    ch: Channel[int] = Channel(capacity=1)
    await ch.send(None, Message(0, 0))
    blocked = asyncio.create_task(ch.send(None, Message(1, 1)))
    await until(lambda: ch.statistics().waiting_senders == 1)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await ch.drain(None)
    assert [m.sequence_number async for m in ch] == [0]


async def test_cancelled_recv_never_loses_a_message() -> None:
    ch: Channel[int] = Channel()
    first = asyncio.create_task(ch.recv(None))
    second = asyncio.create_task(ch.recv(None))
    await until(lambda: ch.statistics().waiting_receivers == 2)
    await ch.send(None, Message(7, 7))  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs: the wake-up passes on
    msg = await asyncio.wait_for(second, 1)
    assert msg is not None and msg.sequence_number == 7
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_cancelled_sender_passes_room_to_next_sender() -> None:
    ch: Channel[int] = Channel(capacity=1)
    await ch.send(None, Message(0, 0))
    a = asyncio.create_task(ch.send(None, Message(1, 1)))
    b = asyncio.create_task(ch.send(None, Message(2, 2)))
    await until(lambda: ch.statistics().waiting_senders == 2)
    await ch.recv(None)  # wakes `a`
    a.cancel()
    await asyncio.wait_for(b, 1)
    assert (await ch.recv(None)).sequence_number == 2  # type: ignore[union-attr]


# ------------------------------------------------------------------ timeouts
async def test_recv_with_a_timeout_raises_timeout_error_and_loses_nothing() -> None:
    ch: Channel[int] = Channel()
    with pytest.raises(TimeoutError):
        await ch.recv(None, timeout=0.01)
    assert ch.statistics().waiting_receivers == 0
    await ch.send(None, Message(3, 3))
    msg = await ch.recv(None, timeout=0)  # a message waiting: no wait, no timeout
    assert msg is not None and msg.sequence_number == 3
    await ch.drain(None)
    assert await ch.recv(None, timeout=0) is None  # the end of the stream, at once


async def test_send_with_a_timeout_raises_timeout_error_and_delivers_nothing() -> None:
    ch: Channel[int] = Channel(capacity=1)
    await ch.send(None, Message(0, 0), timeout=0)  # room: no wait
    with pytest.raises(TimeoutError):
        await ch.send(None, Message(1, 1), timeout=0.01)
    assert ch.statistics().waiting_senders == 0
    await ch.drain(None)
    assert [m.sequence_number async for m in ch] == [0]


async def test_statistics_count_exactly() -> None:
    ch: Channel[Sized] = Channel(capacity=3, name="s")
    for i in range(3):
        await ch.send(None, Message(i, Sized(10)))
    await ch.recv(None)
    stats = ch.statistics()
    assert (stats.messages_sent, stats.messages_received) == (3, 1)
    assert (stats.buffered_messages, stats.buffered_bytes) == (2, 20)
    assert (stats.peak_buffered_messages, stats.peak_buffered_bytes) == (3, 30)
    assert stats.state == "open" and stats.name == "s"


async def test_async_with_drains_on_success_and_aborts_on_error() -> None:
    ok: Channel[int] = Channel()
    async with ok:
        await ok.send(None, Message(0, 0))
    assert ok.state == "drained"
    bad: Channel[int] = Channel()
    with pytest.raises(ValueError, match="inside"):
        async with bad:
            raise ValueError("inside")
    assert bad.state == "aborted"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 1.5}, "capacity"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"producers": 0}, "producers"),
    ],
)
def test_bad_construction_arguments_name_the_argument(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Channel(**kwargs)


async def test_many_producers_and_consumers_lose_nothing() -> None:
    ch: Channel[int] = Channel(capacity=2, producers=4)
    received: list[int] = []

    async def produce(base: int) -> None:
        for i in range(250):
            await ch.send(None, Message(base + i, base + i))
        await ch.drain(None)

    async def consume() -> None:
        async for msg in ch:
            received.append(msg.payload)

    async with asyncio.timeout(10):
        await asyncio.gather(*(produce(k * 1000) for k in range(4)), consume(), consume())
    assert sorted(received) == sorted(k * 1000 + i for k in range(4) for i in range(250))


async def test_a_byte_tally_keeps_the_bytes_buffered_in_its_channels() -> None:
    from channels.lowlevel import ByteTally

    tally, other = ByteTally(), ByteTally()
    a: Channel[Sized] = Channel(capacity=4)
    b: Channel[Sized] = Channel(capacity=4)
    await a.send(None, Message(0, Sized(7)))  # buffered before it is counted: counted on add
    tally.add(a)
    tally.add(a)  # twice counts once
    tally.add(b)
    assert tally.total == 7
    await a.send(None, Message(1, Sized(5)))
    await b.send(None, Message(0, Sized(100)))
    assert tally.total == 112
    await a.recv(None)
    assert tally.total == 105
    other.add(b)  # moved, with what it holds
    assert (tally.total, other.total) == (5, 100)
    await b.shutdown(None)  # dropped messages leave the tally
    assert other.total == 0
    a.abort(RuntimeError("boom"))
    assert tally.total == 0
    with pytest.raises(TypeError, match="expected a Channel"):
        tally.add("not a channel")  # type: ignore[arg-type]
