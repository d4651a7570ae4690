"""Rechunk: coalesce small chunks and split large ones to a target size."""

from __future__ import annotations

import pyarrow as pa

from actors._memory import chunk_row_count
from streamnet import Channel, Context, Message, TableChunk, define_actor

__all__ = ["rechunk"]


@define_actor
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
    >>> import pyarrow as pa
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
    pending: list[pa.Table] = []
    pending_rows = 0
    target = 0
    seq = 0
    schema: pa.Schema | None = None
    while (msg := await ch_in.recv(ctx)) is not None:
        table = await ctx.to_thread(TableChunk.from_message(msg).to_arrow)  # may convert
        if schema is None:
            schema = table.schema
        if table.num_rows == 0:
            continue
        if not target:  # sized from the first chunk with rows: an empty one has no row size
            target = chunk_row_count(table.num_rows, table.nbytes, rows, chunk_bytes)
        pending.append(table)
        pending_rows += table.num_rows
        while pending_rows >= target:
            whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(whole.slice(0, target))))
            seq += 1
            rest = whole.slice(target)
            pending = [rest] if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows or (seq == 0 and schema is not None):
        whole = pa.concat_tables(pending) if pending else schema.empty_table()  # type: ignore[union-attr]
        await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(whole)))
    await ch_out.drain(ctx)
