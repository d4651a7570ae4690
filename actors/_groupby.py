"""groupby_agg: a streaming, multi-rank group-by with partial aggregation.

The aggregations themselves (partial, merge and finish steps) are the backend's
kernel, `Backend.aggregation`; this actor checks the spec, runs the kernel's
partial step on each chunk, exchanges partials between ranks and finishes the
groups. When a Network fuses the chain feeding it (its aggregations
decomposable), the chain's head runs the partial step inside its plan and this
actor receives partials, building the same kernel from the schema the head
publishes on the `FusionLink`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from actors._columns import predicates_over
from actors._shuffle import partition_count
from streamnet import (
    Agg,
    AggregationKernel,
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    FusionLink,
    InputSchema,
    MemoryHolder,
    Message,
    PartialAggregate,
    TableChunk,
    current_actor,
    current_actor_name,
    define_actor,
    inputs,
    map_in_threads,
    null_schema,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema, Predicate

__all__ = ["Agg", "groupby_agg"]

AggSpec = Agg | tuple[str | None, str] | tuple[str | None, str, str]


def normalise_aggs(aggs: Sequence[AggSpec] | Mapping[str, str | Sequence[str]]) -> list[Agg]:
    """Aggregations from ``[Agg(...)]``, ``[("x", "sum"), ("x", "mean", "avg_x")]`` or ``{"x": ["sum"]}``.

    ``("*", "len")`` counts rows, as ``Agg(None, "len")`` does.
    """
    return Agg.normalise(aggs, where="groupby_agg")


def _key_names(keys: object) -> list[str]:
    """Key column names from one name or a list of names; ``[]`` means one global group."""
    listed: list[object] | None = None
    if isinstance(keys, str):
        listed = [keys]
    elif isinstance(keys, Iterable) and not isinstance(keys, bytes):
        listed = list(keys)
    if listed is None or not all(isinstance(k, str) for k in listed):
        raise ValueError(
            "groupby_agg: keys must be a column name, a list of names, or [] to aggregate "
            f"the whole stream as one group; got {keys!r}"
        )
    return listed  # type: ignore[return-value]


def _check_names(keys: list[str], items: list[Agg]) -> None:
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"groupby_agg: keys {repeated} are given more than once; got keys {keys}")
    clashes = sorted({a.output for a in items} & set(keys))
    if clashes:
        raise ValueError(
            f"groupby_agg: output names {clashes} are also keys; name the aggregations with "
            f"Agg(name=...); keys are {keys}"
        )


async def _kernel(
    ctx: Context, keys: list[str], items: list[Agg], schema: ArrowSchema | None
) -> AggregationKernel:
    """The backend's kernel for an input of ``schema``.

    Making it checks that every aggregation applies to its column's type (a
    TypeError naming the actor otherwise), before any data flows.
    """
    assert schema is not None  # a chunk was seen, or the ranks agreed on one
    ordered = any(agg.follows_order for agg in items)
    actor = current_actor_name() or ""
    return await ctx.to_thread(
        ctx.backend.aggregation, keys, items, schema, ordered=ordered, actor=actor
    )


def _partial_step(keys: object, aggs: object, **_: object) -> PartialAggregate | None:
    """The partial step a fused chain may end in; None when the rows must travel (``n_unique``
    by key keeps distinct values per group) or the spec is bad (the actor raises when it runs)."""
    try:
        key_cols = _key_names(keys)
        items = normalise_aggs(aggs)  # type: ignore[arg-type]
        _check_names(key_cols, items)
    except (TypeError, ValueError):
        return None
    if key_cols and any(agg.how == "n_unique" for agg in items):
        return None
    ordered = any(agg.follows_order for agg in items)
    return PartialAggregate(tuple(key_cols), tuple(items), ordered)


def _needs(
    wanted: frozenset[str] | None, *, keys: object, aggs: object, **_: object
) -> frozenset[str] | None:
    """The columns a group-by reads: its keys and the aggregated columns, whatever is wanted."""
    try:
        items = normalise_aggs(aggs)  # type: ignore[arg-type]
        return frozenset(_key_names(keys)) | {a.column for a in items if a.column is not None}
    except (TypeError, ValueError):  # refused when it runs, with a clear error
        return None


def _emits(
    columns: Mapping[str, frozenset[str] | None], /, *, keys: object, aggs: object, **_: object
) -> frozenset[str] | None:
    """The keys and the aggregations' names."""
    try:
        return frozenset(_key_names(keys)) | {a.output for a in normalise_aggs(aggs)}  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _predicates(
    wanted: frozenset[Predicate],
    columns: Mapping[str, frozenset[str] | None],
    /,
    *,
    keys: object,
    **_: object,
) -> frozenset[Predicate]:
    """A predicate over the keys keeps or drops whole groups: it may drop their rows first."""
    try:
        return predicates_over(wanted, _key_names(keys))
    except ValueError:
        return frozenset()


