"""Flow control: fanout, merge, lineariser, throttle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import monotonic
from typing import Any

from actors._columns import passes_columns, passes_predicates, same_columns
from channels import linearise, recv_any
from streamnet import Channel, ChannelBroken, Context, Message, define_actor

__all__ = ["fanout", "lineariser", "merge", "throttle"]


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def fanout(ctx: Context, ch_in: Channel[Any], chs_out: Sequence[Channel[Any]]) -> None:
    """Send every message to every output (the same payload object: tables are immutable).

    Bounded: a message goes to the next output only once the previous one took
    it, so the slowest consumer sets the pace. An output whose consumer stopped
    (for example a ``limit``) is dropped; the others go on. Once every output
    stopped, the input is shut down, so upstream stops too.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, fanout, from_arrow
    >>> ctx = Context()
    >>> src, a, b = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    >>> left, right = collect(ctx, a), collect(ctx, b)
    >>> Network(ctx, [from_arrow(ctx, src, pa.table({"x": [1, 2]})), fanout(ctx, src, [a, b]), left, right]).run()
    >>> left.result().equals(right.result())
    True
    """
    outputs = list(chs_out)
    while outputs and (msg := await ch_in.recv(ctx)) is not None:
        for channel in list(outputs):
            try:
                await channel.send(ctx, msg)
            except ChannelBroken:
                outputs.remove(channel)
    for channel in chs_out:
        await channel.drain(ctx)
    if not outputs:  # nobody wants more: stop upstream too
        await ch_in.shutdown(ctx)


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def merge(
    ctx: Context,
    chs_in: Sequence[Channel[Any]],
    ch_out: Channel[Any],
    *,
    renumber: bool = False,
) -> None:
    """Forward messages from all inputs as they arrive (fairly, in turn when several are ready).

    Sequence numbers pass through unchanged, so inputs that split one stream
    keep its order information; with ``renumber=True`` the output is numbered
    0, 1, 2... in arrival order instead (for independent streams). Use
    :func:`lineariser` to merge in sequence-number order.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow, merge
    >>> ctx = Context()
    >>> a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, out)
    >>> Network(ctx, [
    ...     from_arrow(ctx, a, pa.table({"x": [1]})),
    ...     from_arrow(ctx, b, pa.table({"x": [2]})),
    ...     merge(ctx, [a, b], out, renumber=True),
    ...     sink,
    ... ]).run()
    >>> sorted(sink.result()["x"].to_pylist())
    [1, 2]
    """
    open_inputs = list(chs_in)
    seq = 0
    while open_inputs:
        index, msg = await recv_any(ctx, open_inputs)
        if msg is None:
            open_inputs.pop(index)
            continue
        # Rotate so the input that just delivered goes last: no input starves.
        open_inputs = open_inputs[index + 1 :] + open_inputs[: index + 1]
        if renumber:
            msg = Message(seq, msg.payload)
            seq += 1
        await ch_out.send(ctx, msg)
    await ch_out.drain(ctx)


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def lineariser(ctx: Context, chs_in: Sequence[Channel[Any]], ch_out: Channel[Any]) -> None:
    """Merge inputs, each in increasing sequence order, into one stream in sequence order.

    Holds at most one message per input. Raises `SequenceError` on a duplicate
    sequence number or an input that goes backwards (see :func:`channels.linearise`).

    Examples
    --------
    >>> from streamnet import Context, Message, Network, TableChunk, define_actor
    >>> from actors import collect, lineariser
    >>> @define_actor
    ... async def numbered(ctx, ch_out, seqs):
    ...     for s in seqs:
    ...         await ch_out.send(ctx, Message(s, TableChunk.from_arrow(pa.table({"s": [s]}))))
    >>> ctx = Context()
    >>> a, b, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, out)
    >>> Network(ctx, [numbered(ctx, a, [0, 3]), numbered(ctx, b, [1, 2]), lineariser(ctx, [a, b], out), sink]).run()
    >>> sink.result()["s"].to_pylist()
    [0, 1, 2, 3]
    """
    await linearise(ctx, list(chs_in), ch_out)


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def throttle(
    ctx: Context,
    ch_in: Channel[Any],
    ch_out: Channel[Any],
    *,
    chunks_per_second: float | None = None,
    rows_per_second: float | None = None,
    burst: int = 1,
) -> None:
    """Forward messages no faster than a rate (a token bucket).

    Parameters
    ----------
    chunks_per_second, rows_per_second
        The cap; give one. Rows are what each payload reports (``num_rows``).
    burst
        Chunks (or their rows) that may pass at once after a quiet spell.

    To cap how many chunks are in flight between two actors, set the capacity
    (messages) or ``max_bytes`` of the channel between them instead.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow, throttle
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b)
    >>> src = from_arrow(ctx, a, pa.table({"x": range(4)}), chunk_rows=1)
    >>> Network(ctx, [src, throttle(ctx, a, b, chunks_per_second=1000), sink]).run()
    >>> sink.result().num_rows
    4
    """
    if (chunks_per_second is None) == (rows_per_second is None):
        raise ValueError("throttle: give exactly one of `chunks_per_second` and `rows_per_second`")
    rate = float(chunks_per_second if chunks_per_second is not None else rows_per_second)  # type: ignore[arg-type]
    if rate <= 0:
        raise ValueError(f"throttle: the rate must be > 0, got {rate}")
    if type(burst) is not int or burst < 1:
        raise ValueError(f"throttle: `burst` must be an int >= 1, got {burst!r}")
    capacity = float(burst)
    tokens = capacity
    last = monotonic()
    while (msg := await ch_in.recv(ctx)) is not None:
        cost = 1.0
        if rows_per_second is not None:
            rows = getattr(msg.payload, "num_rows", 0)
            cost = float(rows if isinstance(rows, int) else 0)
            capacity = max(capacity, cost)
        now = monotonic()
        tokens = min(capacity, tokens + (now - last) * rate)
        last = now
        if tokens < cost:
            await asyncio.sleep((cost - tokens) / rate)
            now = monotonic()
            tokens = min(capacity, tokens + (now - last) * rate)
            last = now
        tokens -= cost
        await ch_out.send(ctx, msg)
    await ch_out.drain(ctx)
