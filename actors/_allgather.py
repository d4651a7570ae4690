"""allgather: every rank receives the whole stream."""

from __future__ import annotations

import asyncio

from actors._columns import passes_columns, passes_predicates, same_columns
from streamnet import (
    Channel,
    Collective,
    Context,
    InputSchema,
    Message,
    TableChunk,
    define_actor,
    start_task,
    stop_tasks,
)

__all__ = ["allgather"]

_DONE = None


@define_actor(
    collective=True, columns=passes_columns, emits=same_columns, predicates=passes_predicates
)
async def allgather(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *,
    ordered: bool = True,
) -> None:
    """Send every rank's chunks to every rank.

    With ``ordered`` (default), each rank sends out the chunks of all ranks in
    order of (rank, sequence number), numbered 0, 1, 2..., once every rank's
    input ended: after a ``sort``, this is the global order. Without it, chunks
    go out as they arrive (local ones at once), numbered in arrival order.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import allgather, collect, from_polars
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> Network(ctx, [from_polars(ctx, a, pl.DataFrame({"x": [1, 2]})), allgather(ctx, a, b), sink]).run()
    >>> sink.result()["x"].to_list()
    [1, 2]
    """
    coll = Collective(ctx)
    gathered: list[tuple[int, int, TableChunk]] = []
    next_seq = 0

    async def emit(chunk: TableChunk) -> None:
        nonlocal next_seq
        seq, next_seq = next_seq, next_seq + 1  # taken before the send: emitters run concurrently
        await ch_out.send(ctx, Message(seq, chunk))

    async def receive(peer: int) -> None:
        while (item := await coll.recv(peer, "data")) is not _DONE:
            seq, chunk = item
            if ordered:
                gathered.append((peer, seq, chunk))
            else:
                await emit(chunk)

    receivers = [start_task(receive(peer)) for peer in coll.peers]
    schema = InputSchema(ch_in)
    try:
        while (msg := await ch_in.recv(ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            schema.seen(chunk)
            for peer in coll.peers:  # the chunk itself: the wire packs it once per peer
                await coll.send(peer, "data", (msg.sequence_number, chunk))
            if ordered:
                gathered.append((coll.rank, msg.sequence_number, chunk))
            else:
                await emit(chunk)
        for peer in coll.peers:
            await coll.send(peer, "data", _DONE)
        await asyncio.gather(*receivers)
    finally:
        await stop_tasks(ctx, receivers)
    await schema.agreed_schema(coll)  # every rank raises if the ranks' inputs differ in schema
    if ordered:
        gathered.sort(key=lambda item: (item[0], item[1]))
        for _, _, chunk in gathered:
            await emit(chunk)
    await ch_out.drain(ctx)
