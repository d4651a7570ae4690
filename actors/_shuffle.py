"""shuffle: hash-partition a stream on key columns across ranks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from actors._columns import needs_with, passes_predicates, same_columns
from actors._typing import Placement
from streamnet import (
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    Message,
    TableChunk,
    contiguous,
    define_actor,
    inputs,
    round_robin,
)

__all__ = ["shuffle"]


def key_list(keys: str | Sequence[str], what: str) -> list[str]:
    """Key column names from one name or a list, checked not empty."""
    listed = [keys] if isinstance(keys, str) else list(keys) if isinstance(keys, Iterable) else []
    if not listed or not all(isinstance(k, str) for k in listed):
        raise ValueError(
            f"{what}: keys must be a column name or a non-empty list of names, got {keys!r}"
        )
    return listed


def partition_count(value: int | None, coll: Collective, what: str) -> int:
    count = coll.nranks if value is None else value
    if type(count) is not int or count < 1:
        raise ValueError(f"{what}: `num_partitions` must be an int >= 1, got {value!r}")
    return count


def _shuffle_needs(
    wanted: frozenset[str] | None, *, keys: str | Sequence[str], **_: object
) -> frozenset[str] | None:
    return needs_with(wanted, [keys] if isinstance(keys, str) else keys)


@define_actor(
    collective=True, columns=_shuffle_needs, emits=same_columns, predicates=passes_predicates
)
async def shuffle(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    keys: str | Sequence[str],
    *,
    num_partitions: int | None = None,
    placement: Placement = "round_robin",
    max_buffered_bytes: int | None = None,
) -> CollectiveTraffic:
    """Hash-partition the stream on ``keys`` into partitions spread over the ranks.

    Rows with equal keys (nulls included) end up in the same partition. With
    ``placement="round_robin"`` rank ``r`` owns partitions ``r, r + nranks, ...``;
    with ``"contiguous"`` it owns one block of consecutive partitions. A
    partition is complete once every rank finished its input, so each rank sends
    out its partitions then, one chunk each, numbered by partition id and in
    that order; a rank that owns no rows sends one empty chunk with the
    stream's schema, learnt from the other ranks if its own input had no chunk.
    Input is partitioned chunk by chunk, never concatenated whole; held pieces
    beyond ``max_buffered_bytes`` are spilled to disk.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.

    Returns an ExchangeReport (bytes sent and received per peer, peak buffered
    bytes) through ``node.result()``.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, shuffle
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"k": [1, 2, 1, 3], "v": [1, 2, 3, 4]})
    >>> Network(ctx, [from_polars(ctx, a, df, chunk_rows=2), shuffle(ctx, a, b, "k", num_partitions=2), sink]).run()
    >>> sorted(sink.result()["v"].to_list())
    [1, 2, 3, 4]
    """
    coll = Collective(ctx)
    key_cols = key_list(keys, "shuffle")
    count = partition_count(num_partitions, coll, "shuffle")
    if placement not in ("round_robin", "contiguous"):
        raise ValueError(
            f"shuffle: `placement` must be 'round_robin' or 'contiguous', got {placement!r}"
        )
    owner = round_robin if placement == "round_robin" else contiguous(count)
    schema = InputSchema(ch_in)
    async with Exchange(
        coll, "shuffle", partitions=count, owner=owner, max_buffered_bytes=max_buffered_bytes
    ) as ex:
        async for _, chunk in inputs(ctx, ch_in, key_cols, where="shuffle keys", schema=schema):
            await ex.add(chunk, key_cols)
        held = await ex.finish()
    empty = await schema.agree(coll)
    sent = False
    for partition in held.owned():
        whole = await ctx.to_thread(held.take, partition)
        if whole is not None:
            await ch_out.send(ctx, Message(partition, whole))
            sent = True
    if not sent and empty is not None:
        await ch_out.send(ctx, Message(0, empty))
    await ch_out.drain(ctx)
    return coll.traffic.copy()  # what the statistics show: every message of the collective
