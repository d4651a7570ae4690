"""sort and top_k: a global sort by sampled range partitioning, and its cheap special case.

Sampling, boundaries, range partitioning and sorting a chunk are the backend's
(`Backend.sample`, `range_boundaries`, `range_partition`, `sort`, `top_k`); these
actors move the chunks between ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors._columns import needs_with
from actors._shuffle import key_list
from streamnet import (
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    Message,
    SortOrder,
    TableChunk,
    define_actor,
    inputs,
)

__all__ = ["sort", "top_k"]

SAMPLES_PER_CHUNK = 128


def _flags(value: bool | Sequence[bool], keys: list[str], name: str) -> list[bool]:
    if isinstance(value, bool):
        return [value] * len(keys)
    flags = list(value)
    if len(flags) != len(keys) or not all(isinstance(f, bool) for f in flags):
        raise ValueError(f"sort: `{name}` must be a bool or one bool per key {keys}, got {value!r}")
    return flags


def _own_range(partition: int, nranks: int) -> int:
    return partition  # one range per rank, in rank order


def _sort_needs(
    wanted: frozenset[str] | None, *, by: str | Sequence[str], **_: object
) -> frozenset[str] | None:
    return needs_with(wanted, [by] if isinstance(by, str) else by)


@define_actor(collective=True, columns=_sort_needs)
async def sort(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    by: str | Sequence[str],
    *,
    descending: bool | Sequence[bool] = False,
    nulls_last: bool | Sequence[bool] = False,
    max_buffered_bytes: int | None = None,
) -> CollectiveTraffic:
    """Sort the stream across every rank, as Polars' ``sort`` would.

    Each rank samples its input's keys; the samples of all ranks give range
    boundaries; every chunk is cut by range and sent to the rank that owns the
    range (rank 0 the first); each rank sorts its range. Reading the ranks'
    outputs in rank order gives the global order (``allgather`` does). Ties
    keep no particular order. Each rank sends one chunk, empty if its range is,
    with the stream's schema (learnt from the other ranks if its own input had
    no chunk).

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, sort
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [3, None, 1, 2]})
    >>> Network(ctx, [from_polars(ctx, a, df, chunk_rows=1), sort(ctx, a, b, "x", descending=True, nulls_last=True), sink]).run()
    >>> sink.result()["x"].to_list()
    [3, 2, 1, None]
    """
    coll = Collective(ctx)
    keys = key_list(by, "sort")
    desc = _flags(descending, keys, "descending")
    last = _flags(nulls_last, keys, "nulls_last")
    order = SortOrder(tuple(keys), tuple(desc), tuple(last))
    backend = ctx.backend
    frames: list[TableChunk] = []
    samples: list[TableChunk] = []
    schema = InputSchema(ch_in)
    async for _, chunk in inputs(ctx, ch_in, keys, where="sort keys", schema=schema):
        frames.append(chunk)
        samples.append(backend.sample(chunk, keys, SAMPLES_PER_CHUNK, seed=len(frames)))
    empty = await schema.agree(coll)
    if empty is None:  # no rank saw a chunk
        await ch_out.drain(ctx)
        return coll.traffic.copy()
    local = backend.concat(samples) if samples else None
    gathered = await coll.allgather("samples", local)
    all_samples = backend.concat([t for t in gathered if t is not None])
    bounds = await ctx.to_thread(backend.range_boundaries, all_samples, order, coll.nranks)

    async with Exchange(
        coll, "sort", partitions=coll.nranks, owner=_own_range,
        max_buffered_bytes=max_buffered_bytes,
    ) as ex:  # fmt: skip
        while frames:
            chunk = frames.pop(0)
            pieces = await ctx.to_thread(backend.range_partition, chunk, bounds, order)
            await ex.add_partitioned(pieces)
        held = await ex.finish()
    taken = await ctx.to_thread(held.take, coll.rank)
    mine = taken if taken is not None else empty  # an empty range still sends the schema
    out = await ctx.to_thread(backend.sort, mine, order)
    await ch_out.send(ctx, Message(coll.rank, out))
    await ch_out.drain(ctx)
    return coll.traffic.copy()  # what the statistics show: every message of the collective


@define_actor(collective=True, columns=_sort_needs)
async def top_k(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    by: str | Sequence[str],
    k: int,
    *,
    descending: bool | Sequence[bool] = False,
    nulls_last: bool | Sequence[bool] = False,
) -> None:
    """The first ``k`` rows of the stream sorted by ``by``, on every rank.

    Only the best ``k`` rows of each chunk are kept as the stream goes, so
    memory holds about ``2k`` rows; at the end the ranks swap their ``k`` rows
    and each sends the same ``k`` rows out. ``descending=True`` gives the largest.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, top_k
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [5, 1, 4, 2, 3]})
    >>> Network(ctx, [from_polars(ctx, a, df, chunk_rows=2), top_k(ctx, a, b, "x", 2, descending=True), sink]).run()
    >>> sink.result()["x"].to_list()
    [5, 4]
    """
    coll = Collective(ctx)
    keys = key_list(by, "top_k")
    if type(k) is not int or k < 0:
        raise ValueError(f"top_k: `k` must be an int >= 0, got {k!r}")
    desc = _flags(descending, keys, "descending")
    last = _flags(nulls_last, keys, "nulls_last")

    order = SortOrder(tuple(keys), tuple(desc), tuple(last))

    def best(chunk: TableChunk) -> TableChunk:
        return ctx.backend.top_k(chunk, order, k)

    kept: TableChunk | None = None
    schema = InputSchema(ch_in)
    async for _, chunk in inputs(ctx, ch_in, keys, where="top_k keys", schema=schema):
        both = chunk if kept is None else ctx.backend.concat([kept, chunk])
        kept = await ctx.to_thread(best, both)
    await schema.agree(coll)
    everyone = await coll.allgather("top", kept)
    parts = [t for t in everyone if t is not None]
    if parts:
        out = await ctx.to_thread(best, ctx.backend.concat(parts))
        await ch_out.send(ctx, Message(0, out))
    await ch_out.drain(ctx)
