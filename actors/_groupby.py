"""groupby_agg: a streaming, multi-rank group-by with partial aggregation.

The aggregations themselves (partial, merge and final steps as Polars
expressions) are in :mod:`actors._aggregations`; this actor checks the spec,
runs the steps on each chunk, exchanges partials between ranks and finishes
the groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from functools import partial

import polars as pl

from actors._aggregations import AGGREGATIONS, CHUNK, ORDER, SPAN, Agg, Plan
from actors._exchange import (
    ExchangeReport,
    InputSchema,
    exchange,
    frames_of,
    hash_partition,
    map_in_threads,
)
from actors._shuffle import partition_count
from streamnet import (
    Channel,
    Collective,
    Context,
    Message,
    TableChunk,
    current_actor_name,
    define_actor,
)

__all__ = ["Agg", "groupby_agg"]

_ORDER = list(ORDER)

AggSpec = Agg | tuple[str | None, str] | tuple[str | None, str, str]


def normalise_aggs(aggs: Sequence[AggSpec] | Mapping[str, str | Sequence[str]]) -> list[Agg]:
    """Aggregations from ``[Agg(...)]``, ``[("x", "sum"), ("x", "mean", "avg_x")]`` or ``{"x": ["sum"]}``.

    ``("*", "len")`` counts rows, as ``Agg(None, "len")`` does.
    """
    items: list[Agg] = []
    if isinstance(aggs, Mapping):
        for column, hows in aggs.items():
            for how in [hows] if isinstance(hows, str) else hows:
                items.append(Agg(column, how))  # type: ignore[arg-type]
    else:
        for spec in aggs:
            if isinstance(spec, Agg):
                items.append(spec)
            elif isinstance(spec, tuple) and len(spec) in (2, 3):
                items.append(Agg(*spec))
            else:
                raise TypeError(
                    f"groupby_agg: an aggregation is an Agg, (column, how) or (column, how, name), "
                    f"got {spec!r}"
                )
    if not items:
        raise ValueError("groupby_agg: give at least one aggregation")
    for agg in items:
        if not isinstance(agg.how, str) or agg.how not in AGGREGATIONS:
            raise ValueError(
                f"groupby_agg: unknown aggregation {agg.how!r} for column `{agg.column}`; "
                f"choose from {list(AGGREGATIONS)}"
            )
        if agg.how != "len" and agg.column is None:
            raise ValueError(f"groupby_agg: aggregation {agg.how!r} needs a column")
        if not isinstance(agg.column, str | None) or not isinstance(agg.name, str | None):
            raise TypeError(
                f"groupby_agg: the column and name of aggregation {agg.how!r} must be strings; "
                f"got column {agg.column!r}, name {agg.name!r}"
            )
    items = [Agg(None, "len", a.name) if (a.column == "*" and a.how == "len") else a for a in items]
    names = [a.output for a in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"groupby_agg: output names {duplicates} repeat; name them with Agg(name=...)"
        )
    return items


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
    clashes = sorted({a.output for a in items} & set(keys))
    if clashes:
        raise ValueError(
            f"groupby_agg: output names {clashes} are also keys; name the aggregations with "
            f"Agg(name=...); keys are {keys}"
        )


async def _check_types(ctx: Context, empty: pl.DataFrame, plan: Plan) -> None:
    """Raise a TypeError naming the actor if an aggregation does not apply to its column's type."""
    await ctx.to_thread(plan.check_types, empty, f"actor `{current_actor_name()}`")


# ------------------------------------------------------------------ the keyed kernels
def _partials(aggs: list[Agg]) -> list[pl.Expr]:
    """Per-chunk partial aggregates by key."""
    return Plan(aggs).partials(CHUNK)


def _row_partials(aggs: list[Agg]) -> list[pl.Expr]:
    """Each row as a partial aggregate of its own one-row group (same columns as ``_partials``).

    Shipping these instead of grouped partials costs no grouping at all, which
    pays when a chunk has nearly as many groups as rows.
    """
    return Plan(aggs).rows(CHUNK)


