"""groupby_agg: a streaming, multi-rank group-by with partial aggregation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import polars as pl

from actors._exchange import ExchangeReport, exchange, frames_of, hash_partition, map_in_threads
from actors._shuffle import key_list, partition_count
from streamnet import Channel, Collective, Context, Message, TableChunk, define_actor

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


# ----------------------------------------------------------------------- partial / final
def _partials(aggs: list[Agg]) -> list[pl.Expr]:
    """Per-chunk partial aggregates; columns are named ``__<i>_<part>``."""
    exprs: list[pl.Expr] = []
    for i, agg in enumerate(aggs):
        p = f"__{i}_"
        if agg.how == "len":
            exprs.append(pl.len().alias(p + "n"))
            continue
        col = pl.col(agg.column)  # type: ignore[arg-type]
        if agg.how in ("sum", "min", "max", "first", "last"):
            exprs.append(getattr(col, agg.how)().alias(p + agg.how))
        elif agg.how == "count":
            exprs.append(col.count().alias(p + "n"))
        elif agg.how == "mean":
            exprs += [col.sum().alias(p + "sum"), col.count().alias(p + "n")]
        elif agg.how in ("std", "var"):
            exprs += [
                col.count().alias(p + "n"),
                col.cast(pl.Float64).mean().alias(p + "mean"),
                (col.cast(pl.Float64).var(ddof=0) * col.count()).alias(p + "m2"),
            ]
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
    return out.cast(dict(schema))  # type: ignore[arg-type]


def _raw_group(
    frame: pl.DataFrame, keys: list[str], aggs: list[Agg], ordered: bool
) -> pl.DataFrame:
    if ordered:
        frame = frame.sort(_ORDER, maintain_order=True)
    return frame.lazy().group_by(keys).agg([a.polars() for a in aggs]).collect(engine="streaming")


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

    Parameters
    ----------
    keys
        Column name(s) to group by.
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
    """
    coll = Collective(ctx)
    key_cols = key_list(keys, "groupby_agg")
    items = [
        Agg(None, "len", a.name) if (a.column == "*" and a.how == "len") else a
        for a in normalise_aggs(aggs)
    ]
    count = partition_count(num_partitions, coll, "groupby_agg")
    columns = sorted({a.column for a in items if a.column is not None})
    needed = [*key_cols, *[c for c in columns if c not in key_cols]]
    ordered = any(a.how in ("first", "last") for a in items)
    raw = any(a.how == "n_unique" for a in items)
    first_frame: list[pl.DataFrame] = []
    partials, row_partials = _partials(items), _row_partials(items)
    grouping = True  # turned off once chunks prove to have about as many groups as rows

    def pre_aggregate(frame: pl.DataFrame) -> pl.DataFrame:
        if grouping:
            return frame.lazy().group_by(key_cols).agg(partials).collect(engine="streaming")
        order = [pl.col(c) for c in _ORDER] if ordered else []
        return frame.select(*[pl.col(k) for k in key_cols], *row_partials, *order)

    async def selected() -> AsyncIterator[pl.DataFrame]:
        async for frame in frames_of(ctx, ch_in, needed, where="groupby_agg", order=ordered):
            frame = frame.select(needed + (_ORDER if ordered else []))
            if not first_frame:
                first_frame.append(frame.head(0))
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
    samples = await coll.allgather(first_frame[0] if first_frame else None, "schema")
    empty = next((s for s in samples if s is not None), None)
    if empty is None:  # no rank saw a single chunk
        await ch_out.drain(ctx)
        return held.report
    schema = (
        empty.drop(_ORDER, strict=False).group_by(key_cols).agg([a.polars() for a in items]).schema
    )
    sent = False
    for partition in sorted(held.pieces):
        frame = await ctx.to_thread(held.take, partition)
        if frame is None:
            continue
        if raw:
            out = await ctx.to_thread(_raw_group, frame, key_cols, items, ordered)
            out = out.cast(dict(schema))  # type: ignore[arg-type]
        else:
            out = await ctx.to_thread(_final_group, frame, key_cols, items, schema)
        await ch_out.send(ctx, Message(partition, TableChunk.from_polars(out)))
        sent = True
    if not sent:
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(pl.DataFrame(schema=schema))))
    await ch_out.drain(ctx)
    return held.report
