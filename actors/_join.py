"""join: broadcast or shuffle hash join across ranks, chosen from observed sizes.

Joining chunks is the backend's: `Backend.join` partition by partition after a
shuffle, `Backend.join_build` / `join_probe` / `join_flush` for a broadcast right
side. This actor reads the sides, chooses, and moves chunks through the exchange.
With a memory limit, a partition is joined by `GraceJoin` (``actors._grace``):
split again when its right side does not fit, block by block when it cannot be.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors._columns import ColumnCheck
from actors._grace import GraceFigures, GraceJoin, build_cap
from actors._hybrid import HybridJoin, resident_cap
from actors._join_optimiser import (
    JoinKeys,
    Side,
    join_emits,
    join_matches,
    join_needs,
    join_predicates,
)
from actors._shuffle import key_list, partition_count
from actors._typing import JoinHow, JoinMethod, JoinStrategy
from streamnet import (
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    JoinBuild,
    JoinSpec,
    MemoryHolder,
    Message,
    Partitions,
    SchemaError,
    TableChunk,
    current_actor,
    current_actor_name,
    define_actor,
    inputs,
)

__all__ = ["BROADCAST_THRESHOLD", "JoinReport", "join"]

BROADCAST_THRESHOLD = 64 * 2**20
"""``strategy="auto"`` broadcasts the right side when all ranks together hold at most this many bytes of it."""

_BROADCASTABLE = ("inner", "left", "semi", "anti")
_FIRST_FANOUT = 16
"""Partitions of a single-rank join under a memory limit whose right side does not fit."""


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
    partitions: int = 0
    """Partitions joined on this rank (0 for a broadcast); under a memory limit a
    partition split again counts by its parts."""
    repartitioned: int = 0
    """Partitions split again (with another hash) because their right side did not fit
    in the memory budget's build share."""
    blocked: int = 0
    """Partitions joined block by block: their right side did not fit and could not be
    split (one key repeated)."""
    levels: int = 0
    """How deep partitions were split again (0: not at all)."""
    spilled_bytes: int = field(default=0, compare=False)
    """Bytes of the join's chunks spilled to disk (by the join, or by the memory budget
    for another actor)."""
    built: Side = "right"
    """The side a broadcast held whole: the right one, or, for an inner join on one rank
    whose left side was read whole before its right side, the left one (the right side
    then streamed against it)."""

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


def _check_join(
    actor: str, *, on: object = None, left_on: object = None, right_on: object = None,
    how: object = "inner", suffix: object = "_right", strategy: object = "auto",
    broadcast_threshold: object = BROADCAST_THRESHOLD, num_partitions: object = None,
    **_: Any,
) -> None:  # fmt: skip
    """The join's arguments, as its node is made (the network's passes read its keys)."""
    listed: dict[str, list[object]] = {}
    for name, keys in (("on", on), ("left_on", left_on), ("right_on", right_on)):
        if keys is None:
            continue
        listed[name] = [keys] if isinstance(keys, str) else list(keys) if isinstance(keys, Iterable) else []
        if not listed[name] or not all(isinstance(k, str) for k in listed[name]):
            raise TypeError(
                f"actor `{actor}`: `{name}` must be a column name or a non-empty list of names, "
                f"got {keys!r}"
            )
    if "on" in listed and ("left_on" in listed or "right_on" in listed):
        raise ValueError(f"actor `{actor}`: give `on`, or `left_on` and `right_on`, not both")
    if "on" not in listed and not ("left_on" in listed and "right_on" in listed):
        raise ValueError(
            f"actor `{actor}`: give the keys with `on`, or with `left_on` and `right_on`"
        )
    if "on" not in listed and len(listed["left_on"]) != len(listed["right_on"]):
        raise ValueError(
            f"actor `{actor}`: `left_on` {listed['left_on']} and `right_on` "
            f"{listed['right_on']} differ in length"
        )
    if not isinstance(suffix, str):
        raise TypeError(f"actor `{actor}`: `suffix` must be a string, got {suffix!r}")
    if how not in ("inner", "left", "right", "full", "semi", "anti"):
        raise ValueError(
            f"actor `{actor}`: `how` must be inner, left, right, full, semi or anti, got {how!r}"
        )
    if strategy not in ("auto", "broadcast", "shuffle"):
        raise ValueError(
            f"actor `{actor}`: `strategy` must be auto, broadcast or shuffle, got {strategy!r}"
        )
    if strategy == "broadcast" and how not in _BROADCASTABLE:
        raise ValueError(
            f"actor `{actor}`: how={how!r} cannot broadcast the right side (its unmatched right "
            "rows would repeat on every rank); use strategy='shuffle' or 'auto'"
        )
    if type(broadcast_threshold) is not int or broadcast_threshold < 0:
        raise ValueError(
            f"actor `{actor}`: `broadcast_threshold` must be an int >= 0 (bytes), "
            f"got {broadcast_threshold!r}"
        )
    if num_partitions is not None and (type(num_partitions) is not int or num_partitions < 1):
        raise ValueError(
            f"actor `{actor}`: `num_partitions` must be an int >= 1, got {num_partitions!r}"
        )


