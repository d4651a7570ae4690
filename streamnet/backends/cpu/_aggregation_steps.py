"""The CPU backend's aggregation steps: one object per ``how``, each written as Polars expressions.

An aggregation is split into three steps over named *partial columns*:

partial
    the partial columns of a chunk (or of each group of it) from the input
    column; ``row`` gives the same columns for each row on its own, which
    costs no grouping when a chunk has about as many groups as rows;
merge
    partials of partials, into the same columns: merging is associative, so
    partials merge in any grouping, any number of times; a ``window`` step
    before it may give each partial columns computed over its group (the
    spread around the group's mean that Chan's merge of ``var`` needs);
final
    the result from the merged partials.

Each step is a list of Polars expressions that read and name columns only,
evaluated either per group (``group_by(keys).agg(...)``) or over a whole frame
(``select(...)``, for the global aggregation). Nothing here touches a frame:
whoever runs the steps (today Polars on the CPU) may fuse them with other
per-chunk work or run them on another engine.

Result types are Polars' own for the input type (what :meth:`Agg.polars` gives
on an empty frame); merged partials can be wider (a sum of counts) and are cast
to them at the end.

The module stays whole (above 400 lines): the eleven aggregations are one
object each, read side by side, with the steps' composition that names their
columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, get_args

import polars as pl

from streamnet.plans._aggregation import Agg, AggHow

__all__ = [
    "AGGREGATIONS",
    "CHUNK",
    "ORDER",
    "SPAN",
    "Aggregation",
    "AggregationSteps",
    "Origin",
    "Parts",
]

ORDER = ("__rank", "__seq")
"""Columns a stream's frames gain when order matters: with the row order, they give the stream's order."""


def _input(agg: Agg) -> pl.Expr:
    # An aggregation without a column (len) counts rows; it never reads its input.
    return pl.len() if agg.column is None else pl.col(agg.column)


class Parts:
    """The partial columns of one aggregation in a frame: ``parts["sum"]`` reads ``__0_sum``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def name(self, part: str) -> str:
        return self.prefix + part

    def __getitem__(self, part: str) -> pl.Expr:
        return pl.col(self.prefix + part)


@dataclass(frozen=True, slots=True)
class Origin:
    """The (rank, sequence number) columns saying where a partial's first and last rows come from.

    ``first``/``last`` merge their partials in the stream's order, so their
    partials carry their origin: :data:`CHUNK` for partials of one chunk each,
    merged once before the final step; :data:`SPAN` for partials that may
    themselves be merged partials, and merge again.
    """

    first: tuple[str, str]
    last: tuple[str, str]

    @property
    def merges_again(self) -> bool:
        """Whether merged partials keep an origin (their first and last rows differ)."""
        return self.first != self.last

    def columns(self) -> list[tuple[str, str]]:
        """``(origin column, ORDER column it starts from)``, each origin column once."""
        pairs = zip((*self.first, *self.last), ORDER * 2, strict=True)
        return list(dict(pairs).items())


CHUNK = Origin(first=ORDER, last=ORDER)
SPAN = Origin(first=("__first_rank", "__first_seq"), last=("__last_rank", "__last_seq"))


EXACT_DECIMAL_DIGITS = 28
"""The most digits of a decimal column whose mean sums it exactly, as a decimal of 38
digits: 10 digits to spare, for 10 billion rows. A wider one is summed as Float64."""


