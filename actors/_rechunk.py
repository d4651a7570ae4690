"""Rechunk: coalesce small chunks and split large ones to a target size."""

from __future__ import annotations

from actors._columns import passes_columns, passes_predicates, same_columns
from actors._memory import chunk_row_count
from streamnet import Channel, Context, Message, TableChunk, define_actor

__all__ = ["rechunk"]


@define_actor(columns=passes_columns, emits=same_columns, predicates=passes_predicates)
async def rechunk(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *,
    rows: int | None = None,
    chunk_bytes: int | None = None,
) -> None:
    """Re-cut the stream into chunks of ``rows`` rows (or about ``chunk_bytes`` bytes).

    Every output chunk but the last has the target size. With ``chunk_bytes``,
    rows are counted from the bytes per row of the first chunk that has rows.
    Rows keep their arrival order and output chunks are numbered 0, 1, 2...;
    slicing and concatenating are zero-copy.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow, rechunk
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sizes = []
    >>> from actors import map_chunks
    >>> c = ctx.create_channel()
    >>> net = Network(ctx, [
    ...     from_arrow(ctx, a, pa.table({"x": range(10)}), chunk_rows=3),
    ...     rechunk(ctx, a, b, rows=4),
    ...     map_chunks(ctx, b, c, lambda t: sizes.append(t.num_rows) or t, in_thread=False),
    ...     collect(ctx, c),
    ... ])
    >>> net.run()
    >>> sizes
    [4, 4, 2]
    """
    if rows is None and chunk_bytes is None:
        raise ValueError("rechunk: give `rows` or `chunk_bytes`")
    chunk_row_count(0, 0, rows, chunk_bytes)  # checks the arguments before any input
    backend = ctx.backend
    pending: list[TableChunk] = []
    pending_rows = 0
    target = 0
    seq = 0
    empty: TableChunk | None = None  # of the stream's schema, for a stream without rows
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        if empty is None:
            empty = backend.empty(chunk.schema)
        if chunk.num_rows == 0:
            continue
        if not target:  # sized from the first chunk with rows: an empty one has no row size
            target = chunk_row_count(chunk.num_rows, chunk.nbytes, rows, chunk_bytes)
        pending.append(chunk)
        pending_rows += chunk.num_rows
        while pending_rows >= target:
            whole = await ctx.to_thread(backend.concat, pending) if len(pending) > 1 else pending[0]
            await ch_out.send(ctx, Message(seq, backend.slice(whole, 0, target)))
            seq += 1
            rest = backend.slice(whole, target)
            pending = [rest] if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows or (seq == 0 and empty is not None):
        last = await ctx.to_thread(backend.concat, pending) if pending else empty
        assert last is not None
        await ch_out.send(ctx, Message(seq, last))
    await ch_out.drain(ctx)