@define_actor(
    check=_check_join, collective=True, columns=join_needs, emits=join_emits,
    predicates=join_predicates, matches=join_matches,
)  # fmt: skip
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
    broadcasts, otherwise it shuffles. On one rank without a memory limit, an
    inner join whose left side ends while its right side is still coming builds
    the left side instead, and joins each right chunk as it arrives (a small table
    joined with a large one written on its right; ``JoinReport.built``). Column
    names found on both sides get ``suffix`` as in Polars; null keys never match.

    Under a memory limit (``Context(memory_limit=...)``) it is a grace hash join
    when the right side does not fit in what one step of it joins at once (about a
    ninth of the budget on the CPU, `actors._grace.build_cap`; summed over ranks
    for a broadcast): on one rank
    both sides are hash-partitioned (16 partitions unless ``num_partitions``
    says), on several the shuffle's partitions are used, and the pieces wait in
    the budget, spilled when it is short. Each partition is joined alone, under a
    reservation of its working memory; one whose right side still does not fit
    is split again with another hash, and one that cannot be split (a key
    repeated on most rows) is joined block by block, never all at once. The
    result streams out partition by partition; `JoinReport` says what was done
    (strategy ``"grace"``, partitions, spilled bytes). Without a limit nothing
    of this runs.

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
    coll = Collective(ctx)  # the arguments were checked as the node was made (`_check_join`)
    if on is not None:
        lkeys = rkeys = key_list(on, "join")
    else:
        assert left_on is not None
        assert right_on is not None
        lkeys, rkeys = key_list(left_on, "join"), key_list(right_on, "join")
    spec = JoinSpec(tuple(lkeys), tuple(rkeys), how, suffix)
    count = partition_count(num_partitions, coll, "join")
    left_schema, right_schema = InputSchema(left_in), InputSchema(right_in)
    rights = inputs(ctx, right_in, rkeys, where="join right keys", schema=right_schema)
    # Under a memory limit, the right side a rank joins at once: beyond it, a grace join
    # (on one rank a hybrid one while the right side can stay in memory).
    build_share = build_cap(ctx)
    resident = resident_cap(ctx) if num_partitions is None else None
    actor = current_actor_name()
    spilled_before = _spilled(ctx, actor)
    holders: list[MemoryHolder] = []  # cleared on the way out: nothing stays counted
    # The keys of a side read whole, for the sources of the other side (a Network's key
    # filters): they wait for them. On several ranks only the right side's: every rank
    # reads its share of it whole before the ranks agree on a strategy, so their keys
    # are gathered there; the left side is read in the background, and gives none.
    node = current_actor()
    key_sets = node.key_sets if node is not None else {}
    left_keys, right_keys = JoinKeys(ctx, key_sets.get("left_in")), JoinKeys(ctx, key_sets.get("right_in"))
    if coll.nranks > 1:
        left_keys.abandon()
    coming: asyncio.Future[tuple[int, TableChunk] | None] | None = None  # a right chunk
    try:
        # The left side is buffered while the right side is read, so a join whose two inputs
        # come from one upstream (a fanout: a self-join) cannot deadlock. Under a memory
        # limit, buffered left chunks beyond the threshold go to disk; without one they stay
        # (as the right side read whole does): a left side read whole first, for its keys
        # (key filters), went to disk and back in TPC-H Q9, 0.7 GB at SF 10.
        spill_beyond = None if ctx.memory.limit is None else broadcast_threshold
        early = _LeftBuffer(ctx, left_in, left_schema, spill_beyond=spill_beyond, keys=left_keys)
        holders.append(early.holder)
        right_holder = ctx.memory.holder("join right side")
        holders.append(right_holder)
        buffering = asyncio.ensure_future(early.fill())
        try:
            # Read the right side first, up to the threshold (all of it when broadcasting is
            # forced, or with a single rank, where "broadcasting" moves nothing), and under a
            # memory limit up to the build share (on one rank, what can stay in memory).
            buffered: list[TableChunk] = []
            right_seqs: list[int] = []  # the buffered chunks' sequence numbers
            size = 0
            ended = False
            # An inner join on one rank streams whichever side is not read whole: once the
            # left side has ended while the right one goes on, the left one is built.
            swappable = (
                strategy == "auto" and how == "inner" and coll.nranks == 1 and build_share is None
            )
            build_left = False
            cap: int | None = None  # read all
            if strategy == "auto":
                if coll.nranks == 1 and how in _BROADCASTABLE:
                    cap = resident if resident is not None else build_share
                elif build_share is None:
                    cap = broadcast_threshold
                else:
                    cap = min(broadcast_threshold, build_share)
            if strategy != "shuffle":
                while cap is None or size <= cap:
                    if swappable and not buffering.done():
                        # the next right chunk, or the left side's end, whichever comes first
                        coming = coming or asyncio.ensure_future(anext(rights, None))
                        either: set[asyncio.Future[Any]] = {coming, buffering}
                        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                        if not coming.done():
                            if buffering.exception() is None and early.chunks:
                                build_left = True
                                break
                            continue  # a failed or empty left side: the right side as ever
                        item, coming = coming.result(), None
                    elif coming is not None:
                        item, coming = await coming, None
                    else:
                        item = await anext(rights, None)
                    if item is None:
                        ended = True
                        break
                    buffered.append(item[1])
                    right_seqs.append(item[0])
                    size += item[1].nbytes
                    await right_keys.add(item[1])
                    await right_holder.add(item[1])
                    if swappable and early.ended and early.chunks:
                        build_left = True
                        break
            if coll.nranks == 1 and ended:
                await right_keys.publish()
            # Every rank's keys (on several ranks) and build share go with its size: every
            # rank takes this one step, whatever key sets its Network gave it, and the ranks
            # decide on a broadcast by the smallest build share.
            mine = await right_keys.values() if coll.nranks > 1 and ended else None
            gathered = await coll.allgather("size", (size, ended, mine, build_share))
            sizes = [(s, e) for s, e, _, _ in gathered]
            shares = [share for _, _, _, share in gathered if share is not None]
            smallest_share = min(shares) if shares else None
            if coll.nranks > 1 and all(e for _, e in sizes):  # every rank read its share whole
                await right_keys.publish_gathered([v for _, _, v, _ in gathered])
            right_keys.abandon()  # not read whole: the left side's sources read everything
        finally:
            buffering.cancel()
            await asyncio.gather(buffering, return_exceptions=True)
            left_keys.abandon()  # not read whole (or published): the right's sources read all
        if buffering.done() and not buffering.cancelled() and buffering.exception() is not None:
            raise buffering.exception()  # type: ignore[misc]
        if build_left:
            for chunk in buffered:
                right_holder.remove(chunk)
            received = list(zip(right_seqs, buffered, strict=True))
            buffered.clear()
            rest = _then(received, coming, rights)
            await _left_built_join(ctx, early.take(lkeys), rest, ch_out, spec)
            await ch_out.drain(ctx)
            return JoinReport(
                "broadcast",
                size,
                None,
                None,
                coll.traffic.copy(),
                spilled_bytes=_spilled(ctx, actor) - spilled_before,
                built="left",
            )
        lefts = early.replay_then(
            inputs(ctx, left_in, lkeys, where="join left keys", schema=left_schema), lkeys
        )
        total = sum(s for s, _ in sizes)
        everywhere = all(e for _, e in sizes)  # the whole right side was read
        broadcast = strategy == "broadcast" or (
            strategy == "auto"
            and how in _BROADCASTABLE
            and everywhere
            and (coll.nranks == 1 or total <= broadcast_threshold)
            and (smallest_share is None or total <= smallest_share)
        )
        if broadcast:
            right_agreed = await right_schema.agreed_schema(coll, "right")
            for chunk in buffered:
                right_holder.remove(chunk)
            sent = await _broadcast_join(ctx, coll, lefts, buffered, right_in, ch_out, spec)
            # The left side streamed through; its ranks must agree on its schema as well, or
            # each would have sent results of another schema.
            left_empty = await left_schema.agree(coll, "left")
            if not sent:  # no left chunk here: the result's schema still
                right_empty = None if right_agreed is None else ctx.backend.empty(right_agreed)
                await _send_empty_result(ctx, ch_out, left_empty, right_empty, spec)
            await ch_out.drain(ctx)
            return JoinReport(
                "broadcast",
                total,
                None,
                None,
                coll.traffic.copy(),
                spilled_bytes=_spilled(ctx, actor) - spilled_before,
            )
        if (
            strategy == "auto"
            and coll.nranks == 1
            and how in _BROADCASTABLE
            and everywhere
            and resident is not None
            and total <= resident
        ):
            # one rank, a right side that stays in memory: the left side streams against it
            right_empty = await right_schema.agree(coll, "right")
            for chunk in buffered:
                right_holder.remove(chunk)
            report = await _hybrid_join(
                ctx, coll, spec, lefts, buffered, right_empty, ch_out, holders, total,
                spilled=lambda: _spilled(ctx, actor) - spilled_before,
            )  # fmt: skip
            await left_schema.agreed_schema(coll, "left")
            await ch_out.drain(ctx)
            return report
        # Under a memory limit, a single rank's exchange is the grace join's first partitioning.
        first_pass = (
            build_share is not None
            and num_partitions is None
            and coll.nranks == 1
            and not (everywhere and total <= build_share)
        )
        if first_pass:
            count = _FIRST_FANOUT

        async def exchanged(
            phase: str, chunks: AsyncIterator[TableChunk], keys: list[str]
        ) -> Partitions:
            async with Exchange(
                coll, phase, partitions=count, max_buffered_bytes=max_buffered_bytes
            ) as ex:
                holders.append(ex.held.holder)  # its pieces, once taken, are the join's
                async for chunk in chunks:
                    await ex.add(chunk, keys)
                return await ex.finish()

        async def right_stream() -> AsyncIterator[TableChunk]:
            while buffered:
                chunk = buffered.pop(0)
                right_holder.remove(chunk)
                yield chunk
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
        if build_share is not None:
            return await _grace_join(
                ctx, coll, spec, left_held, right_held, left_empty, right_empty, ch_out, holders,
                strategy="grace" if first_pass else "shuffle",
                right_bytes=total,
                spilled=lambda: _spilled(ctx, actor) - spilled_before,
            )  # fmt: skip
        sent = False
        joined = 0
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
            joined += 1
        if not sent:
            await _send_empty_result(ctx, ch_out, left_empty, right_empty, spec)
        await ch_out.drain(ctx)
        return JoinReport(
            "shuffle",
            total,
            left_held.report,
            right_held.report,
            coll.traffic.copy(),
            partitions=joined,
            spilled_bytes=_spilled(ctx, actor) - spilled_before,
        )
    finally:
        if coming is not None and not coming.done():  # a failure before it was read
            coming.cancel()
            await asyncio.gather(coming, return_exceptions=True)
        left_keys.abandon()
        right_keys.abandon()
        for holder in holders:
            holder.clear()