def _link() -> FusionLink | None:
    """The link of a fused chain that feeds this actor partials, or None (it receives rows)."""
    node = current_actor()
    link = node.link if node is not None else None
    return link if link is not None and node is not None and link.aggregate == node.name else None


# ------------------------------------------------------------------ one global group
# keys=[]: every chunk reduces to one row of partials (a select, no grouping), the rows
# are merged on each rank, and each rank sends its single merged row to rank 0.
_MERGE_EVERY = 64  # partial rows held before they are merged into one
_MERGE_BYTES = 1 << 20  # or partial bytes (n_unique keeps distinct values) beyond this

JOINED_ROWS = 1 << 22
"""The most rows of chunks already waiting in a group-by's input that one kernel call
aggregates together (`_joined`)."""


class _Shrinking:
    """How much a kernel's partials shrink the rows they come from, so far."""

    FEW = 1 / 8
    """Partials of at most this share of their rows: few groups, worth joining chunks for."""

    def __init__(self) -> None:
        self.rows = self.partials = 0

    def saw(self, rows: int, partials: int) -> None:
        self.rows += rows
        self.partials += partials

    @property
    def much(self) -> bool:
        return self.rows > 0 and self.partials <= self.FEW * self.rows


def _partials(
    ctx: Context,
    chunks: AsyncIterator[TableChunk],
    ch_in: Channel[TableChunk],
    kernel: Callable[[], AggregationKernel | None],
) -> AsyncIterator[TableChunk]:
    """The partials of ``chunks`` (read from ``ch_in``) by the kernel ``kernel()`` gives
    (made with the first chunk), two at a time in the Context's threads; once partials
    prove to shrink their rows much, the chunks already waiting in ``ch_in`` are joined
    to the one taken (`_joined`)."""
    shrinking = _Shrinking()

    def partial_of(chunk: TableChunk) -> TableChunk:
        made = kernel()
        assert made is not None
        out = made.partial(chunk)
        shrinking.saw(chunk.num_rows, out.num_rows)
        return out

    joined = _joined(ctx, chunks, ch_in, JOINED_ROWS, shrinking)
    return map_in_threads(ctx, joined, partial_of, depth=2)


async def _joined(
    ctx: Context,
    chunks: AsyncIterator[TableChunk],
    ch_in: Channel[TableChunk],
    rows: int,
    shrinking: _Shrinking,
) -> AsyncIterator[TableChunk]:
    """``chunks`` (read from ``ch_in``), each joined with those already waiting behind it
    in ``ch_in``, up to ``rows`` rows, once partials prove to shrink rows much (few
    groups): one partial aggregation where each chunk would pay a query's fixed cost
    (1M-row chunks, 1,000 keys: about 1.3 ms of CPU in 8). Where there are about as many
    groups as rows, bigger chunks only make grouping them dearer. A chunk waits for no
    other that has not come yet."""

    def whole(batch: list[TableChunk]) -> TableChunk:
        return batch[0] if len(batch) == 1 else ctx.backend.concat(batch)

    batch: list[TableChunk] = []
    count = 0
    async for chunk in chunks:
        if batch and not chunk.schema.equals(batch[0].schema):  # joined as they are: one schema
            yield whole(batch)
            batch, count = [], 0
        batch.append(chunk)
        count += chunk.num_rows
        if count < rows and len(ch_in) > 0 and shrinking.much:
            continue  # the next one is waiting already: read it too
        yield whole(batch)
        batch, count = [], 0
    if batch:
        yield whole(batch)


