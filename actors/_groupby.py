"""groupby_agg: a streaming, multi-rank group-by with partial aggregation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import polars as pl

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

__all__ = ["Agg", "AggHow", "groupby_agg"]

AggHow = Literal[
    "sum", "count", "len", "mean", "min", "max", "first", "last", "n_unique", "std", "var"
]
"""Aggregations :func:`groupby_agg` computes, with Polars' meaning of each."""

_HOWS: tuple[str, ...] = AggHow.__args__  # type: ignore[attr-defined]
_ORDER = ["__rank", "__seq"]


@dataclass(frozen=True, slots=True)
class Agg:
    """One aggregation: ``how`` of ``column``, named ``name`` (default ``column_how``).

    ``len`` counts the rows of each group and takes no column.
    """

    column: str | None
    how: AggHow
    name: str | None = None

    @property
    def output(self) -> str:
        if self.name is not None:
            return self.name
        return "len" if self.column is None else f"{self.column}_{self.how}"

    def polars(self) -> pl.Expr:
        """The same aggregation as a Polars expression (what the result must equal)."""
        if self.how == "len":
            return pl.len().alias(self.output)
        col = pl.col(self.column)  # type: ignore[arg-type]
        expr = {
            "sum": col.sum(),
            "count": col.count(),
            "mean": col.mean(),
            "min": col.min(),
            "max": col.max(),
            "first": col.first(),
            "last": col.last(),
            "n_unique": col.n_unique(),
            "std": col.std(),
            "var": col.var(),
        }[self.how]
        return expr.alias(self.output)


AggSpec = Agg | tuple[str | None, str] | tuple[str | None, str, str]


def normalise_aggs(aggs: Sequence[AggSpec] | Mapping[str, str | Sequence[str]]) -> list[Agg]:
    """Aggregations from ``[Agg(...)]``, ``[("x", "sum"), ("x", "mean", "avg_x")]`` or ``{"x": ["sum"]}``."""
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
                items.append(Agg(*spec))  # type: ignore[arg-type]
            else:
                raise TypeError(
                    f"groupby_agg: an aggregation is an Agg, (column, how) or (column, how, name), "
                    f"got {spec!r}"
                )
    if not items:
        raise ValueError("groupby_agg: give at least one aggregation")
    for agg in items:
        if agg.how not in _HOWS:
            raise ValueError(
                f"groupby_agg: unknown aggregation {agg.how!r} for column `{agg.column}`; "
                f"choose from {list(_HOWS)}"
            )
        if agg.how != "len" and agg.column is None:
            raise ValueError(f"groupby_agg: aggregation {agg.how!r} needs a column")
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


def _check_types(empty: pl.DataFrame, aggs: list[Agg]) -> None:
    """Raise a TypeError naming the actor if an aggregation does not apply to its column's type."""
    for agg in aggs:
        if agg.column is None:
            continue
        try:
            empty.select(agg.polars())
        except pl.exceptions.PolarsError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise TypeError(
                f"actor `{current_actor_name()}`: aggregation {agg.how!r} does not apply to "
                f"column `{agg.column}` of type {empty.schema[agg.column]} ({reason})"
            ) from None


# ----------------------------------------------------------------------- partial / final
def _partial(agg: Agg, p: str) -> list[pl.Expr]:
    """The partial aggregates of one aggregation over a chunk (or a group of it), named
    ``p + <part>``; none for ``n_unique``, which the keyed and global paths keep apart."""
    if agg.how == "len":
        return [pl.len().alias(p + "n")]
    col = pl.col(agg.column)  # type: ignore[arg-type]
    if agg.how in ("sum", "min", "max", "first", "last"):
        return [getattr(col, agg.how)().alias(p + agg.how)]
    if agg.how == "count":
        return [col.count().alias(p + "n")]
    if agg.how == "mean":
        return [col.sum().alias(p + "sum"), col.count().alias(p + "n")]
    if agg.how in ("std", "var"):
        return [
            col.count().alias(p + "n"),
            col.cast(pl.Float64).mean().alias(p + "mean"),
            (col.cast(pl.Float64).var(ddof=0) * col.count()).alias(p + "m2"),
        ]
    return []