def _final_group(
    frame: pl.DataFrame, keys: list[str], aggs: list[Agg], schema: pl.Schema
) -> pl.DataFrame:
    """The groups of a partition's partials: merged by key, then finished."""
    plan = Plan(aggs)
    query = frame.lazy().with_columns(plan.windows(keys)).group_by(keys).agg(plan.merges(CHUNK))
    out = query.select(*keys, *plan.finals()).collect(engine="streaming")
    # The result types Polars' own aggregation gives for this input schema (the same on
    # every rank), where merging partials gave another width (a sum of counts...).
    return out.cast(dict(schema))  # type: ignore[arg-type]


def _raw_group(
    frame: pl.DataFrame, keys: list[str], aggs: list[Agg], ordered: bool
) -> pl.DataFrame:
    """The groups of a partition's rows, by Polars' own aggregations."""
    if ordered:
        frame = frame.sort(_ORDER, maintain_order=True)
    wholes = Plan(aggs).wholes()
    return frame.lazy().group_by(keys).agg(wholes).collect(engine="streaming")


# ------------------------------------------------------------------ one global group
# keys=[]: every chunk reduces to one row of partials (a select, no grouping), the rows
# are merged on each rank, and each rank sends its single merged row to rank 0.
_MERGE_EVERY = 64  # partial rows held before they are merged into one
_MERGE_BYTES = 1 << 20  # or partial bytes (n_unique keeps distinct values) beyond this


def _merge(frames: list[pl.DataFrame], plan: Plan) -> pl.DataFrame:
    """Rows of partials merged into one."""
    whole = pl.concat(frames, how="vertical")
    return whole.with_columns(plan.windows([])).select(plan.merges(SPAN))


async def _global_agg(
    ctx: Context,
    coll: Collective,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    items: list[Agg],
) -> ExchangeReport:
    """``select(aggs)`` of the whole stream: one row on rank 0, an empty chunk elsewhere."""
    report = ExchangeReport()
    plan = Plan(items)
    columns = plan.columns
    partials = plan.partials(SPAN)
    sample: list[pl.DataFrame] = []
    schema = InputSchema(ch_in)

    async def non_empty() -> AsyncIterator[pl.DataFrame]:
        async for frame in frames_of(
            ctx, ch_in, columns, where="groupby_agg", order=plan.ordered, schema=schema
        ):
            if not sample:
                sample.append(frame.select(columns).head(0))
                await _check_types(ctx, sample[0], plan)
            if frame.height:  # an empty chunk adds nothing, not even a first/last
                yield frame

    merged: pl.DataFrame | None = None  # this rank's partials so far, merged into one row
    pending: list[pl.DataFrame] = []
    pending_bytes = merged_bytes = 0
    async for part in map_in_threads(ctx, non_empty(), lambda f: f.select(partials), depth=2):
        pending.append(part)
        pending_bytes += int(part.estimated_size())
        report.peak_buffered_bytes = max(report.peak_buffered_bytes, merged_bytes + pending_bytes)
        if len(pending) >= _MERGE_EVERY or pending_bytes > max(merged_bytes, _MERGE_BYTES):
            rows = pending if merged is None else [merged, *pending]
            merged = await ctx.to_thread(_merge, rows, plan)
            merged_bytes, pending, pending_bytes = int(merged.estimated_size()), [], 0
    if pending:
        rows = pending if merged is None else [merged, *pending]
        merged = await ctx.to_thread(_merge, rows, plan)

    # The output schema, the same on every rank: Polars' own select over an empty input.
    empty = await schema.agree(coll, "global")
    if empty is None:  # no rank saw a single chunk: the column types are unknown
        empty = pl.DataFrame(schema={c: pl.Null for c in columns})
    elif not sample:  # the aggregations are checked on every rank, also one without input
        await _check_types(ctx, empty.select(columns), plan)
    nothing = empty.select(plan.wholes())
    result_schema = nothing.schema
    if coll.rank != 0:
        if merged is not None:
            report.bytes_sent[0] = int(merged.estimated_size())
        await coll.send(0, ("global", "partial"), merged)
        out = nothing.clear()
    else:
        received = await asyncio.gather(*[coll.recv(r, ("global", "partial")) for r in coll.peers])
        rows = []
        for peer, row in zip([coll.rank, *coll.peers], [merged, *received], strict=True):
            if row is not None:
                rows.append(row)
                if peer != coll.rank:
                    report.bytes_received[peer] = int(row.estimated_size())
        if rows:
            total = await ctx.to_thread(_merge, rows, plan) if len(rows) > 1 else rows[0]
            out = total.select(plan.finals()).cast(dict(result_schema))  # type: ignore[arg-type]
        else:  # no rows anywhere
            out = nothing
    await ch_out.send(ctx, Message(0, TableChunk.from_polars(out)))
    await ch_out.drain(ctx)
    return report