async def _global_agg(
    ctx: Context,
    coll: Collective,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    items: list[Agg],
) -> CollectiveTraffic:
    """``select(aggs)`` of the whole stream: one row on rank 0, an empty chunk elsewhere."""
    report = CollectiveTraffic()
    columns = sorted({a.column for a in items if a.column is not None})
    ordered = any(agg.follows_order for agg in items)
    kernel: AggregationKernel | None = None
    schema = InputSchema(ch_in)
    link = _link()

    async def non_empty() -> AsyncIterator[TableChunk]:
        nonlocal kernel
        if link is not None:  # partials of a fused chain: the head published their input
            async for _, chunk in inputs(ctx, ch_in, where="groupby_agg"):
                if kernel is None:
                    schema.local = link.input_schema
                    kernel = await _kernel(ctx, [], items, schema.local)
                if chunk.num_rows:
                    yield chunk
            return
        async for _, chunk in inputs(
            ctx, ch_in, columns, where="groupby_agg", order=ordered, schema=schema
        ):
            if kernel is None:
                kernel = await _kernel(ctx, [], items, schema.local)
            if chunk.num_rows:  # an empty chunk adds nothing, not even a first/last
                yield chunk

    merged: TableChunk | None = None  # this rank's partials so far, merged into one row
    pending: list[TableChunk] = []
    pending_bytes = merged_bytes = 0
    parts = (
        non_empty()
        if link is not None
        else _partials(ctx, non_empty(), ch_in, lambda: kernel)
    )
    async for part in parts:
        assert kernel is not None
        pending.append(part)
        pending_bytes += part.nbytes
        report.peak_buffered_bytes = max(report.peak_buffered_bytes, merged_bytes + pending_bytes)
        if len(pending) >= _MERGE_EVERY or pending_bytes > max(merged_bytes, _MERGE_BYTES):
            rows = pending if merged is None else [merged, *pending]
            merged = await ctx.to_thread(kernel.merge, rows)
            merged_bytes, pending, pending_bytes = merged.nbytes, [], 0
    if pending:
        assert kernel is not None
        rows = pending if merged is None else [merged, *pending]
        merged = await ctx.to_thread(kernel.merge, rows)

    if link is not None:  # the rows the head aggregated (published before any chunk)
        schema.local = link.input_schema
    # The output schema, the same on every rank: Polars' own select over an empty input
    # (of Null columns when no rank saw a single chunk: then no data typed them).
    empty = await schema.agree(coll, "global")
    if kernel is None:  # the aggregations are checked on every rank, also one without input
        input_schema = empty.schema if empty is not None else null_schema(columns)
        kernel = await _kernel(ctx, [], items, input_schema)
    nothing = ctx.backend.empty(kernel.output_schema)
    if coll.rank != 0:
        if merged is not None:
            report.bytes_sent[0] = merged.nbytes
        await coll.send(0, ("global", "partial"), merged)
        out = ctx.backend.slice(nothing, 0, 0)
    else:
        received = await asyncio.gather(*[coll.recv(r, ("global", "partial")) for r in coll.peers])
        rows = []
        for peer, row in zip([coll.rank, *coll.peers], [merged, *received], strict=True):
            if row is not None:
                rows.append(row)
                if peer != coll.rank:
                    report.bytes_received[peer] = row.nbytes
        # the kernel merges the ranks' rows; without any, it gives Polars' empty answer
        partials = ctx.backend.concat(rows) if rows else ctx.backend.empty(kernel.partial_schema)
        out = await ctx.to_thread(kernel.finish, partials)
    await ch_out.send(ctx, Message(0, out))
    await ch_out.drain(ctx)
    return report


# ------------------------------------------------------------------ finishing by key
MEMORY_FANOUT = 16
"""Under a memory limit, the partitions the partials are cut into as they come (unless
``num_partitions`` says), at least: a partition is finished alone, so the partials that do
not fit wait (spilled) in pieces that each finish at once, instead of all in one partition
that is read back and cut again at the end."""
GROUPS_SHARE = 0.5
"""The share of the memory budget that finishing one partition may take: its partials,
their concatenation and the result built beside them (`Backend.working_memory` of
``"finish"``, what it reserves), while the exchanges of other actors hold the rest. A
partition whose partials need more is split again by key."""
_MAX_SPLITS = 4  # levels of splitting: a partition that will not split (one key) is finished whole
_MAX_FANOUT = 16  # parts a partition is split into at one level


