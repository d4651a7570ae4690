"""Concat: several streams one after the other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from actors._columns import passes_columns, passes_predicates, same_columns
from streamnet import Channel, Context, Message, TableChunk, current_actor, define_actor

__all__ = ["concat"]


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def concat(ctx: Context, chs_in: Sequence[Channel[Any]], ch_out: Channel[Any]) -> None:
    """Forward all of the first input, then all of the second, and so on.

    Each input keeps its order, which its sequence numbers give (not the order its
    messages arrive in): the first input's messages keep their numbers, and each
    later input's numbers are shifted past every number sent before it (they must
    then be at least 0). An input waits (its
    producer is held back) until the inputs before it have ended, unless two
    inputs come from one upstream node (a fanout of a shared stream): then the
    later inputs are read ahead and held (spilled under the Context's memory
    limit), since that node cannot send into the input being read while another
    waits for its messages.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, concat, from_arrow
    >>> ctx = Context()
    >>> a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, out)
    >>> Network(ctx, [
    ...     from_arrow(ctx, a, pa.table({"x": [1, 2]})),
    ...     from_arrow(ctx, b, pa.table({"x": [3]})),
    ...     concat(ctx, [a, b], out),
    ...     sink,
    ... ]).run()
    >>> sink.result()["x"].to_pylist()
    [1, 2, 3]
    """
    node = current_actor()
    ahead = [_ReadAhead(ctx, ch) for ch in chs_in[1:]] if node and node.inputs_meet_upstream else []
    tasks = [asyncio.ensure_future(reader.fill()) for reader in ahead]
    try:
        after = None  # the highest number sent so far
        streams = [_stream(ctx, chs_in[0]), *(reader.stream() for reader in ahead)] if ahead else [
            _stream(ctx, ch) for ch in chs_in
        ]
        for i, stream in enumerate(streams):
            shift = 0 if i == 0 or after is None else after + 1
            async for msg in stream:
                if i > 0 and msg.sequence_number < 0:
                    raise ValueError(
                        f"concat: input {i} (`{chs_in[i].name}`) sent a message numbered "
                        f"{msg.sequence_number}; the inputs after the first are placed after "
                        "it by shifting their numbers, which must be at least 0"
                    )
                seq = msg.sequence_number + shift
                after = seq if after is None else max(after, seq)
                await ch_out.send(ctx, Message(seq, msg.payload))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for reader in ahead:
            reader.holder.clear()
    await ch_out.drain(ctx)


async def _stream(ctx: Context, channel: Channel[Any]) -> AsyncIterator[Message[Any]]:
    while (msg := await channel.recv(ctx)) is not None:
        yield msg


class _ReadAhead:
    """An input read ahead of its turn: its messages held (tables counted against the
    memory budget, which may spill them) until it is forwarded."""

    def __init__(self, ctx: Context, channel: Channel[Any]) -> None:
        self.ctx = ctx
        self.channel = channel
        self.held: list[Message[Any]] = []
        self.ended = False
        self.arrived = asyncio.Event()
        self.holder = ctx.memory.holder("concat input read ahead")

    async def fill(self) -> None:
        while (msg := await self.channel.recv(self.ctx)) is not None:
            self.held.append(msg)
            if isinstance(msg.payload, TableChunk):
                await self.holder.add(msg.payload)
            self.arrived.set()
        self.ended = True
        self.arrived.set()

    async def stream(self) -> AsyncIterator[Message[Any]]:
        while True:
            if self.held:
                msg = self.held.pop(0)
                payload = msg.payload
                if isinstance(payload, TableChunk):
                    self.holder.remove(payload)
                    if payload.is_spilled:
                        await self.ctx.to_thread(payload.make_available)
                yield msg
            elif self.ended:
                return
            else:
                self.arrived.clear()
                await self.arrived.wait()
