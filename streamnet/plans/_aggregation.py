"""Aggregations as values: what to compute, with Polars' meaning, whichever backend computes it.

`Agg` names one aggregation of a column; `AggHow` lists the ``how`` s there are.
A backend turns a list of them into a kernel (`Backend.aggregation`); a group-by
actor and a plan's aggregate step both describe their work with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import polars as pl

__all__ = ["Agg", "AggHow"]

AggHow = Literal[
    "sum", "count", "len", "mean", "min", "max", "first", "last", "n_unique", "std", "var"
]
"""Aggregations :func:`groupby_agg` computes, with Polars' meaning of each."""

HOWS: tuple[str, ...] = get_args(AggHow)

_ORDERED: frozenset[str] = frozenset({"first", "last"})


@dataclass(frozen=True, slots=True)
class Agg:
    """One aggregation: ``how`` of ``column``, named ``name`` (default ``column_how``).

    ``len`` counts the rows of each group and takes no column.

    Examples
    --------
    >>> Agg("x", "mean").output
    'x_mean'
    >>> Agg(None, "len").output
    'len'
    """

    column: str | None
    how: AggHow
    name: str | None = None

    @property
    def output(self) -> str:
        """The name of the result column."""
        if self.name is not None:
            return self.name
        return "len" if self.column is None else f"{self.column}_{self.how}"

    def polars(self) -> pl.Expr:
        """The same aggregation as a Polars expression (what the result must equal)."""
        # len counts rows: it never reads its column
        if self.how == "len" or self.column is None:
            return pl.len().alias(self.output)
        whole: pl.Expr = getattr(pl.col(self.column), self.how)()
        return whole.alias(self.output)

    @property
    def follows_order(self) -> bool:
        """Whether the result depends on the order of the rows (``first``, ``last``)."""
        return self.how in _ORDERED

    @staticmethod
    def normalise(
        aggs: Sequence[Agg | tuple[str | None, ...]] | Mapping[str, str | Sequence[str]],
        *,
        where: str,
    ) -> list[Agg]:
        """Aggregations from ``[Agg(...)]``, ``[("x", "sum"), ("x", "mean", "avg_x")]`` or ``{"x": ["sum"]}``.

        ``("*", "len")`` counts rows, as ``Agg(None, "len")`` does. ``where`` starts
        the error messages (``"groupby_agg"``).

        Raises
        ------
        TypeError
            A spec is not one of these forms, or a column or name is not a string.
        ValueError
            No aggregation, an unknown ``how``, a ``how`` without its column, or an
            output name given twice.
        """
        items: list[Agg] = []
        if isinstance(aggs, str | bytes | Agg) or not isinstance(aggs, Iterable):
            raise TypeError(
                f"{where}: give the aggregations as a list of Agg or (column, how) tuples, "
                f"or a dict {{column: how or [hows]}}; got {aggs!r}"
            )
        if isinstance(aggs, Mapping):
            for column, hows in aggs.items():
                listed = [hows] if isinstance(hows, str) else hows
                if (
                    isinstance(hows, bytes) or not isinstance(hows, Iterable)
                    or not all(isinstance(how, str) for how in listed)
                ):  # fmt: skip
                    raise TypeError(
                        f"{where}: the aggregations of column {column!r} must be a name or a "
                        f"list of names (such as 'sum' or ['sum', 'max']); got {hows!r}"
                    )
                for how in listed:
                    items.append(Agg(column, how))  # type: ignore[arg-type]  # checked below
        else:
            for spec in aggs:
                if isinstance(spec, Agg):
                    items.append(spec)
                elif isinstance(spec, tuple) and len(spec) in (2, 3):
                    items.append(Agg(*spec))  # type: ignore[arg-type]
                else:
                    raise TypeError(
                        f"{where}: an aggregation is an Agg, (column, how) or (column, how, name), "
                        f"got {spec!r}"
                    )
        if not items:
            raise ValueError(f"{where}: give at least one aggregation")
        for agg in items:
            if not isinstance(agg.how, str) or agg.how not in HOWS:
                raise ValueError(
                    f"{where}: unknown aggregation {agg.how!r} for column `{agg.column}`; "
                    f"choose from {list(HOWS)}"
                )
            if agg.how != "len" and agg.column is None:
                raise ValueError(f"{where}: aggregation {agg.how!r} needs a column")
            if not isinstance(agg.column, str | None) or not isinstance(agg.name, str | None):
                raise TypeError(
                    f"{where}: the column and name of aggregation {agg.how!r} must be strings; "
                    f"got column {agg.column!r}, name {agg.name!r}"
                )
        items = [
            Agg(None, "len", a.name) if (a.column == "*" and a.how == "len") else a for a in items
        ]
        names = [a.output for a in items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"{where}: output names {duplicates} repeat; name them with Agg(name=...)"
            )
        return items
