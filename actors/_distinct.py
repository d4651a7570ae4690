"""distinct: unique rows (on all or some columns) across every rank.

Deduplicating a chunk is the backend's `Backend.distinct`; this actor runs it on
each chunk, exchanges the survivors by their keys and runs it again per partition.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import polars as pl

from actors._exchange import ExchangeReport, InputSchema, exchange, frames_of, hash_partition
from actors._shuffle import partition_count
from actors._typing import DistinctKeep
from streamnet import Channel, Collective, Context, Message, TableChunk, define_actor

__all__ = ["distinct"]

_ORDER = ["__rank", "__seq"]


@define_actor(collective=True)
async def distinct(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    subset: str | Sequence[str] | None = None,
    *,
    keep: DistinctKeep = "any",
    num_partitions: int | None = None,
    max_buffered_bytes: int | None = None,
) -> ExchangeReport:
    """Drop duplicate rows, judged on ``subset`` columns (all when None), across ranks.

    Each chunk is deduplicated on arrival, the survivors are shuffled on the
    subset, and each rank deduplicates the partitions it owns. ``keep="first"``
    or ``"last"`` keeps the first or last duplicate in stream order (rank, then
    sequence number, then row); ``"any"`` is cheapest. A rank whose input had no
    chunk learns the stream's schema from the other ranks.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, distinct, from_polars
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"k": [1, 1, 2], "v": [10, 20, 30]})
    >>> Network(ctx, [from_polars(ctx, a, df, chunk_rows=1), distinct(ctx, a, b, "k", keep="first"), sink]).run()
    >>> sink.result().sort("k").to_dicts()
    [{'k': 1, 'v': 10}, {'k': 2, 'v': 30}]
    """
    coll = Collective(ctx)
    if keep not in ("any", "first", "last"):
        raise ValueError(f"distinct: `keep` must be 'any', 'first' or 'last', got {keep!r}")
    cols = None if subset is None else ([subset] if isinstance(subset, str) else list(subset))
    count = partition_count(num_partitions, coll, "distinct")
    ordered = keep != "any"
    schema = InputSchema(ch_in)

    def dedup(frame: pl.DataFrame) -> pl.DataFrame:
        chunk = TableChunk.from_polars(frame)
        order = _ORDER if ordered else ()
        return ctx.backend.distinct(chunk, cols, keep, order=order).to_polars()

    async def prepared() -> AsyncIterator[pl.DataFrame]:
        async for frame in frames_of(
            ctx, ch_in, cols or [], where="distinct subset", order=ordered, schema=schema
        ):
            yield await ctx.to_thread(dedup, frame)

    def partitioner(frame: pl.DataFrame) -> dict[int, pl.DataFrame]:
        keys = cols or [c for c in frame.columns if c not in _ORDER]
        return hash_partition(ctx.backend, frame, keys, count)

    held = await exchange(
        ctx, coll, prepared(), partitioner, count, "distinct", max_buffered_bytes=max_buffered_bytes
    )
    empty = await schema.agree(coll)
    sent = False
    for partition in sorted(held.pieces):
        frame = await ctx.to_thread(held.take, partition)
        if frame is None:
            continue
        out = await ctx.to_thread(dedup, frame)
        if ordered:
            out = out.drop(_ORDER)
        await ch_out.send(ctx, Message(partition, TableChunk.from_polars(out)))
        sent = True
    if not sent and empty is not None:
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(empty)))
    await ch_out.drain(ctx)
    return held.report