def _partials(aggs: list[Agg]) -> list[pl.Expr]:
    """Per-chunk partial aggregates; columns are named ``__<i>_<part>``."""
    exprs = [e for i, agg in enumerate(aggs) for e in _partial(agg, f"__{i}_")]
    if any(a.how in ("first", "last") for a in aggs):
        exprs += [pl.col("__rank").first(), pl.col("__seq").first()]
    return exprs


def _row_partials(aggs: list[Agg]) -> list[pl.Expr]:
    """Each row as a partial aggregate of its own one-row group (same columns as ``_partials``).

    Shipping these instead of grouped partials costs no grouping at all, which
    pays when a chunk has nearly as many groups as rows.
    """
    idx = pl.get_index_type()
    exprs: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        if agg.how == "len":
            exprs.append(pl.lit(1, idx).alias(p + "n"))
            continue
        col = pl.col(agg.column)  # type: ignore[arg-type]
        present = col.is_not_null().cast(idx)
        if agg.how == "sum":
            exprs.append(col.fill_null(0).alias(p + "sum"))  # the sum of [null] is 0
        elif agg.how in ("min", "max", "first", "last"):
            exprs.append(col.alias(p + agg.how))
        elif agg.how == "count":
            exprs.append(present.alias(p + "n"))
        elif agg.how == "mean":
            exprs += [col.fill_null(0).alias(p + "sum"), present.alias(p + "n")]
        elif agg.how in ("std", "var"):
            exprs += [
                present.alias(p + "n"),
                col.cast(pl.Float64).alias(p + "mean"),
                pl.when(col.is_null()).then(None).otherwise(pl.lit(0.0)).alias(p + "m2"),
            ]
    return exprs


