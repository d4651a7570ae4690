"""Concat: several streams one after the other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors._columns import passes_columns, passes_predicates, same_columns
from streamnet import Channel, Context, Message, define_actor

__all__ = ["concat"]


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def concat(ctx: Context, chs_in: Sequence[Channel[Any]], ch_out: Channel[Any]) -> None:
    """Forward all of the first input, then all of the second, and so on.

    Output messages are renumbered 0, 1, 2... in that order. An input waits (its
    producer is held back) until the inputs before it have ended.

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
    seq = 0
    for channel in chs_in:
        while (msg := await channel.recv(ctx)) is not None:
            await ch_out.send(ctx, Message(seq, msg.payload))
            seq += 1
    await ch_out.drain(ctx)
