"""Mailbox: a put that times out delivers nothing; statistics are a frozen snapshot."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from channels import Mailbox, MailboxStatistics


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
    await asyncio.sleep(0)  # one turn of the loop: the put starts and blocks
    assert box.statistics().waiting_senders == 1
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
        waiting_senders=0, waiting_receivers=0,
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.size = 0  # type: ignore[misc]