@define_actor(collective=True)
async def groupby_agg(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    keys: str | Sequence[str],
    aggs: Sequence[AggSpec] | Mapping[str, str | Sequence[str]],
    *,
    num_partitions: int | None = None,
    max_buffered_bytes: int | None = None,
) -> ExchangeReport:
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
    >>> import polars as pl
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
    if not key_cols:
        return await _global_agg(ctx, coll, ch_in, ch_out, items)
    plan = Plan(items)
    needed = [*key_cols, *[c for c in plan.columns if c not in key_cols]]
    ordered, raw = plan.ordered, not plan.keyed
    first_frame: list[pl.DataFrame] = []
    partials, row_partials = _partials(items), _row_partials(items)
    grouping = True  # turned off once chunks prove to have about as many groups as rows
    schema = InputSchema(ch_in)

    def pre_aggregate(frame: pl.DataFrame) -> pl.DataFrame:
        grouped = frame.lazy().group_by(key_cols).agg(partials)
        if grouping:
            return grouped.collect(engine="streaming")
        rows = frame.select(*[pl.col(k) for k in key_cols], *row_partials)
        # The partials of a partition concatenate as they are: rows take the grouped types
        # (a sum of Int8 values is an Int64 partial), which only ever widens.
        return rows.cast(dict(grouped.collect_schema()))  # type: ignore[arg-type]

    async def selected() -> AsyncIterator[pl.DataFrame]:
        async for frame in frames_of(
            ctx, ch_in, needed, where="groupby_agg", order=ordered, schema=schema
        ):
            frame = frame.select(needed + (_ORDER if ordered else []))
            if not first_frame:
                first_frame.append(frame.head(0))
                await _check_types(ctx, first_frame[0], plan)
            yield frame

    def pre_aggregate_and_learn(frame: pl.DataFrame) -> pl.DataFrame:
        nonlocal grouping
        out = pre_aggregate(frame)
        if grouping and frame.height >= 10_000 and out.height > frame.height // 2:
            grouping = False  # high cardinality: grouping chunks would not shrink them
        return out

    def prepared() -> AsyncIterator[pl.DataFrame]:
        if raw:
            return selected()
        return map_in_threads(ctx, selected(), pre_aggregate_and_learn, depth=2)

    held = await exchange(
        ctx,
        coll,
        prepared(),
        partial(hash_partition, ctx.backend, keys=key_cols, partitions=count),
        count,
        "groupby",
        max_buffered_bytes=max_buffered_bytes,
    )
    # The result's schema, the same on every rank: Polars' own aggregation of an empty input.
    empty = await schema.agree(coll)
    if empty is None:  # no rank saw a single chunk
        await ch_out.drain(ctx)
        return held.report
    if not first_frame:  # the aggregations are checked on every rank, also one without input
        await _check_types(ctx, empty.select(needed), plan)
    result_schema = empty.group_by(key_cols).agg(plan.wholes()).schema
    sent = False
    for partition in sorted(held.pieces):
        frame = await ctx.to_thread(held.take, partition)
        if frame is None:
            continue
        if raw:  # Polars' own aggregation of the rows: its result types
            out = await ctx.to_thread(_raw_group, frame, key_cols, items, ordered)
        else:
            out = await ctx.to_thread(_final_group, frame, key_cols, items, result_schema)
        await ch_out.send(ctx, Message(partition, TableChunk.from_polars(out)))
        sent = True
    if not sent:
        empty_out = pl.DataFrame(schema=result_schema)
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(empty_out)))
    await ch_out.drain(ctx)
    return held.report
