"""Limit: pass the first n rows, then stop upstream."""

from __future__ import annotations

from actors._columns import passes_columns, same_columns
from streamnet import Channel, Context, Message, TableChunk, define_actor

__all__ = ["limit"]


@define_actor(columns=passes_columns, emits=same_columns)  # a barrier to predicates
async def limit(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], n: int
) -> None:
    """Pass the first ``n`` rows (in arrival order) and stop.

    Once ``n`` rows passed, the actor ends; its input channel is shut down, so
    the actors upstream stop too (a Parquet scan stops reading).

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow, limit
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b)
    >>> src = from_arrow(ctx, a, pa.table({"x": range(100)}), chunk_rows=10)
    >>> Network(ctx, [src, limit(ctx, a, b, 15), sink]).run()
    >>> sink.result()["x"].to_pylist()[-3:]
    [12, 13, 14]
    """
    if type(n) is not int or n < 0:
        raise ValueError(f"limit: `n` must be an int >= 0, got {n!r}")
    remaining = n
    sent = False
    while remaining > 0 and (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        if chunk.num_rows > remaining:
            chunk = ctx.backend.slice(chunk, 0, remaining)
        remaining -= chunk.num_rows
        await ch_out.send(ctx, Message(msg.sequence_number, chunk))
        sent = True
    if not sent and n == 0 and (msg := await ch_in.recv(ctx)) is not None:
        empty = ctx.backend.slice(TableChunk.from_message(msg), 0, 0)
        await ch_out.send(ctx, Message(msg.sequence_number, empty))
    await ch_out.drain(ctx)
    await ch_in.shutdown(ctx)