class Aggregation:
    """How one ``how`` splits into partial, merge and final steps.

    Each has a ``how`` and ``parts``, the names of its partial columns, and
    writes each step as expressions; ``whole`` is Polars' own aggregation,
    which gives the result type and what the result must equal.
    """

    ordered: ClassVar[bool] = False
    """Follows the stream's order: its partials carry their :class:`Origin`."""
    keyed: ClassVar[bool] = True
    """Its partials stay small per group; if not, a keyed group-by exchanges the rows instead."""
    widens_floats: ClassVar[bool] = False
    """Reads a Float32 column as Float64: Polars computes it in double precision, and
    single-precision partials would drift from its result (a mean of values that
    nearly cancel loses its digits)."""
    widens_integers: ClassVar[bool] = False
    """Reads an integer column as Float64: Polars accumulates it in double precision, and
    partials in the column's own type wrap around (a mean of two Int32 values of 2e9).
    Also a decimal column of more than `EXACT_DECIMAL_DIGITS` digits, whose sum may not
    fit 38 digits (Polars' grouped sum then wraps around; its mean does not)."""

    def __init__(self, how: str, parts: tuple[str, ...]) -> None:
        self.how = how
        self.parts = parts

    def whole(self, col: pl.Expr) -> pl.Expr:
        """Polars' own aggregation of ``col``."""
        return getattr(col, self.how)()  # type: ignore[no-any-return]

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        """Partial columns of a chunk or group, by part name."""
        raise NotImplementedError

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        """Partial columns of each row taken as a group of its own."""
        raise NotImplementedError

    def window(self, p: Parts, group: Callable[[pl.Expr], pl.Expr]) -> dict[str, pl.Expr]:
        """Columns each partial needs before the merge, from an aggregate ``group(expr)`` of its group.

        None for most; ``merge`` reads them by name as it reads parts.
        """
        return {}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        """Partial columns of a group of partials (the same parts)."""
        raise NotImplementedError

    def final(self, p: Parts) -> pl.Expr:
        """The result of merged partials."""
        raise NotImplementedError


_IDX = pl.get_index_type()


class _Reduce(Aggregation):
    """sum, min, max: the same reduction at every step."""

    def __init__(self, how: str) -> None:
        super().__init__(how, (how,))

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {self.how: self.whole(col)}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        # the sum of [null] is 0 (of the column's type: a Duration, a Decimal...)
        return {self.how: col.fill_null(strategy="zero") if self.how == "sum" else col}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        return {self.how: self.whole(p[self.how])}

    def final(self, p: Parts) -> pl.Expr:
        return p[self.how]


class _Count(Aggregation):
    def __init__(self, how: str = "count") -> None:
        super().__init__(how, ("n",))

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"n": col.count()}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"n": col.is_not_null().cast(_IDX)}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        return {"n": p["n"].sum()}

    def final(self, p: Parts) -> pl.Expr:
        return p["n"]


class _Len(_Count):
    def __init__(self) -> None:
        super().__init__("len")

    def whole(self, col: pl.Expr) -> pl.Expr:
        return pl.len()

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"n": pl.len()}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"n": pl.lit(1, _IDX)}


class _Mean(Aggregation):
    widens_floats = True
    widens_integers = True

    def __init__(self) -> None:
        super().__init__("mean", ("sum", "n"))

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"sum": col.sum(), "n": col.count()}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"sum": col.fill_null(strategy="zero"), "n": col.is_not_null().cast(_IDX)}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        return {"sum": p["sum"].sum(), "n": p["n"].sum()}

    def final(self, p: Parts) -> pl.Expr:
        n = p["n"]
        # Divided by a float: a Decimal sum gives a Float64 mean, as in Polars, not a Decimal.
        return pl.when(n > 0).then(p["sum"] / n.cast(pl.Float64)).otherwise(None)


class _FirstLast(_Reduce):
    """first, last: the value of the partial that comes first (last) in the stream."""

    ordered = True

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {self.how: col}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        by = origin.first if self.how == "first" else origin.last
        # stable: rows of one chunk keep their order
        return {self.how: self.whole(p[self.how].sort_by(list(by), maintain_order=True))}


class _NUnique(Aggregation):
    """n_unique: exact, the distinct values themselves (null included) are the partial."""

    keyed = False

    def __init__(self) -> None:
        super().__init__("n_unique", ("unique",))

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"unique": col.unique().implode()}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {"unique": pl.concat_list(col)}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        # explicit: Polars 1.x warns on the default, which 2.x changed to False
        values = p["unique"].explode(empty_as_null=False)
        return {"unique": values.unique().implode()}

    def final(self, p: Parts) -> pl.Expr:
        return p["unique"].list.len()


