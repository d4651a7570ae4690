"""Streaming stages with a restart policy: nothing lost or duplicated downstream."""

from __future__ import annotations

from typing import Any

import pytest

from actors.testing import Stage
from channels import Channel
from streamnet import Context, Message, Network, RestartPolicy, define_actor
from streamnet.network._restart import RestartEndpoint


@define_actor
async def numbers(ctx: Context, ch_out: Channel[Any], n: int) -> None:
    for i in range(n):
        await ch_out.send(ctx, Message(i, i))


@define_actor
async def collect(ctx: Context, ch_in: Channel[Any], into: list[Any]) -> None:
    async for msg in ch_in:
        into.append((msg.sequence_number, msg.payload))


def _run(stage: Stage, n: int = 20) -> tuple[list[Any], Network]:
    ctx = Context()
    a, b = ctx.create_channel(capacity=2), ctx.create_channel(capacity=2)
    out: list[Any] = []
    net = Network(ctx, [numbers(ctx, a, n), stage(ctx, a, b), collect(ctx, b, out)])
    net.run()
    return out, net


def test_a_stage_crashing_before_it_sends_loses_nothing() -> None:
    crashed: set[int] = set()

    @define_actor(restart=RestartPolicy(max_restarts=5))
    async def squares(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for msg in ch_in:
            if msg.sequence_number in (3, 7) and msg.sequence_number not in crashed:
                crashed.add(msg.sequence_number)
                raise RuntimeError(f"flaky at {msg.sequence_number}")
            await ch_out.send(ctx, Message(msg.sequence_number, msg.payload**2))

    out, net = _run(squares)
    assert out == [(i, i * i) for i in range(20)]
    assert net.statistics().actor("squares#0").restarts == 2
    assert net.state == "done"


def test_a_stage_crashing_after_it_sent_duplicates_nothing() -> None:
    crashed: set[int] = set()

    @define_actor(restart=RestartPolicy())
    async def doubles(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for msg in ch_in:
            await ch_out.send(ctx, Message(msg.sequence_number, msg.payload * 2))
            if msg.sequence_number == 5 and 5 not in crashed:
                crashed.add(5)
                raise RuntimeError("crashed after sending 5")

    out, _ = _run(doubles)
    assert out == [(i, 2 * i) for i in range(20)]


def test_too_many_restarts_fail_the_network_with_the_original_error() -> None:
    @define_actor(restart=RestartPolicy(max_restarts=2, max_seconds=60))
    async def always_fails(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for _msg in ch_in:
            raise ValueError("bad stage")

    with pytest.raises(ValueError, match="bad stage") as info:
        _run(always_fails)
    assert any("restarted 2 times within 60 s" in note for note in info.value.__notes__)


def test_without_a_policy_the_first_failure_ends_the_network() -> None:
    @define_actor
    async def fails_once(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        async for _msg in ch_in:
            raise RuntimeError("no second chance")

    with pytest.raises(RuntimeError, match="no second chance"):
        _run(fails_once)


def test_restart_policy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy(max_restarts=0)
    with pytest.raises(TypeError, match="collective and cannot be restarted"):

        @define_actor(collective=True, restart=RestartPolicy())
        async def nope(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None: ...


async def test_a_send_that_timed_out_is_sent_again_by_a_restarted_stage() -> None:
    """A stage that repeats what it already sent drops the repeats, not what timed out."""
    ch: Channel[int] = Channel(capacity=1)
    out = RestartEndpoint(ch)
    await out.send(None, Message(0, 0))
    with pytest.raises(TimeoutError):
        await out.send(None, Message(1, 1), timeout=0.01)
    assert (await ch.recv(None)).sequence_number == 0  # type: ignore[union-attr]
    await out.send(None, Message(0, 0))  # a repeat: dropped
    await out.send(None, Message(1, 1))  # never delivered: sent now
    await ch.drain(None)
    assert [m.sequence_number async for m in ch] == [1]


async def test_a_rewound_input_gives_the_message_in_flight_again_first() -> None:
    ch: Channel[int] = Channel(capacity=4)
    for i in range(3):
        await ch.send(None, Message(i, i))
    await ch.drain(None)
    inp = RestartEndpoint(ch)
    assert (await inp.recv(None)).sequence_number == 0  # type: ignore[union-attr]
    inp.rewind()
    assert len(inp) == 3  # the message in flight, and two in the channel
    assert [m.sequence_number async for m in inp] == [0, 1, 2]
    assert ch.statistics().messages_received == 3  # the channel gave each message once
