"""distinct: unique rows (on all or some columns) across every rank.

Deduplicating a chunk is the backend's `Backend.distinct`; this actor runs it on
each chunk, exchanges the survivors by their keys and runs it again per partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from actors._columns import needs_with, predicates_over, same_columns
from actors._shuffle import partition_count
from actors._typing import DistinctKeep
from streamnet import (
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    Message,
    TableChunk,
    define_actor,
    inputs,
)

if TYPE_CHECKING:
    from streamnet import Predicate

__all__ = ["distinct"]

_ORDER = ["__rank", "__seq"]


def _distinct_needs(
    wanted: frozenset[str] | None, *, subset: str | Sequence[str] | None, **_: object
) -> frozenset[str] | None:
    # every column counts when no subset is given; otherwise the subset and what is wanted
    return needs_with(wanted, None if subset is None else [subset] if isinstance(subset, str) else subset)


def _distinct_predicates(
    wanted: frozenset[Predicate],
    columns: Mapping[str, frozenset[str] | None],
    /,
    *,
    subset: str | Sequence[str] | None,
    **_: object,
) -> frozenset[Predicate]:
    # duplicates agree on the subset: a predicate over it keeps or drops all of them
    return predicates_over(wanted, None if subset is None else [subset] if isinstance(subset, str) else subset)


@define_actor(
    collective=True, columns=_distinct_needs, emits=same_columns, predicates=_distinct_predicates
)
async def distinct(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    subset: str | Sequence[str] | None = None,
    *,
    keep: DistinctKeep = "any",
    num_partitions: int | None = None,
    max_buffered_bytes: int | None = None,
) -> CollectiveTraffic:
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
    if subset is not None and not (
        isinstance(subset, str)
        or (isinstance(subset, Iterable) and all(isinstance(c, str) for c in subset))
    ):
        raise TypeError(f"distinct: `subset` must be a column name or a list of names, got {subset!r}")
    cols = None if subset is None else ([subset] if isinstance(subset, str) else list(subset))
    count = partition_count(num_partitions, coll, "distinct")
    ordered = keep != "any"
    schema = InputSchema(ch_in)

    order = _ORDER if ordered else ()

    def dedup(chunk: TableChunk) -> TableChunk:
        return ctx.backend.distinct(chunk, cols, keep, order=order)

    async with Exchange(
        coll, "distinct", partitions=count, max_buffered_bytes=max_buffered_bytes
    ) as ex:
        async for _, chunk in inputs(
            ctx, ch_in, cols or [], where="distinct subset", order=ordered, schema=schema
        ):
            survivors = await ctx.to_thread(dedup, chunk)
            keys = cols or [c for c in survivors.column_names if c not in _ORDER]
            await ex.add(survivors, keys)
        held = await ex.finish()
    empty = await schema.agree(coll)
    sent = False
    for partition in held.owned():
        whole = await ctx.to_thread(held.take, partition)
        if whole is None:
            continue
        out = await ctx.to_thread(dedup, whole)
        if ordered:
            kept = [c for c in out.column_names if c not in _ORDER]
            out = await ctx.to_thread(ctx.backend.project, out, kept)
        await ch_out.send(ctx, Message(partition, out))
        sent = True
    if not sent and empty is not None:
        await ch_out.send(ctx, Message(0, empty))
    await ch_out.drain(ctx)
    return coll.traffic.copy()  # what the statistics show: every message of the collective