async def _grace_join(
    ctx: Context,
    coll: Collective,
    spec: JoinSpec,
    left_held: Partitions,
    right_held: Partitions,
    left_empty: TableChunk | None,
    right_empty: TableChunk | None,
    ch_out: Channel[TableChunk],
    holders: list[MemoryHolder],
    *,
    strategy: JoinMethod,
    right_bytes: int,
    spilled: Callable[[], int],
) -> JoinReport:
    """Join the owned partitions one by one under the memory budget (`GraceJoin`); the
    results are numbered in the order they are sent."""
    numbers = itertools.count()
    sent = False

    async def emit(out: TableChunk) -> None:
        nonlocal sent
        await ch_out.send(ctx, Message(next(numbers), out))
        sent = True

    grace = GraceJoin(ctx, spec, left_empty, right_empty, emit)
    holders.append(grace.held)
    for partition in left_held.owned():
        left = await grace.hold(left_held.take_pieces(partition))
        right = await grace.hold(right_held.take_pieces(partition))
        await grace.join(left, right)
    if not sent:
        await _send_empty_result(ctx, ch_out, left_empty, right_empty, spec)
    await ch_out.drain(ctx)
    figures: GraceFigures = grace.figures
    if figures.repartitioned or figures.blocked:
        strategy = "grace"
    return JoinReport(
        strategy,
        right_bytes,
        left_held.report,
        right_held.report,
        coll.traffic.copy(),
        partitions=figures.partitions,
        repartitioned=figures.repartitioned,
        blocked=figures.blocked,
        levels=figures.levels,
        spilled_bytes=spilled(),
    )