class _Var(Aggregation):
    """var, std: count, mean and sum of squared deviations (M2), merged by Chan et al."""

    widens_floats = True

    def __init__(self, how: str) -> None:
        super().__init__(how, ("n", "mean", "m2"))

    def partial(self, col: pl.Expr) -> dict[str, pl.Expr]:
        values = col.cast(pl.Float64)
        return {"n": col.count(), "mean": values.mean(), "m2": values.var(ddof=0) * col.count()}

    def row(self, col: pl.Expr) -> dict[str, pl.Expr]:
        return {
            "n": col.is_not_null().cast(_IDX),
            "mean": col.cast(pl.Float64),
            "m2": pl.when(col.is_null()).then(None).otherwise(pl.lit(0.0)),
        }

    @staticmethod
    def _shift(n_i: pl.Expr, mean_i: pl.Expr) -> pl.Expr:
        """A group's largest partial mean: the means are summed as their distances to it,
        which keep their digits where the values are large (1e14 + a few units: the mean
        summed at 1e18, in 4,000 partials of one row, gave a variance of 17.6 for 8.25)."""
        return pl.when(n_i > 0).then(mean_i).max()

    def window(self, p: Parts, group: Callable[[pl.Expr], pl.Expr]) -> dict[str, pl.Expr]:
        # A partial's squared distance to its group's mean, weighted by its count (a window:
        # far cheaper than broadcasting the mean inside each group of a group-by).
        n_i, mean_i = p["n"], p["mean"].fill_null(0.0)
        shift = self._shift(n_i, mean_i)
        offset = group((n_i * (mean_i - shift)).sum() / n_i.sum())  # the mean, less the shift
        distance = (mean_i - group(shift)) - offset
        return {"spread": pl.when(n_i > 0).then(n_i * distance**2).otherwise(0.0)}

    def merge(self, p: Parts, origin: Origin) -> dict[str, pl.Expr]:
        n_i, mean_i = p["n"], p["mean"].fill_null(0.0)
        n = n_i.sum()
        shift = self._shift(n_i, mean_i)
        grand = pl.when(n > 0).then(shift + (n_i * (mean_i - shift)).sum() / n).otherwise(0.0)
        return {"n": n, "mean": grand, "m2": p["m2"].fill_null(0.0).sum() + p["spread"].sum()}

    def final(self, p: Parts) -> pl.Expr:
        n = p["n"]
        var = pl.when(n > 1).then(p["m2"] / (n - 1)).otherwise(None)
        return var.sqrt() if self.how == "std" else var


AGGREGATIONS: dict[str, Aggregation] = {
    agg.how: agg
    for agg in [
        _Reduce("sum"),
        _Count(),
        _Len(),
        _Mean(),
        _Reduce("min"),
        _Reduce("max"),
        _FirstLast("first"),
        _FirstLast("last"),
        _NUnique(),
        _Var("std"),
        _Var("var"),
    ]
}
"""Every aggregation by its ``how``."""

assert set(AGGREGATIONS) == set(get_args(AggHow))


