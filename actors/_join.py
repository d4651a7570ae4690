"""join: broadcast or shuffle hash join across ranks, chosen from observed sizes.

Joining chunks is the backend's: `Backend.join` partition by partition after a
shuffle, `Backend.join_build` / `join_probe` / `join_flush` for a broadcast right
side. This actor reads the sides, chooses, and moves chunks through the exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from actors._columns import ColumnCheck
from actors._shuffle import key_list, partition_count
from actors._typing import JoinHow, JoinMethod, JoinStrategy
from streamnet import (
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    JoinSpec,
    Message,
    Partitions,
    SchemaError,
    TableChunk,
    current_actor_name,
    define_actor,
    inputs,
)

__all__ = ["BROADCAST_THRESHOLD", "JoinReport", "join"]

BROADCAST_THRESHOLD = 64 * 2**20
"""``strategy="auto"`` broadcasts the right side when all ranks together hold at most this many bytes of it."""

_BROADCASTABLE = ("inner", "left", "semi", "anti")


@dataclass(frozen=True, slots=True)
class JoinReport:
    """What a join did on this rank (``node.result()``)."""

    strategy: JoinMethod
    right_bytes: int
    """Bytes of the right side over all ranks, as far as it was read before choosing."""
    left: CollectiveTraffic | None
    """The left side's exchange (shuffle only)."""
    right: CollectiveTraffic | None
    """The right side's exchange (shuffle only)."""
    recorded: CollectiveTraffic | None = field(default=None, compare=False)
    """Everything the join moved, as its statistics show (sizes, schemas, broadcast side)."""

    @property
    def traffic(self) -> CollectiveTraffic:
        """What the join moved on this rank: the statistics' figure, or without it both
        exchanges together (nothing moved for a single-rank broadcast)."""
        if self.recorded is not None:
            return self.recorded
        total = CollectiveTraffic()
        for side in (self.left, self.right):
            if side is not None:
                total = total + side
        return total


def _join_needs(
    wanted: frozenset[str] | None,
    *,
    on: str | Sequence[str] | None,
    left_on: str | Sequence[str] | None,
    right_on: str | Sequence[str] | None,
    how: str,
    suffix: str,
    **_: object,
) -> dict[str, frozenset[str] | None]:
    """What each side must keep to give ``wanted``: the keys, and every wanted name, with a
    suffixed name's unsuffixed one on both sides (so that the same names still clash)."""

    def names(keys: str | Sequence[str] | None) -> list[str]:
        return [] if keys is None else [keys] if isinstance(keys, str) else list(keys)

    left_keys, right_keys = names(on) + names(left_on), names(on) + names(right_on)
    if wanted is None:
        return {"left_in": None, "right_in": None}
    unsuffixed = {n[: -len(suffix)] for n in wanted if suffix and n.endswith(suffix)}
    both = wanted | unsuffixed
    right = frozenset(right_keys) if how in ("semi", "anti") else both | frozenset(right_keys)
    return {"left_in": both | frozenset(left_keys), "right_in": right}