async def _hybrid_join(
    ctx: Context,
    coll: Collective,
    spec: JoinSpec,
    lefts: AsyncIterator[tuple[int, TableChunk]],
    right: list[TableChunk],
    right_empty: TableChunk | None,
    ch_out: Channel[TableChunk],
    holders: list[MemoryHolder],
    right_bytes: int,
    *,
    spilled: Callable[[], int],
) -> JoinReport:
    """Join on one rank with the right side's partitions in memory and the left side
    streamed against them (`HybridJoin`); results numbered in the order they are sent."""
    numbers = itertools.count()
    sent = False

    async def emit(out: TableChunk) -> None:
        nonlocal sent
        await ch_out.send(ctx, Message(next(numbers), out))
        sent = True

    hybrid = HybridJoin(ctx, spec, right_empty, emit)
    holders += [hybrid.held, hybrid.right_held]
    left_empty: TableChunk | None = None
    try:
        await hybrid.build(right)
        async for _, chunk in lefts:
            if left_empty is None:
                left_empty = ctx.backend.slice(chunk, 0, 0)
            await hybrid.probe(chunk)
            del chunk
        await hybrid.finish()
    finally:
        hybrid.release()
    if not sent:
        await _send_empty_result(ctx, ch_out, left_empty, right_empty, spec)
    figures = hybrid.grace.figures
    return JoinReport(
        "hybrid",
        right_bytes,
        None,
        None,
        coll.traffic.copy(),
        partitions=hybrid.partitions,
        repartitioned=figures.repartitioned,
        blocked=figures.blocked,
        levels=figures.levels,
        spilled_bytes=spilled(),
    )


