"""sort and top_k: a global sort by sampled range partitioning, and its cheap special case.

Sampling, boundaries, range partitioning, sorting a chunk and merging sorted runs
are the backend's (`Backend.sample`, `range_boundaries`, `range_partition`,
`sort`, `merge_sorted`, `top_k`); these actors move the chunks between ranks and
decide how much memory each step may take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence

from actors._columns import needs_with, passes_predicates, same_columns
from actors._memory import DEFAULT_CHUNK_ROWS
from actors._shuffle import key_list
from streamnet import (
    Backend,
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    Exchange,
    InputSchema,
    KernelKind,
    Message,
    Partitions,
    SortOrder,
    TableChunk,
    define_actor,
    inputs,
)

__all__ = ["sort", "top_k"]

SAMPLES_PER_CHUNK = 128

SORT_SHARE = 3 / 8
"""The share of the memory budget that sorting one run may take: the run's pieces, their
concatenation and the sorted copy (`Backend.working_memory` of ``"sort"``, about three
times the run's bytes), which is what it reserves. A run holds what fits in that (about an
eighth of the budget on the CPU): two runs sorted at once, by two sort actors of one
Context, take three quarters of the budget, and the rest is left to what other actors
hold, while the runs already sorted wait on disk if need be."""

MERGE_SHARE = 1 / 4
"""The merge's working memory, as a share of the budget: a slice of every run, their sort
and the chunk it sends out (`Backend.working_memory` of ``"merge"``, per byte of the
slices)."""


def _flags(value: bool | Sequence[bool], keys: list[str], name: str) -> list[bool]:
    if isinstance(value, bool):
        return [value] * len(keys)
    flags = list(value)
    if len(flags) != len(keys) or not all(isinstance(f, bool) for f in flags):
        raise ValueError(f"sort: `{name}` must be a bool or one bool per key {keys}, got {value!r}")
    return flags


def _own_range(partition: int, nranks: int) -> int:
    return partition  # one range per rank, in rank order


def _bound(
    ctx: Context, share: float, max_buffered_bytes: int | None, kind: KernelKind | None = None
) -> int | None:
    """The bytes a step may take: ``share`` of the budget (for a kernel of ``kind``, the
    input whose working memory fits in it), and at most half of ``max_buffered_bytes``;
    None when neither bounds it."""
    budget = ctx.memory.share(share)
    if budget is not None and kind is not None:
        budget = ctx.backend.largest_input(kind, budget)
    bounds = [budget]
    if max_buffered_bytes is not None:
        bounds.append(max(1, max_buffered_bytes // 2))
    known = [b for b in bounds if b is not None]
    return min(known) if known else None


def _sorted_run(backend: Backend, pieces: list[TableChunk], order: SortOrder) -> TableChunk:
    return backend.sort(backend.concat(pieces), order)  # loads the pieces that were spilled


class _Runs(Partitions):
    """What one rank sorts: pieces of its range, gathered into sorted runs.

    Pieces (the input chunks on one rank; the pieces the exchange delivers on
    several) are held until they make ``run_bytes``; then they are sorted
    together into a run, held too. Everything is held in the budget, which
    spills the runs and the pieces when it is short (and beyond
    ``max_buffered_bytes`` this sort's own largest are spilled). Without a bound
    all the pieces make one run, sorted at the end. The actor's reservations go
    one at a time (`reserving`): a second one of the same actor would fail,
    not wait, for lack of memory only the first could give back.
    """

    def __init__(
        self,
        ctx: Context,
        order: SortOrder,
        *,
        run_bytes: int | None,
        max_buffered_bytes: int | None,
        traffic: CollectiveTraffic,
    ) -> None:
        super().__init__(ctx, [ctx.rank], max_buffered_bytes, traffic, what="sort runs")
        self.order = order
        self.run_bytes = run_bytes
        self.pending: list[TableChunk] = []
        self.pending_bytes = 0
        self.inputs: list[TableChunk] = []
        self.runs: list[TableChunk] = []
        self.working = asyncio.Lock()

    async def hold(self, chunk: TableChunk) -> None:
        """Keep ``chunk`` in the budget (spillable)."""
        await self.holder.add(chunk)
        self._held()
        if self.max_buffered_bytes is not None and self.holder.resident > self.max_buffered_bytes:
            await self.holder.spill_down_to(self.max_buffered_bytes)
        self._count_spilled()

    async def add(self, partition: int, piece: TableChunk) -> None:
        """Hold ``piece`` until it and the pieces before it make a run (a run of the pieces
        before it first, if it would not fit in theirs)."""
        if not piece.num_rows:
            return
        if self.run_bytes is not None:
            await self.flush(beyond=self.run_bytes - piece.nbytes)
        self.pending.append(piece)
        self.pending_bytes += piece.nbytes
        await self.hold(piece)
        if self.run_bytes is not None:
            await self.flush(beyond=self.run_bytes - 1)  # a run's worth, or one larger piece

    async def flush(self, *, beyond: int | None = None) -> None:
        """Sort the pieces held into a run if they hold more than ``beyond`` bytes (all
        of them if None)."""
        async with self.working:
            if beyond is not None and self.pending_bytes <= beyond:
                return  # too few (or another flush took them meanwhile)
            pieces, self.pending, self.pending_bytes = self.pending, [], 0
            if not pieces:
                return
            for piece in pieces:
                self.holder.remove(piece)  # counted by the reservation now
            nbytes = sum(piece.nbytes for piece in pieces)
            need = self.ctx.backend.working_memory("sort", nbytes)
            async with await self._reserve(need, "sorting a run"):
                run = await self.ctx.to_thread(_sorted_run, self.ctx.backend, pieces, self.order)
            del pieces
            self.runs.append(run)
            await self.hold(run)

    @contextlib.asynccontextmanager
    async def reserving(self, nbytes: int, what: str) -> AsyncIterator[None]:
        """Working memory for one step of the actor's, after its other steps."""
        async with self.working, await self._reserve(nbytes, what):
            yield

    async def _reserve(
        self, nbytes: int, what: str
    ) -> contextlib.AbstractAsyncContextManager[object]:
        # Never more than the whole budget: what is reserved is data in memory already
        # (a piece larger than the budget is sorted with all of it).
        return await self.ctx.memory.reserve(nbytes, what=what, in_hand=True)

    def release(self) -> None:
        """Nothing is held any more (at the end, or on the way out of a failure)."""
        self.holder.clear()
        self.pending, self.inputs, self.runs = [], [], []
        self._count_spilled()


def _sort_needs(
    wanted: frozenset[str] | None, *, by: str | Sequence[str], **_: object
) -> frozenset[str] | None:
    return needs_with(wanted, [by] if isinstance(by, str) else by)


@define_actor(
    collective=True, columns=_sort_needs, emits=same_columns, predicates=passes_predicates
)
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
    outputs in rank order, each in sequence order, gives the global order
    (``allgather`` does). Ties keep no particular order. Each rank numbers its
    chunks 0, 1, 2...; a rank whose range is empty sends one empty chunk with the
    stream's schema (learnt from the other ranks if its own input had no chunk).

    Memory: without a bound, each rank sorts its range at once and sends it as
    one chunk. Under a memory budget (``Context(memory_limit=...)``) or with
    ``max_buffered_bytes``, the sort is external: the pieces of a rank's range
    are sorted in runs of at most an eighth of the budget (half of
    ``max_buffered_bytes``) as they arrive, the budget spills the runs to disk
    when it is short, and a k-way merge that reads a slice of every run at a
    time sends the range out in chunks of at most 100,000 rows (fewer under a
    small budget). With several ranks the input is held (and spilled) until the
    ranks agree on the ranges. ``max_buffered_bytes`` bounds what this sort
    holds in memory; beyond it, its largest pieces and runs spill.

    Raises
    ------
    SchemaError
        The ranks' inputs differ in schema.
    ColumnNotFoundError
        A chunk lacks a key column.
    MemoryLimitError
        A step's working memory can never fit in the budget.

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
    run_bytes = _bound(ctx, SORT_SHARE, max_buffered_bytes, "sort")
    runs = _Runs(
        ctx, order, run_bytes=run_bytes, max_buffered_bytes=max_buffered_bytes,
        traffic=coll.traffic,
    )  # fmt: skip
    schema = InputSchema(ch_in)
    try:
        if coll.nranks == 1:  # no ranges: the input goes into runs as it comes
            async for _, chunk in inputs(ctx, ch_in, keys, where="sort keys", schema=schema):
                await runs.add(ctx.rank, chunk)
            empty = await schema.agree(coll)
        else:
            empty = await _exchange_ranges(ctx, coll, ch_in, runs, schema, max_buffered_bytes)
        if empty is not None:
            await runs.flush()
            merge_bytes = _bound(ctx, MERGE_SHARE, max_buffered_bytes)
            await _send_sorted(ctx, ch_out, runs, empty, merge_bytes)
    finally:
        runs.release()
    await ch_out.drain(ctx)
    return coll.traffic.copy()  # what the statistics show: every message of the collective


async def _exchange_ranges(
    ctx: Context,
    coll: Collective,
    ch_in: Channel[TableChunk],
    runs: _Runs,
    schema: InputSchema,
    max_buffered_bytes: int | None,
) -> TableChunk | None:
    """Hold the input, agree on the ranges, and send each range's rows to its rank, whose
    `_Runs` gather them; the empty chunk of the stream's schema (None: no rank had input)."""
    backend = ctx.backend
    order = runs.order
    keys = list(order.keys)
    samples: list[TableChunk] = []
    async for _, chunk in inputs(ctx, ch_in, keys, where="sort keys", schema=schema):
        samples.append(backend.sample(chunk, keys, SAMPLES_PER_CHUNK, seed=len(samples) + 1))
        runs.inputs.append(chunk)
        await runs.hold(chunk)
    empty = await schema.agree(coll)
    if empty is None:  # no rank saw a chunk
        return None
    local = backend.concat(samples) if samples else None
    gathered = await coll.allgather("samples", local)
    all_samples = backend.concat([t for t in gathered if t is not None])
    bounds = await ctx.to_thread(backend.range_boundaries, all_samples, order, coll.nranks)
    async with Exchange(
        coll, "sort", partitions=coll.nranks, owner=_own_range,
        max_buffered_bytes=max_buffered_bytes, into=runs,
    ) as ex:  # fmt: skip
        held = runs.inputs
        held.reverse()
        while held:
            chunk = held.pop()
            runs.holder.remove(chunk)
            need = backend.working_memory("range_partition", chunk.nbytes)
            async with runs.reserving(need, "cutting a chunk by range"):
                pieces = await ctx.to_thread(backend.range_partition, chunk, bounds, order)
            del chunk
            await ex.add_partitioned(pieces)
        await ex.finish()
    return empty


async def _send_sorted(
    ctx: Context,
    ch_out: Channel[TableChunk],
    runs: _Runs,
    empty: TableChunk,
    merge_bytes: int | None,
) -> None:
    """Send this rank's range in order: its one run as it is without a bound, else the
    merge of its runs in chunks; an empty range as ``empty``."""
    sorted_runs = runs.runs
    if not sorted_runs:
        await ch_out.send(ctx, Message(0, empty))  # an empty range still sends the schema
        return
    if merge_bytes is None:  # unbounded: one run, sorted at once
        (run,) = sorted_runs
        await ch_out.send(ctx, Message(0, run))
        return
    rows = sum(run.num_rows for run in sorted_runs)
    row_bytes = max(1.0, sum(run.nbytes for run in sorted_runs) / rows)
    slices = ctx.backend.largest_input("merge", merge_bytes)  # a slice of every run at once
    out_rows = max(1, min(DEFAULT_CHUNK_ROWS, int(slices / row_bytes)))
    slice_rows = max(1, int(slices / (len(sorted_runs) * row_bytes)))
    merged = ctx.backend.merge_sorted(sorted_runs, runs.order, rows=out_rows, slice_rows=slice_rows)
    try:
        seq = 0
        while True:
            async with runs.reserving(merge_bytes, "merging sorted runs"):
                out = await ctx.to_thread(next, merged, None)
            if out is None:
                break
            await ch_out.send(ctx, Message(seq, out))
            seq += 1
    finally:
        _close(merged)


def _close(merged: Iterator[TableChunk]) -> None:
    """Close the merge early (its files with it), unless a kernel thread still runs it
    (a cancelled step): then it closes once collected."""
    close = getattr(merged, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):  # "generator already executing"
            close()


@define_actor(collective=True, columns=_sort_needs, emits=same_columns)  # a barrier to predicates
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

    def best(*chunks: TableChunk) -> TableChunk:  # in a kernel: the concat copies the rows
        whole = chunks[0] if len(chunks) == 1 else ctx.backend.concat(list(chunks))
        return ctx.backend.top_k(whole, order, k)

    kept: TableChunk | None = None
    schema = InputSchema(ch_in)
    async for _, chunk in inputs(ctx, ch_in, keys, where="top_k keys", schema=schema):
        kept = await ctx.to_thread(best, chunk) if kept is None else await ctx.to_thread(best, kept, chunk)
    await schema.agreed_schema(coll)
    everyone = await coll.allgather("top", kept)
    parts = [t for t in everyone if t is not None]
    if parts:
        out = await ctx.to_thread(best, *parts)
        await ch_out.send(ctx, Message(0, out))
    await ch_out.drain(ctx)