@define_actor(collective=True, columns=_join_needs)
async def join(
    ctx: Context,
    left_in: Channel[TableChunk],
    right_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *,
    on: str | Sequence[str] | None = None,
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    how: JoinHow = "inner",
    suffix: str = "_right",
    strategy: JoinStrategy = "auto",
    broadcast_threshold: int = BROADCAST_THRESHOLD,
    num_partitions: int | None = None,
    max_buffered_bytes: int | None = None,
) -> JoinReport:
    """Join two streams on key columns, across every rank, with Polars' semantics.

    ``strategy="broadcast"`` gathers the whole right side on every rank and joins
    each left chunk as it streams by (left, inner, semi and anti joins).
    ``strategy="shuffle"`` hash-partitions both sides on the keys and joins
    partition by partition (every join type). ``"auto"`` reads the right side
    first, up to ``broadcast_threshold`` bytes per rank; if the whole right side,
    summed over ranks, fits in the threshold and the join type allows it, it
    broadcasts, otherwise it shuffles. Column names found on both sides get
    ``suffix`` as in Polars; null keys never match.

    A rank whose input had no chunk on one side learns that side's schema from
    the other ranks. If no rank had a chunk on one side, the columns it would
    add are unknown: a join that keeps the other side's rows and adds those
    columns (left or full with no right chunk, right or full with no left chunk)
    raises `SchemaError`; the others give what Polars gives for an empty side.

    Raises
    ------
    SchemaError
        The ranks' inputs on one side differ in schema, or the result's columns
        cannot be known (see above).

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, join
    >>> ctx = Context()
    >>> l, r, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, out, into="polars")
    >>> left = pl.DataFrame({"id": [1, 2, 3], "x": ["a", "b", "c"]})
    >>> right = pl.DataFrame({"id": [3, 1], "y": [30, 10]})
    >>> Network(ctx, [from_polars(ctx, l, left), from_polars(ctx, r, right), join(ctx, l, r, out, on="id"), sink]).run()
    >>> sink.result().sort("id").to_dicts()
    [{'id': 1, 'x': 'a', 'y': 10}, {'id': 3, 'x': 'c', 'y': 30}]
    """
    coll = Collective(ctx)
    if on is not None:
        if left_on is not None or right_on is not None:
            raise ValueError("join: give `on`, or `left_on` and `right_on`, not both")
        lkeys = rkeys = key_list(on, "join")
    elif left_on is not None and right_on is not None:
        lkeys, rkeys = key_list(left_on, "join"), key_list(right_on, "join")
        if len(lkeys) != len(rkeys):
            raise ValueError(f"join: `left_on` {lkeys} and `right_on` {rkeys} differ in length")
    else:
        raise ValueError("join: give the keys with `on`, or with `left_on` and `right_on`")
    if how not in ("inner", "left", "right", "full", "semi", "anti"):
        raise ValueError(f"join: `how` must be inner, left, right, full, semi or anti, got {how!r}")
    if strategy not in ("auto", "broadcast", "shuffle"):
        raise ValueError(f"join: `strategy` must be auto, broadcast or shuffle, got {strategy!r}")
    if strategy == "broadcast" and how not in _BROADCASTABLE:
        raise ValueError(
            f"join: how={how!r} cannot broadcast the right side (its unmatched right rows would "
            "repeat on every rank); use strategy='shuffle' or 'auto'"
        )
    spec = JoinSpec(tuple(lkeys), tuple(rkeys), how, suffix)
    count = partition_count(num_partitions, coll, "join")
    left_schema, right_schema = InputSchema(left_in), InputSchema(right_in)
    rights = inputs(ctx, right_in, rkeys, where="join right keys", schema=right_schema)

    # The left side is buffered while the right side is read, so a join whose two inputs
    # come from one upstream (a fanout: a self-join) cannot deadlock. Beyond the threshold
    # buffered left chunks go to disk.
    early = _LeftBuffer(ctx, left_in, left_schema, spill_beyond=broadcast_threshold)
    buffering = asyncio.ensure_future(early.fill())
    try:
        # Read the right side first, up to the threshold (all of it when broadcasting is
        # forced, or with a single rank, where "broadcasting" moves nothing).
        buffered: list[TableChunk] = []
        size = 0
        ended = False
        read_all = strategy == "broadcast" or (
            strategy == "auto" and coll.nranks == 1 and how in _BROADCASTABLE
        )
        if strategy != "shuffle":
            while read_all or size <= broadcast_threshold:
                item = await anext(rights, None)
                if item is None:
                    ended = True
                    break
                buffered.append(item[1])
                size += item[1].nbytes
        sizes = await coll.allgather("size", (size, ended))
    finally:
        buffering.cancel()
        await asyncio.gather(buffering, return_exceptions=True)
    if buffering.done() and not buffering.cancelled() and buffering.exception() is not None:
        raise buffering.exception()  # type: ignore[misc]
    lefts = early.replay_then(
        inputs(ctx, left_in, lkeys, where="join left keys", schema=left_schema), lkeys
    )
    total = sum(s for s, _ in sizes)
    broadcast = read_all or (
        strategy == "auto"
        and how in _BROADCASTABLE
        and all(e for _, e in sizes)
        and total <= broadcast_threshold
    )
    if broadcast:
        await right_schema.agree(coll, "right")
        await _broadcast_join(ctx, coll, lefts, buffered, right_in, ch_out, spec)
        # The left side streamed through; its ranks must agree on its schema as well, or
        # each would have sent results of another schema.
        await left_schema.agree(coll, "left")
        await ch_out.drain(ctx)
        return JoinReport("broadcast", total, None, None, coll.traffic.copy())

    async def exchanged(
        phase: str, chunks: AsyncIterator[TableChunk], keys: list[str]
    ) -> Partitions:
        async with Exchange(
            coll, phase, partitions=count, max_buffered_bytes=max_buffered_bytes
        ) as ex:
            async for chunk in chunks:
                await ex.add(chunk, keys)
            return await ex.finish()

    async def right_stream() -> AsyncIterator[TableChunk]:
        while buffered:
            yield buffered.pop(0)
        async for _, chunk in rights:
            yield chunk

    async def left_stream() -> AsyncIterator[TableChunk]:
        async for _, chunk in lefts:
            yield chunk

    # Both sides at once: neither waits for the other to end (no deadlock under a fanout).
    right_held, left_held = await asyncio.gather(
        exchanged("right", right_stream(), rkeys), exchanged("left", left_stream(), lkeys)
    )
    left_empty = await left_schema.agree(coll, "left")
    right_empty = await right_schema.agree(coll, "right")
    _check_sides_known(left_empty, right_empty, how, left_in, right_in)
    sent = False
    for partition in left_held.owned():
        left_part = await ctx.to_thread(left_held.take, partition)
        right_part = await ctx.to_thread(right_held.take, partition)
        if left_part is None and right_part is None:
            continue
        if left_part is None and how in ("inner", "left", "semi", "anti"):
            continue  # nothing on the left: nothing to keep
        if right_part is None and how in ("inner", "right", "semi"):
            continue  # nothing on the right: no match possible
        left_part = left_part if left_part is not None else left_empty
        right_part = right_part if right_part is not None else right_empty
        assert left_part is not None  # a side without a chunk anywhere raised above or skips
        if right_part is None:  # no right chunk on any rank, an anti join: every left row stays
            out = left_part
        else:
            out = await ctx.to_thread(ctx.backend.join, left_part, right_part, spec)
        await ch_out.send(ctx, Message(partition, out))
        sent = True
    if not sent:
        empty = _empty_result(ctx, left_empty, right_empty, spec)
        if empty is not None:
            await ch_out.send(ctx, Message(0, empty))
    await ch_out.drain(ctx)
    return JoinReport(
        "shuffle", total, left_held.report, right_held.report, coll.traffic.copy()
    )