class AggregationSteps:
    """The steps of a list of aggregations, whose partial columns are named ``__<i>_<part>``.

    ``first``/``last`` need each frame's :data:`ORDER` columns; the partials
    then carry an :class:`Origin`.
    """

    def __init__(self, aggs: Sequence[Agg], schema: Mapping[str, pl.DataType] | None = None) -> None:
        self.aggs = list(aggs)
        types = dict(schema or {})

        def widens(agg: Agg) -> bool:
            dtype, kind = types.get(agg.column or ""), AGGREGATIONS[agg.how]
            if dtype is None:
                return False
            wide_decimal = (
                isinstance(dtype, pl.Decimal) and (dtype.precision or 38) > EXACT_DECIMAL_DIGITS
            )
            return (kind.widens_floats and dtype == pl.Float32) or (
                kind.widens_integers and (dtype.is_integer() or wide_decimal)
            )

        self._wide = {i for i, a in enumerate(self.aggs) if widens(a)}
        """Aggregations that read their column as Float64 (see `Aggregation.widens_floats`
        and `Aggregation.widens_integers`)."""
        self._steps = [
            (agg, AGGREGATIONS[agg.how], Parts(f"__{i}_")) for i, agg in enumerate(self.aggs)
        ]
        self.columns = sorted({a.column for a in self.aggs if a.column is not None})
        """The input columns the aggregations read."""
        self.ordered = any(kind.ordered for _, kind, _ in self._steps)
        """Whether the input's frames need their :data:`ORDER` columns."""
        self.keyed = all(kind.keyed for _, kind, _ in self._steps)
        """Whether a keyed group-by can exchange partials (else it exchanges rows)."""

    def _input(self, i: int, agg: Agg) -> pl.Expr:
        col = _input(agg)
        return col.cast(pl.Float64) if i in self._wide else col

    def wholes(self) -> list[pl.Expr]:
        """Polars' own aggregations, named as the output."""
        return [agg.polars() for agg in self.aggs]

    def partials(self, origin: Origin) -> list[pl.Expr]:
        """The partial columns of a chunk (or each group of it) with ``origin``."""
        exprs = [
            e.alias(p.name(part))
            for i, (agg, kind, p) in enumerate(self._steps)
            for part, e in kind.partial(self._input(i, agg)).items()
        ]
        if self.ordered:
            exprs += [pl.col(src).first().alias(dst) for dst, src in origin.columns()]
        return exprs

    def rows(self, origin: Origin) -> list[pl.Expr]:
        """The partial columns of each row, a group of its own (same names as :meth:`partials`)."""
        exprs = [
            e.alias(p.name(part))
            for i, (agg, kind, p) in enumerate(self._steps)
            for part, e in kind.row(self._input(i, agg)).items()
        ]
        if self.ordered:
            exprs += [pl.col(src).alias(dst) for dst, src in origin.columns()]
        return exprs

    def windows(self, keys: Sequence[str]) -> list[pl.Expr]:
        """Columns to add to partials before :meth:`merges`, each from the partial's group by ``keys``."""

        def group(expr: pl.Expr) -> pl.Expr:
            return expr.over(keys) if keys else expr  # [] : the whole frame is one group

        return [
            e.alias(p.name(part))
            for _, kind, p in self._steps
            for part, e in kind.window(p, group).items()
        ]

    def merges(self, origin: Origin) -> list[pl.Expr]:
        """Partials of partials with ``origin``; those of :data:`SPAN` keep it and merge again."""
        exprs = [
            e.alias(p.name(part))
            for _, kind, p in self._steps
            for part, e in kind.merge(p, origin).items()
        ]
        if self.ordered and origin.merges_again:
            first, last = list(origin.first), list(origin.last)
            exprs += [pl.col(c).sort_by(first, maintain_order=True).first() for c in first]
            exprs += [pl.col(c).sort_by(last, maintain_order=True).last() for c in last]
        return exprs

    def finals(self) -> list[pl.Expr]:
        """The results from merged partials, named as the output."""
        return [kind.final(p).alias(agg.output) for agg, kind, p in self._steps]

    def check_types(self, empty: pl.DataFrame, where: str) -> None:
        """Raise a TypeError naming ``where`` if an aggregation does not apply to its column's type.

        ``empty`` has the input's columns. Both Polars' own aggregation and the
        steps are tried on it, so a type that Polars aggregates but the steps
        cannot is refused before any data flows.
        """
        try:
            self.check_computable(empty)
        except pl.exceptions.PolarsError:
            for agg in self.aggs:  # which one, to say so
                _check_one(agg, empty, where)
            raise

    def check_computable(self, empty: pl.DataFrame) -> None:
        """Run every step on ``empty`` (the input's columns): Polars raises if one fails.
        One query per chain of steps (a query costs about as much as a step of it)."""
        frame = empty.lazy().select(*self.columns, *[pl.lit(0, pl.Int64).alias(c) for c in ORDER])
        frame.select(self.wholes()).collect(engine="in-memory")
        frame.select(self.rows(SPAN)).collect(engine="in-memory")
        partials = frame.select(self.partials(SPAN))
        merged = partials.with_columns(self.windows([])).select(self.merges(SPAN))
        merged.select(self.finals()).collect(engine="in-memory")


def _check_one(agg: Agg, empty: pl.DataFrame, where: str) -> None:
    """Raise a TypeError naming ``where`` if ``agg`` does not apply to its column's type."""
    if agg.column is None:
        return
    dtype = empty.schema[agg.column]
    try:
        empty.select(agg.polars())
    except pl.exceptions.PolarsError as exc:
        raise TypeError(
            f"{where}: aggregation {agg.how!r} does not apply to column "
            f"`{agg.column}` of type {dtype} ({_reason(exc)})"
        ) from None
    try:
        AggregationSteps([agg]).check_computable(empty)
    except pl.exceptions.PolarsError as exc:
        raise TypeError(
            f"{where}: aggregation {agg.how!r} of column `{agg.column}` cannot be "
            f"computed from partials for type {dtype} ({_reason(exc)})"
        ) from None


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
