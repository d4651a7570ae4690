"""Actors for the parts of a query that do not distribute: they run on rank 0, through Polars.

`on_rank_zero` gathers its inputs on rank 0, in stream order (rank, then sequence
number), and runs a function of Polars frames there: a slice of the whole
stream, a sort that keeps the order of ties, or what is left of the query above
a node the translator cannot run as actors (Polars runs it, its inputs replaced
by the gathered frames). Every other rank sends one empty chunk of the result's
schema, so that the output is a stream like any other. `keep_rank_zero` keeps
rank 0's copy of a stream that every rank holds whole (a ``top_k``'s result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import polars as pl

from actors._query._plan import ROWS, row_carrier
from streamnet import Channel, Collective, Context, Message, TableChunk, define_actor

__all__ = ["keep_rank_zero", "on_rank_zero"]

_DONE = None


def _conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` with exactly the columns and types of ``schema``; of no columns, the rows
    as the one column `ROWS` (a frame of no columns has no rows)."""
    if not schema:
        return frame.select(ROWS) if ROWS in frame.columns else row_carrier(frame)
    if frame.schema == schema:
        return frame
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


@define_actor(collective=True)
async def on_rank_zero(
    ctx: Context,
    chs_in: Sequence[Channel[TableChunk]],
    ch_out: Channel[TableChunk],
    fn: Callable[[list[pl.DataFrame]], pl.DataFrame],
    schemas: Sequence[pl.Schema],
    schema: pl.Schema,
    *,
    keep_rows: int | None = None,
) -> None:
    """Gather every input on rank 0 and send ``fn(frames)`` from there, one frame per input.

    Each input is the whole stream in order (rank, then sequence number); an input
    without any chunk is an empty frame of its schema in ``schemas``. The result is
    cast to ``schema``; every other rank sends one empty chunk of ``schema``. The inputs
    are read at once (they may come from one upstream). ``keep_rows``: each rank keeps
    only the first rows of each input (a slice needs no more), still reading the rest.
    """
    coll = Collective(ctx)
    backend = ctx.backend

    async def local(index: int, channel: Channel[TableChunk]) -> list[TableChunk]:
        received: list[tuple[int, TableChunk]] = []
        while (msg := await channel.recv(ctx)) is not None:
            received.append((msg.sequence_number, TableChunk.from_message(msg)))
        received.sort(key=lambda item: item[0])
        kept: list[TableChunk] = []
        rows = 0
        for _, chunk in received:
            if keep_rows is not None and rows >= keep_rows:
                break
            if keep_rows is not None and rows + chunk.num_rows > keep_rows:
                chunk = backend.slice(chunk, 0, keep_rows - rows)
            kept.append(chunk)
            rows += chunk.num_rows
        if coll.rank != 0:
            for chunk in kept:
                await coll.send(0, ("data", index), chunk)
            await coll.send(0, ("data", index), _DONE)
        return kept

    async def remote(index: int, peer: int) -> list[TableChunk]:
        chunks: list[TableChunk] = []
        while (item := await coll.recv(peer, ("data", index))) is not _DONE:
            chunks.append(item)
        return chunks

    mine = await asyncio.gather(*(local(i, channel) for i, channel in enumerate(chs_in)))
    if coll.rank != 0:
        empty = backend.from_polars(_conformed(pl.DataFrame(schema=schema), schema))
        await ch_out.send(ctx, Message(0, empty))
        await ch_out.drain(ctx)
        return
    theirs = await asyncio.gather(
        *(remote(i, peer) for i in range(len(chs_in)) for peer in coll.peers)
    )
    peers = len(coll.peers)

    def run() -> TableChunk:
        frames = []
        for i, own in enumerate(mine):
            chunks = [*own, *(c for p in range(peers) for c in theirs[i * peers + p])]
            chunks = [c for c in chunks if c.num_rows] or chunks[:1]
            if chunks:
                whole = backend.concat(chunks) if len(chunks) > 1 else chunks[0]
                frames.append(_conformed(backend.to_polars(whole), schemas[i]))
            else:
                frames.append(pl.DataFrame(schema=schemas[i]))
        return backend.from_polars(_conformed(fn(frames), schema))

    out = await ctx.to_thread(run)
    await ch_out.send(ctx, Message(0, out))
    await ch_out.drain(ctx)


@define_actor
async def keep_rank_zero(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]
) -> None:
    """Forward the stream on rank 0; elsewhere only an empty chunk of its schema.

    For a stream every rank holds whole (a ``top_k``'s result), so that it is
    counted once.
    """
    first = True
    while (msg := await ch_in.recv(ctx)) is not None:
        if ctx.rank == 0:
            await ch_out.send(ctx, msg)
        elif first:
            chunk = TableChunk.from_message(msg)
            await ch_out.send(ctx, Message(msg.sequence_number, ctx.backend.slice(chunk, 0, 0)))
        first = False
    await ch_out.drain(ctx)