def _check_sides_known(
    left: TableChunk | None,
    right: TableChunk | None,
    how: JoinHow,
    left_in: Channel[TableChunk],
    right_in: Channel[TableChunk],
) -> None:
    """Raise if one side had no chunk on any rank and the result needs its columns."""
    if right is None and left is not None and how in ("left", "full"):
        raise _unknown_side("right", right_in, how)
    if left is None and right is not None and how in ("right", "full"):
        raise _unknown_side("left", left_in, how)


def _unknown_side(side: str, channel: Channel[TableChunk], how: JoinHow) -> SchemaError:
    return SchemaError(
        f"actor `{current_actor_name()}`: the {side} input (channel `{channel.name}`) had no "
        f"chunk on any rank, so the columns it adds to a {how} join are unknown; send at "
        "least one chunk (an empty one carries the schema); got none"
    )


def _empty_result(
    ctx: Context, left: TableChunk | None, right: TableChunk | None, spec: JoinSpec
) -> TableChunk | None:
    """The empty result of the join, if its schema is known."""
    if left is not None and right is not None:
        return ctx.backend.join(left, right, spec)
    if left is not None and spec.how in ("semi", "anti"):  # no right chunk: the left schema
        return left
    return None


class _LeftBuffer:
    """Left chunks received while the right side is being read, spilled beyond a bound."""

    def __init__(
        self,
        ctx: Context,
        channel: Channel[TableChunk],
        schema: InputSchema,
        *,
        spill_beyond: int,
    ) -> None:
        self.ctx = ctx
        self.channel = channel
        self.schema = schema
        self.spill_beyond = spill_beyond
        self.chunks: list[tuple[int, TableChunk]] = []
        self.in_memory = 0
        self.ended = False

    async def fill(self) -> None:
        """Receive until cancelled or the stream ends (a cancelled receive loses nothing)."""
        while (msg := await self.channel.recv(self.ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            self.schema.seen(chunk)
            self.chunks.append((msg.sequence_number, chunk))
            self.in_memory += chunk.nbytes
            if self.in_memory > self.spill_beyond:
                self.in_memory -= await self.ctx.to_thread(chunk.spill, self.ctx.spills)
        self.ended = True

    async def replay_then(
        self, rest: AsyncIterator[tuple[int, TableChunk]], keys: list[str]
    ) -> AsyncIterator[tuple[int, TableChunk]]:
        """The buffered chunks, then the rest of the stream."""
        check = ColumnCheck(keys, where="join left keys")
        for seq, chunk in self.chunks:
            check.chunk(chunk)
            yield seq, chunk
        self.chunks.clear()
        if not self.ended:
            async for item in rest:
                yield item


async def _broadcast_join(
    ctx: Context,
    coll: Collective,
    lefts: AsyncIterator[tuple[int, TableChunk]],
    buffered: list[TableChunk],
    right_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    spec: JoinSpec,
) -> None:
    """Gather the whole right side on every rank, then join the left side as it streams.

    The backend builds the right side once and joins left chunks against it
    (`Backend.join_probe`), holding some back to join them in batches; a result
    carries the sequence number of the first left chunk it joins.
    """
    backend = ctx.backend
    local = backend.concat(buffered) if buffered else None
    if coll.nranks == 1:
        small = local
    else:
        everyone = await coll.allgather("broadcast", local)
        parts = [t for t in everyone if t is not None]
        small = backend.concat(parts) if parts else None
    if small is None:  # no rank ever saw a right chunk: no match, no right columns
        async for seq, left in lefts:
            if spec.how == "left":
                raise _unknown_side("right", right_in, spec.how)
            if spec.how == "inner":
                continue  # the result's columns are unknown
            out = left if spec.how == "anti" else backend.slice(left, 0, 0)  # semi
            await ch_out.send(ctx, Message(seq, out))
        return
    build = await ctx.to_thread(backend.join_build, small, spec)
    first_seq: int | None = None
    async for seq, left in lefts:
        if first_seq is None:
            first_seq = seq
        joined = await ctx.to_thread(backend.join_probe, build, left)
        if joined is not None:
            await ch_out.send(ctx, Message(first_seq, joined))
            first_seq = None
    rest = await ctx.to_thread(backend.join_flush, build)
    if rest is not None:
        assert first_seq is not None  # the build holds left chunks since the last result
        await ch_out.send(ctx, Message(first_seq, rest))
