"""Mailbox: a put that times out delivers nothing; close wakes every blocked call;
statistics are a frozen snapshot."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from waiting import until

from channels import ChannelClosed, Mailbox, MailboxClosed, MailboxStatistics, OverflowPolicy


async def test_a_put_on_a_full_mailbox_times_out_and_delivers_nothing() -> None:
    box: Mailbox[str] = Mailbox(capacity=1, name="box")
    await box.put("first")
    with pytest.raises(TimeoutError, match=r"mailbox `box` stayed full \(1 messages\) for 0.05 s"):
        await box.put("second", timeout=0.05)
    assert len(box) == 1
    assert await box.get(timeout=1) == "first"
    await box.put("third", timeout=0.05)  # room now: no wait at all
    assert await box.get(timeout=1) == "third"


async def test_a_blocked_put_with_a_timeout_goes_through_when_room_is_made() -> None:
    box: Mailbox[str] = Mailbox(capacity=1)
    await box.put("first")
    put = asyncio.ensure_future(box.put("second", timeout=5))
    await until(lambda: box.statistics().waiting_senders == 1)  # the put starts and blocks
    async with asyncio.timeout(5):
        assert await box.get() == "first"
        await put
        assert await box.get() == "second"


async def test_statistics_is_a_frozen_snapshot() -> None:
    box: Mailbox[str] = Mailbox(capacity=2, overflow="drop_oldest", name="box")
    for text in ("a", "b", "c"):
        await box.put(text)
    await box.get()
    stats = box.statistics()
    assert stats == MailboxStatistics(
        name="box", capacity=2, overflow="drop_oldest", size=1, delivered=1, dead_letters=1,
        waiting_senders=0, waiting_receivers=0, closed=False,
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.size = 0  # type: ignore[misc]


@pytest.mark.timeout(10)
async def test_close_wakes_blocked_puts_and_later_puts_fail_at_once() -> None:
    box: Mailbox[str] = Mailbox(capacity=1, name="a.inbox")
    await box.put("kept")
    blocked = [asyncio.ensure_future(box.put(t)) for t in ("b1", "b2")]
    timed = asyncio.ensure_future(box.put("b3", timeout=30))
    await until(lambda: box.statistics().waiting_senders == 3)
    box.close("actor `a` is terminated")
    message = r"mailbox `a.inbox` is closed: actor `a` is terminated"
    for put in (*blocked, timed):
        with pytest.raises(MailboxClosed, match=message) as info:
            await put
        assert info.value.channel is box
    assert isinstance(info.value, ChannelClosed)
    with pytest.raises(MailboxClosed, match=message):
        await box.put("late")
    stats = box.statistics()
    assert (stats.size, stats.waiting_senders, stats.closed) == (1, 0, True)  # nothing delivered


@pytest.mark.parametrize("overflow", ["reject", "drop_oldest"])
async def test_a_closed_mailbox_refuses_puts_whatever_its_policy(overflow: OverflowPolicy) -> None:
    box: Mailbox[str] = Mailbox(capacity=1, overflow=overflow, name="box")
    box.close()
    with pytest.raises(MailboxClosed, match=r"^mailbox `box` is closed$"):
        await box.put("x")
    assert len(box) == 0 and box.dead_letters == []


@pytest.mark.timeout(10)
async def test_close_wakes_blocked_gets_after_what_was_put_before_is_taken() -> None:
    box: Mailbox[str] = Mailbox(name="a.outbox")
    getter = asyncio.ensure_future(box.get())
    await until(lambda: box.statistics().waiting_receivers == 1)
    box.close("actor `a` is failed")
    with pytest.raises(MailboxClosed, match=r"mailbox `a.outbox` is closed: actor `a` is failed"):
        await getter
    box.reopen()
    await box.put("last words")
    box.close("actor `a` is failed")
    assert await box.get(timeout=1) == "last words"  # messages put before the close stay
    with pytest.raises(MailboxClosed):
        await box.get(timeout=1)  # then it fails at once, whatever the timeout


async def test_reopen_accepts_messages_again_and_keeps_those_in_it() -> None:
    box: Mailbox[str] = Mailbox(capacity=2)
    await box.put("before")
    box.close("gone")
    box.close("closing twice changes nothing")
    with pytest.raises(MailboxClosed, match="gone"):
        await box.put("refused")
    box.reopen()
    assert not box.closed
    await box.put("after")
    assert [await box.get(), await box.get()] == ["before", "after"]