def _finals(aggs: list[Agg], keys: list[str]) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Window columns to add before the final group-by, and the final aggregates."""
    windows: list[pl.Expr] = []
    finals: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        if agg.how in ("len", "count"):
            finals.append(pl.col(p + "n").sum().alias(agg.output))
        elif agg.how in ("sum", "min", "max"):
            finals.append(getattr(pl.col(p + agg.how), agg.how)().alias(agg.output))
        elif agg.how in ("first", "last"):
            ordered = pl.col(p + agg.how).sort_by(
                _ORDER, maintain_order=True
            )  # stable: row order within a chunk
            finals.append(
                (ordered.first() if agg.how == "first" else ordered.last()).alias(agg.output)
            )
        elif agg.how == "mean":
            n = pl.col(p + "n").sum()
            finals.append(
                pl.when(n > 0).then(pl.col(p + "sum").sum() / n).otherwise(None).alias(agg.output)
            )
        elif agg.how in ("std", "var"):
            # Chan et al.: merge (n, mean, M2) of the partial groups.
            n_i, mean_i = pl.col(p + "n"), pl.col(p + "mean").fill_null(0.0)
            total = n_i.sum().over(keys)
            grand = (n_i * mean_i).sum().over(keys) / total
            windows.append((n_i * (mean_i - grand) ** 2).alias(p + "spread"))
            n = pl.col(p + "n").sum()
            m2 = pl.col(p + "m2").fill_null(0.0).sum() + pl.col(p + "spread").fill_null(0.0).sum()
            var = pl.when(n > 1).then(m2 / (n - 1)).otherwise(None)
            finals.append((var.sqrt() if agg.how == "std" else var).alias(agg.output))
    return windows, finals


def _final_group(
    frame: pl.DataFrame, keys: list[str], aggs: list[Agg], schema: pl.Schema
) -> pl.DataFrame:
    windows, finals = _finals(aggs, keys)
    query = frame.lazy()
    if windows:
        query = query.with_columns(windows)
    out = query.group_by(keys).agg(finals).collect(engine="streaming")
    # The result types Polars' own aggregation gives for this input schema (the same on
    # every rank), where merging partials gave another width (a sum of counts...).
    return out.cast(dict(schema))  # type: ignore[arg-type]


def _raw_group(
    frame: pl.DataFrame, keys: list[str], aggs: list[Agg], ordered: bool
) -> pl.DataFrame:
    if ordered:
        frame = frame.sort(_ORDER, maintain_order=True)
    return frame.lazy().group_by(keys).agg([a.polars() for a in aggs]).collect(engine="streaming")


# ------------------------------------------------------------------ one global group
# keys=[]: every chunk reduces to one row of partials (a select, no grouping), the rows
# are merged on each rank, and each rank sends its single merged row to rank 0.
_FIRST = ["__first_rank", "__first_seq"]  # where a partial's first row comes from
_LAST = ["__last_rank", "__last_seq"]  # where its last row comes from
_MERGE_EVERY = 64  # partial rows held before they are merged into one
_MERGE_BYTES = 1 << 20  # or partial bytes (n_unique keeps distinct values) beyond this


def _global_partials(aggs: list[Agg]) -> list[pl.Expr]:
    """One row of partial aggregates of a non-empty chunk; columns are named ``__<i>_<part>``."""
    exprs: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        exprs += _partial(agg, p)
        if agg.how == "n_unique":  # exact: the distinct values (null included) travel
            exprs.append(pl.col(agg.column).unique().implode().alias(p + "unique"))  # type: ignore[arg-type]
    if any(a.how in ("first", "last") for a in aggs):
        exprs += [
            pl.col(c).first().alias(n) for c, n in zip(_ORDER * 2, _FIRST + _LAST, strict=True)
        ]
    return exprs


def _global_merges(aggs: list[Agg]) -> list[pl.Expr]:
    """Partial rows merged into one row with the same columns (associative)."""
    exprs: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        if agg.how in ("len", "count"):
            exprs.append(pl.col(p + "n").sum())
        elif agg.how in ("sum", "min", "max"):
            exprs.append(getattr(pl.col(p + agg.how), agg.how)())
        elif agg.how == "first":  # the value of the earliest partial in stream order
            exprs.append(pl.col(p + "first").sort_by(_FIRST, maintain_order=True).first())
        elif agg.how == "last":
            exprs.append(pl.col(p + "last").sort_by(_LAST, maintain_order=True).last())
        elif agg.how == "mean":
            exprs += [pl.col(p + "sum").sum(), pl.col(p + "n").sum()]
        elif agg.how in ("std", "var"):
            # Chan et al.: merge (n, mean, M2) of the partials.
            n_i, mean_i = pl.col(p + "n"), pl.col(p + "mean").fill_null(0.0)
            n = n_i.sum()
            grand = pl.when(n > 0).then((n_i * mean_i).sum() / n).otherwise(0.0)
            spread = (n_i * (mean_i - grand) ** 2).sum()
            exprs += [
                n.alias(p + "n"),
                grand.alias(p + "mean"),
                (pl.col(p + "m2").fill_null(0.0).sum() + spread).alias(p + "m2"),
            ]
        elif agg.how == "n_unique":
            # explicit: Polars 1.x warns on the default, which 2.x changed to False
            values = pl.col(p + "unique").explode(empty_as_null=False)
            exprs.append(values.unique().implode())
    if any(a.how in ("first", "last") for a in aggs):
        exprs += [pl.col(c).sort_by(_FIRST, maintain_order=True).first() for c in _FIRST]
        exprs += [pl.col(c).sort_by(_LAST, maintain_order=True).last() for c in _LAST]
    return exprs


def _global_finals(aggs: list[Agg]) -> list[pl.Expr]:
    """The aggregates from the one merged row of partials."""
    exprs: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        if agg.how in ("len", "count"):
            expr = pl.col(p + "n")
        elif agg.how in ("sum", "min", "max", "first", "last"):
            expr = pl.col(p + agg.how)
        elif agg.how == "mean":
            n = pl.col(p + "n")
            expr = pl.when(n > 0).then(pl.col(p + "sum") / n).otherwise(None)
        elif agg.how in ("std", "var"):
            n = pl.col(p + "n")
            expr = pl.when(n > 1).then(pl.col(p + "m2") / (n - 1)).otherwise(None)
            expr = expr.sqrt() if agg.how == "std" else expr
        else:  # n_unique
            expr = pl.col(p + "unique").list.len()
        exprs.append(expr.alias(agg.output))
    return exprs


def _merge(frames: list[pl.DataFrame], merges: list[pl.Expr]) -> pl.DataFrame:
    return pl.concat(frames, how="vertical").select(merges)


async def _global_agg(
    ctx: Context,
    coll: Collective,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    items: list[Agg],
) -> ExchangeReport:
    """``select(aggs)`` of the whole stream: one row on rank 0, an empty chunk elsewhere."""
    report = ExchangeReport()
    columns = sorted({a.column for a in items if a.column is not None})
    ordered = any(a.how in ("first", "last") for a in items)
    partials, merges = _global_partials(items), _global_merges(items)
    sample: list[pl.DataFrame] = []
    schema = InputSchema(ch_in)

    async def non_empty() -> AsyncIterator[pl.DataFrame]:
        async for frame in frames_of(
            ctx, ch_in, columns, where="groupby_agg", order=ordered, schema=schema
        ):
            if not sample:
                sample.append(frame.select(columns).head(0))
                _check_types(sample[0], items)
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
            merged = await ctx.to_thread(_merge, rows, merges)
            merged_bytes, pending, pending_bytes = int(merged.estimated_size()), [], 0
    if pending:
        rows = pending if merged is None else [merged, *pending]
        merged = await ctx.to_thread(_merge, rows, merges)

    # The output schema, the same on every rank: Polars' own select over an empty input.
    empty = await schema.agree(coll, "global")
    if empty is None:  # no rank saw a single chunk: the column types are unknown
        empty = pl.DataFrame(schema={c: pl.Null for c in columns})
    elif not sample:  # the aggregations are checked on every rank, also one without input
        _check_types(empty.select(columns), items)
    nothing = empty.select([a.polars() for a in items])
    result_schema = nothing.schema
    if coll.rank != 0:
        if merged is not None:
            report.bytes_sent[0] = int(merged.estimated_size())
        await coll.send(0, merged, "global", "partial")
        out = nothing.clear()
    else:
        received = await asyncio.gather(*[coll.recv(r, "global", "partial") for r in coll.peers])
        rows = []
        for peer, row in zip([coll.rank, *coll.peers], [merged, *received], strict=True):
            if row is not None:
                rows.append(row)
                if peer != coll.rank:
                    report.bytes_received[peer] = int(row.estimated_size())
        if rows:
            total = await ctx.to_thread(_merge, rows, merges) if len(rows) > 1 else rows[0]
            out = total.select(_global_finals(items)).cast(dict(result_schema))  # type: ignore[arg-type]
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
    items = [
        Agg(None, "len", a.name) if (a.column == "*" and a.how == "len") else a
        for a in normalise_aggs(aggs)
    ]
    count = partition_count(num_partitions, coll, "groupby_agg")
    if not key_cols:
        return await _global_agg(ctx, coll, ch_in, ch_out, items)
    columns = sorted({a.column for a in items if a.column is not None})
    needed = [*key_cols, *[c for c in columns if c not in key_cols]]
    ordered = any(a.how in ("first", "last") for a in items)
    raw = any(a.how == "n_unique" for a in items)
    first_frame: list[pl.DataFrame] = []
    partials, row_partials = _partials(items), _row_partials(items)
    grouping = True  # turned off once chunks prove to have about as many groups as rows
    schema = InputSchema(ch_in)

    def pre_aggregate(frame: pl.DataFrame) -> pl.DataFrame:
        grouped = frame.lazy().group_by(key_cols).agg(partials)
        if grouping:
            return grouped.collect(engine="streaming")
        order = [pl.col(c) for c in _ORDER] if ordered else []
        rows = frame.select(*[pl.col(k) for k in key_cols], *row_partials, *order)
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
                _check_types(first_frame[0], items)
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
        partial(hash_partition, keys=key_cols, partitions=count),
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
        _check_types(empty.select(needed), items)
    result_schema = empty.group_by(key_cols).agg([a.polars() for a in items]).schema
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