class _Groups:
    """Finishes the groups of one partition: whole if its partials fit the budget's share,
    else split again by key (a finer modulus of the same hash) and finished part by part."""

    def __init__(
        self, ctx: Context, kernel: AggregationKernel, keys: list[str], holder: MemoryHolder
    ) -> None:
        self.ctx = ctx
        self.kernel = kernel
        self.keys = keys
        self.holder = holder
        share = ctx.memory.share(GROUPS_SHARE)
        self.budget_share = share or 0
        # the partials one finishing step may take
        self.share = None if share is None else ctx.backend.largest_input("finish", share)

    async def finish(
        self, pieces: list[TableChunk], number: int, modulus: int, depth: int = 0
    ) -> AsyncIterator[tuple[int, TableChunk]]:
        """The finished groups of ``pieces`` (the rows whose key hashes to ``number`` modulo
        ``modulus``), numbered by their partition in the finest modulus they were split by.

        The list is emptied as its pieces are worked on: a piece loaded from disk for a
        kernel is no longer counted in the budget, so nothing may keep it once the
        kernel is done."""
        ctx = self.ctx
        size = sum(piece.nbytes for piece in pieces if piece.num_rows)
        if self.share is None or size <= self.share or depth >= _MAX_SPLITS:
            for piece in pieces:
                self.holder.remove(piece)
            full = [piece for piece in pieces if piece.num_rows]
            pieces.clear()
            if not full:
                return
            need = ctx.backend.working_memory("finish", size)
            async with await ctx.memory.reserve(need, what="finishing groups"):
                out = await ctx.to_thread(self._finished, full)
            full.clear()  # loaded by the kernel: gone before the result waits on the channel
            yield number, out
            return
        # parts of about half the share, at most _MAX_FANOUT a level (the next splits more)
        split = min(_MAX_FANOUT, max(2, -(-size // self.share) * 2))
        finer = modulus * split
        parts: dict[int, list[TableChunk]] = {}
        holder = ctx.memory.holder("split group-by partials")
        # pieces cut together, as many as one cut may take: a part gets one piece per cut
        at_once = ctx.backend.largest_input("hash_partition", self.budget_share)
        pieces.reverse()
        while pieces:
            group: list[TableChunk] = []
            nbytes = 0
            while pieces and (not group or nbytes + pieces[-1].nbytes <= at_once):
                piece = pieces.pop()
                self.holder.remove(piece)
                if piece.num_rows:
                    group.append(piece)
                    nbytes += piece.nbytes
            if not group:
                continue
            need = ctx.backend.working_memory("hash_partition", nbytes)
            async with await ctx.memory.reserve(need, what="splitting partials", in_hand=True):
                cut = await ctx.to_thread(self._cut, group, finer)
            group.clear()  # loaded to be cut: not kept
            for part, chunk in cut.items():
                parts.setdefault(part, []).append(chunk)
                await holder.add(chunk)
            del cut
        inner = _Groups(ctx, self.kernel, self.keys, holder)
        for part in sorted(parts):
            async for item in inner.finish(parts.pop(part), part, finer, depth + 1):
                yield item

    def _cut(self, pieces: list[TableChunk], partitions: int) -> dict[int, TableChunk]:
        backend = self.ctx.backend
        whole = pieces[0] if len(pieces) == 1 else backend.concat(pieces)
        return backend.hash_partition(whole.make_available(), self.keys, partitions)

    def _finished(self, pieces: list[TableChunk]) -> TableChunk:
        for piece in pieces:
            piece.make_available()
        return self.kernel.finish_pieces(pieces)


def _check_groupby(actor: str, *, keys: object, aggs: object, **_: Any) -> None:
    """The keys and aggregations, as the node is made (the network's passes read them)."""
    key_cols = _key_names(keys)
    _check_names(key_cols, normalise_aggs(aggs))  # type: ignore[arg-type]


@define_actor(
    check=_check_groupby, collective=True, aggregate=_partial_step, columns=_needs,
    emits=_emits, predicates=_predicates,
)  # fmt: skip
async def groupby_agg(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    keys: str | Sequence[str],
    aggs: Sequence[AggSpec] | Mapping[str, str | Sequence[str]],
    *,
    num_partitions: int | None = None,
    max_buffered_bytes: int | None = None,
) -> CollectiveTraffic:
    """Group by ``keys`` and aggregate, across every rank.

    Each chunk is aggregated on arrival (partial aggregates), only the partials
    are shuffled by key, and each rank finishes the groups of the partitions it
    owns: a low-cardinality group-by sends almost nothing, a high-cardinality one
    streams. ``n_unique`` cannot be split that way, so with it the rows
    themselves (only the needed columns) are shuffled. Null keys form a group, as
    in Polars; ``first``/``last`` follow the stream's order (rank, then sequence
    number). Output groups come in no particular order; sort after if needed.

    ``keys=[]`` aggregates the whole stream as one group, as Polars'
    ``df.select(aggs)`` does: the output is exactly one row in all, sent by rank
    0, while every other rank sends one empty chunk with the same schema. Each
    chunk is reduced to one row of partials as it arrives (for ``n_unique``, its
    distinct values), each rank merges its rows into one and sends that row to
    rank 0: no rows are shuffled, and ``num_partitions`` and
    ``max_buffered_bytes`` go unused. Without any input row the row is Polars'
    answer for an empty frame (``sum``, ``count``, ``len`` and ``n_unique`` 0,
    the others null); if no rank even received a chunk, the column types are
    unknown and it is that answer for empty columns of type Null.

    A rank whose input had no chunk learns the input's schema from the other
    ranks, so every rank sends at least one chunk (possibly empty) with the
    result's schema, unless no rank had a chunk.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.
    ColumnNotFoundError
        A key or aggregated column is missing.
    ValueError
        An unknown ``how``, a repeated output name, or an output name equal to a key.
    TypeError
        An aggregation does not apply to its column's type (the ``sum`` of a
        string), or cannot be computed from partials (the ``mean`` of a Date).

    Parameters
    ----------
    keys
        Column name(s) to group by; ``[]`` for one group of the whole stream
        (``None`` is an error, so that a missing argument is not read as "no keys").
    aggs
        ``{"x": ["sum", "mean"]}``, or a list of ``("x", "sum")``,
        ``("x", "mean", "name")`` or :class:`Agg`; ``("*", "len")`` or
        ``Agg(None, "len")`` counts rows. Outputs are named ``x_sum`` unless named.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, groupby_agg
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    >>> Network(ctx, [from_polars(ctx, a, df, chunk_rows=1), groupby_agg(ctx, a, b, "k", {"v": ["sum", "max"]}), sink]).run()
    >>> sink.result().sort("k").to_dicts()
    [{'k': 'a', 'v_sum': 4, 'v_max': 3}, {'k': 'b', 'v_sum': 2, 'v_max': 2}]

    A global aggregation (``keys=[]``), also over an empty input:

    >>> def total(frame):
    ...     ctx = Context()
    ...     a, b = ctx.create_channel(), ctx.create_channel()
    ...     sink = collect(ctx, b, into="polars")
    ...     aggs = [("v", "sum"), ("v", "mean"), ("*", "len")]
    ...     Network(ctx, [from_polars(ctx, a, frame, chunk_rows=1), groupby_agg(ctx, a, b, [], aggs), sink]).run()
    ...     return sink.result().to_dicts()
    >>> total(df)
    [{'v_sum': 6, 'v_mean': 2.0, 'len': 3}]
    >>> total(df.head(0))
    [{'v_sum': 0, 'v_mean': None, 'len': 0}]
    """
    coll = Collective(ctx)
    key_cols = _key_names(keys)
    items = normalise_aggs(aggs)
    _check_names(key_cols, items)
    count = partition_count(num_partitions, coll, "groupby_agg")
    if num_partitions is None and ctx.memory.limit is not None:
        count = max(count, MEMORY_FANOUT)
    if not key_cols:
        return await _global_agg(ctx, coll, ch_in, ch_out, items)
    columns = sorted({a.column for a in items if a.column is not None})
    needed = [*key_cols, *[c for c in columns if c not in key_cols]]
    ordered = any(agg.follows_order for agg in items)
    kernel: AggregationKernel | None = None
    schema = InputSchema(ch_in)
    link = _link()

    async def received() -> AsyncIterator[TableChunk]:
        """Partials of a fused chain, as they come."""
        async for _, chunk in inputs(ctx, ch_in, where="groupby_agg"):
            yield chunk

    async def selected() -> AsyncIterator[TableChunk]:
        nonlocal kernel
        async for _, chunk in inputs(
            ctx, ch_in, needed, where="groupby_agg", order=ordered, schema=schema
        ):
            if kernel is None:
                kernel = await _kernel(ctx, key_cols, items, schema.local)
            yield chunk


    async with Exchange(
        coll, "groupby", partitions=count, max_buffered_bytes=max_buffered_bytes
    ) as ex:
        # Partials of a fused chain come as they are; rows become partials here.
        partials = (
            received()
            if link is not None
            else _partials(ctx, selected(), ch_in, lambda: kernel)
        )
        async for part in partials:
            await ex.add(part, key_cols)
        held = await ex.finish()
    if link is not None:  # the rows the head aggregated, not the partials received
        schema.local = link.input_schema
    # The result's schema, the same on every rank: Polars' own aggregation of an empty input.
    empty = await schema.agree(coll)
    if empty is None:  # no rank saw a single chunk
        await ch_out.drain(ctx)
        return coll.traffic.copy()
    if kernel is None:  # the aggregations are checked on every rank, also one without input
        kernel = await _kernel(ctx, key_cols, items, empty.schema)
    sent = False
    for partition in held.owned():
        groups = _Groups(ctx, kernel, key_cols, held.holder)
        async for number, out in groups.finish(held.pop(partition), partition, count):
            await ch_out.send(ctx, Message(number, out))
            sent = True
    if not sent:
        await ch_out.send(ctx, Message(0, ctx.backend.empty(kernel.output_schema)))
    await ch_out.drain(ctx)
    return coll.traffic.copy()  # what the statistics show: every message of the collective