def _spilled(ctx: Context, actor: str | None) -> int:
    """Bytes of ``actor``'s chunks spilled so far."""
    figures = ctx.memory.statistics().actors.get(actor or "")
    return 0 if figures is None else figures.spilled


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


async def _send_empty_result(
    ctx: Context, ch_out: Channel[TableChunk], left: TableChunk | None,
    right: TableChunk | None, spec: JoinSpec,
) -> None:  # fmt: skip
    """Send the join's empty result, for a rank that sent nothing, if its schema is known."""
    if left is not None and right is not None:
        empty = ctx.backend.join(left, right, spec)
    elif left is not None and spec.how in ("semi", "anti"):  # no right chunk: the left schema
        empty = left
    else:
        return
    await ch_out.send(ctx, Message(0, empty))


class _LeftBuffer:
    """Left chunks received while the right side is being read, spilled beyond a bound
    (None: none)."""

    def __init__(
        self,
        ctx: Context,
        channel: Channel[TableChunk],
        schema: InputSchema,
        *,
        spill_beyond: int | None,
        keys: JoinKeys,
    ) -> None:
        self.ctx = ctx
        self.channel = channel
        self.schema = schema
        self.spill_beyond = spill_beyond
        self.keys = keys
        self.chunks: list[tuple[int, TableChunk]] = []
        self.holder = ctx.memory.holder("join left buffer")
        self.ended = False

    async def fill(self) -> None:
        """Receive until cancelled or the stream ends (a cancelled receive loses nothing)."""
        while (msg := await self.channel.recv(self.ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            self.schema.seen(chunk)
            self.chunks.append((msg.sequence_number, chunk))
            await self.keys.add(chunk)
            await self.holder.add(chunk)
            if self.spill_beyond is not None and self.holder.resident > self.spill_beyond:
                await self.holder.spill_down_to(self.spill_beyond)
        self.ended = True
        await self.keys.publish()

    def take(self, keys: list[str]) -> list[TableChunk]:
        """The chunks of a left side read whole (`ended`), no longer held."""
        check = ColumnCheck(keys, where="join left keys")
        chunks = [chunk for _, chunk in self.chunks]
        for chunk in chunks:
            self.holder.remove(chunk)
            check.chunk(chunk)
        self.chunks.clear()
        return chunks

    async def replay_then(
        self, rest: AsyncIterator[tuple[int, TableChunk]], keys: list[str]
    ) -> AsyncIterator[tuple[int, TableChunk]]:
        """The buffered chunks, then the rest of the stream."""
        check = ColumnCheck(keys, where="join left keys")
        for seq, chunk in self.chunks:
            self.holder.remove(chunk)
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
) -> bool:
    """Gather the whole right side on every rank, then join the left side as it streams.

    The backend builds the right side once and joins left chunks against it
    (`Backend.join_probe`), holding some back to join them in batches; a result
    carries the sequence number of the first left chunk it joins. Whether it sent any.
    """
    backend = ctx.backend
    local = await ctx.to_thread(backend.concat, buffered) if buffered else None
    if coll.nranks == 1:
        small = local
    else:
        everyone = await coll.allgather("broadcast", local)
        parts = [t for t in everyone if t is not None]
        small = await ctx.to_thread(backend.concat, parts) if parts else None
    if small is None:  # no rank ever saw a right chunk: no match, no right columns
        sent = False
        async for seq, left in lefts:
            if spec.how == "left":
                raise _unknown_side("right", right_in, spec.how)
            if spec.how == "inner":
                continue  # the result's columns are unknown
            out = left if spec.how == "anti" else backend.slice(left, 0, 0)  # semi
            await ch_out.send(ctx, Message(seq, out))
            sent = True
        return sent
    build = await ctx.to_thread(backend.join_build, small, spec)
    return await _probed(ctx, build, lefts, ch_out)


async def _left_built_join(
    ctx: Context,
    lefts: list[TableChunk],
    rights: AsyncIterator[tuple[int, TableChunk]],
    ch_out: Channel[TableChunk],
    spec: JoinSpec,
) -> None:
    """An inner join on one rank whose left side was read whole while the right side was
    still coming: the left side is built once and the right side streams against it, so
    the join's results flow while the right side is read (a small table joined with a
    large one written on its right)."""
    backend = ctx.backend
    left = await ctx.to_thread(backend.concat, lefts) if len(lefts) > 1 else lefts[0]
    build = await ctx.to_thread(backend.join_build, left, spec, side="left")
    await _probed(ctx, build, rights, ch_out)


async def _probed(
    ctx: Context,
    build: JoinBuild,
    stream: AsyncIterator[tuple[int, TableChunk]],
    ch_out: Channel[TableChunk],
) -> bool:
    """Join the chunks of ``stream`` against ``build`` and send the results; the backend
    holds some back to join them in batches, and a result carries the sequence number of
    the first chunk it joins. Whether it sent any."""
    backend = ctx.backend
    first_seq: int | None = None
    sent = False
    async for seq, chunk in stream:
        if first_seq is None:
            first_seq = seq
        joined = await ctx.to_thread(backend.join_probe, build, chunk)
        if joined is not None:
            await ch_out.send(ctx, Message(first_seq, joined))
            first_seq, sent = None, True
    rest = await ctx.to_thread(backend.join_flush, build)
    if rest is not None:
        assert first_seq is not None  # the build holds chunks since the last result
        await ch_out.send(ctx, Message(first_seq, rest))
        sent = True
    return sent


async def _then(
    first: Sequence[tuple[int, TableChunk]],
    coming: asyncio.Future[tuple[int, TableChunk] | None] | None,
    rest: AsyncIterator[tuple[int, TableChunk]],
) -> AsyncIterator[tuple[int, TableChunk]]:
    """The items of ``first``, then the one ``coming`` gives (None: the end), then those of
    ``rest``."""
    for item in first:
        yield item
    if coming is not None:
        last = await coming
        if last is None:
            return
        yield last
    async for item in rest:
        yield item
