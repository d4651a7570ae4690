"""Plans: per-chunk work as a value, a chain of Polars-expression steps after an optional source.

A local actor contributes a step (`Filter`, `Select`, `WithColumns`, `Rename`,
`Cast`, `Stamp`) and a source actor a source (`ParquetScan`, `Slices`); a
`Plan` chains them, and a backend runs the whole chain on each chunk. A plan may
end in a `PartialAggregate`: each chunk then becomes the partials of a group-by
(what `AggregationKernel.partial` gives), which the group-by actor merges. Every
step records the actor that contributed it, so that the picture, the
statistics and the errors name the actors the user wrote. A plan holds no
data but a `Slices` source's table: steps compare and hash by value (Polars
expressions by their structure), so a plan can be rewritten and compared.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import polars as pl

from streamnet._table_chunk import TableChunk
from streamnet.io._stores import FilePath, StorePath
from streamnet.plans._aggregation import Agg

__all__ = [
    "Cast",
    "Filter",
    "ParquetScan",
    "PartialAggregate",
    "Plan",
    "Rename",
    "Select",
    "Slices",
    "Source",
    "Stamp",
    "Step",
    "WithColumns",
]


def _comparable(value: Any) -> Any:
    """``value`` in a form that compares and hashes by value (an expression by its structure)."""
    if isinstance(value, pl.Expr):
        return value.meta
    if isinstance(value, tuple):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, Mapping):
        return tuple((key, _comparable(item)) for key, item in value.items())
    return value


class _ByValue:
    """Equality and hash over the dataclass fields, expressions compared by structure."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        return tuple(_comparable(getattr(self, f.name)) for f in fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self._key() == other._key())

    def __hash__(self) -> int:
        return hash((type(self), self._key()))


def _where(step: object) -> str:
    actor = getattr(step, "actor", "")
    return (
        f"{type(step).__name__} step of actor `{actor}`" if actor else f"{type(step).__name__} step"
    )


def _expressions(step: object, field: str, value: object) -> tuple[pl.Expr, ...]:
    items = (value,) if isinstance(value, pl.Expr) else value
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(
            f"{_where(step)}: `{field}` must be Polars expressions, got {type(value).__name__}"
        )
    exprs = tuple(items)
    bad = [type(e).__name__ for e in exprs if not isinstance(e, pl.Expr)]
    if bad or not exprs:
        raise TypeError(
            f"{_where(step)}: `{field}` must be one or more Polars expressions (`pl.col(...)`), "
            f"got {', '.join(bad) if bad else 'none'}"
        )
    return exprs


def _names(step: object, field: str, mapping: object, *, values: str) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise TypeError(
            f"{_where(step)}: `{field}` must be a non-empty mapping of column names to {values}, "
            f"got {mapping!r}"
        )
    bad = [key for key in mapping if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{_where(step)}: `{field}` keys must be column names; got {bad!r}")
    return MappingProxyType(dict(mapping))


def _is_polars_type(dtype: object) -> bool:
    return isinstance(dtype, pl.DataType) or (
        isinstance(dtype, type) and issubclass(dtype, pl.DataType)
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Step(_ByValue):
    """One row-wise step of a plan; ``actor`` names the actor that contributed it (``"filter#0"``)."""

    actor: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str):
            raise TypeError(f"{type(self).__name__}: `actor` must be a str, got {self.actor!r}")


@dataclass(frozen=True, slots=True, eq=False)
class Filter(Step):
    """Keep the rows where ``predicate`` is true (Polars' ``filter``)."""

    predicate: pl.Expr

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        if not isinstance(self.predicate, pl.Expr):
            raise TypeError(
                f"{_where(self)}: `predicate` must be a Polars expression, "
                f"got {type(self.predicate).__name__}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class Select(Step):
    """Only the columns ``exprs`` give (Polars' ``select``)."""

    exprs: tuple[pl.Expr, ...]

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        object.__setattr__(self, "exprs", _expressions(self, "exprs", self.exprs))


@dataclass(frozen=True, slots=True, eq=False)
class WithColumns(Step):
    """The columns ``exprs`` give added or replaced (Polars' ``with_columns``)."""

    exprs: tuple[pl.Expr, ...]

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        object.__setattr__(self, "exprs", _expressions(self, "exprs", self.exprs))


@dataclass(frozen=True, slots=True, eq=False)
class Rename(Step):
    """Columns renamed, old name to new name (Polars' ``rename``)."""

    mapping: Mapping[str, str]

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        mapping = _names(self, "mapping", self.mapping, values="new names")
        bad = [new for new in mapping.values() if not isinstance(new, str)]
        if bad:
            raise TypeError(f"{_where(self)}: new names must be str; got {bad!r}")
        object.__setattr__(self, "mapping", mapping)


@dataclass(frozen=True, slots=True, eq=False)
class Cast(Step):
    """Columns cast to Polars types; a column of a type Polars does not hold exactly is
    converted on purpose (``actors.cast``); ``strict`` fails on a value that does not fit."""

    types: Mapping[str, Any]
    strict: bool = True

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        types = _names(self, "types", self.types, values="Polars types")
        bad = [repr(dtype) for dtype in types.values() if not _is_polars_type(dtype)]
        if bad:
            raise TypeError(
                f"{_where(self)}: `types` must map columns to Polars types (`pl.Int64`); "
                f"got {', '.join(bad)}"
            )
        if not isinstance(self.strict, bool):
            raise TypeError(f"{_where(self)}: `strict` must be a bool, got {self.strict!r}")
        object.__setattr__(self, "types", types)


@dataclass(frozen=True, slots=True, eq=False)
class Stamp(Step):
    """Two Int64 columns, the rank and the chunk's place in its stream, which with the row
    order inside a chunk give a multi-rank stream's order (for ``first``/``last``)."""

    columns: tuple[str, str] = ("__rank", "__seq")

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        columns = tuple(self.columns)
        if (
            len(columns) != 2
            or not all(isinstance(c, str) for c in columns)
            or (columns[0] == columns[1])
        ):
            raise ValueError(
                f"{_where(self)}: `columns` must be two distinct column names, got {self.columns!r}"
            )
        object.__setattr__(self, "columns", columns)


@dataclass(frozen=True, slots=True, eq=False)
class PartialAggregate(Step):
    """The partials of aggregations ``aggs`` by ``keys`` of each chunk: a plan's last step.

    Each chunk becomes what the backend's `AggregationKernel.partial` makes of it
    (its ``partial_schema``), for the group-by actor to merge and finish.
    ``keys == ()`` aggregates a chunk into one row. With ``ordered`` (``first``,
    ``last``) the chunks carry the stream-order columns ``__rank`` and ``__seq``
    (a `Stamp` step before it).
    """

    keys: tuple[str, ...]
    aggs: tuple[Agg, ...]
    ordered: bool = False

    def __post_init__(self) -> None:
        Step.__post_init__(self)
        keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
        if not all(isinstance(key, str) for key in keys):
            raise TypeError(f"{_where(self)}: `keys` must be column names, got {self.keys!r}")
        aggs = tuple(self.aggs)
        if not aggs or not all(isinstance(agg, Agg) for agg in aggs):
            raise TypeError(f"{_where(self)}: `aggs` must be one or more Agg, got {self.aggs!r}")
        if not isinstance(self.ordered, bool):
            raise TypeError(f"{_where(self)}: `ordered` must be a bool, got {self.ordered!r}")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "aggs", aggs)


@dataclass(frozen=True, slots=True, eq=False)
class ParquetScan(_ByValue):
    """A plan's source: Parquet files, with the columns to read (all when None) and a
    predicate read into the scan.

    ``partitioning`` names the partition columns of a hive-partitioned dataset
    and their types: each scan task adds its file's values of them
    (`ScanTask.partition`) after the file's own columns, before the predicate
    and the projection.
    """

    paths: tuple[FilePath, ...]
    columns: tuple[str, ...] | None = None
    predicate: pl.Expr | None = None
    actor: str = ""
    partitioning: tuple[tuple[str, pl.DataType], ...] = ()

    def __post_init__(self) -> None:
        one = isinstance(self.paths, str | os.PathLike | StorePath)
        items: Iterable[Any] = (self.paths,) if one else self.paths
        paths = tuple(p if isinstance(p, StorePath) else Path(p) for p in items)
        if not paths:
            raise ValueError(f"{_where(self)}: `paths` names no file; got {self.paths!r}")
        object.__setattr__(self, "paths", paths)
        if self.columns is not None:
            if isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns):
                raise TypeError(
                    f"{_where(self)}: `columns` must be column names, got {self.columns!r}"
                )
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.predicate is not None and not isinstance(self.predicate, pl.Expr):
            raise TypeError(
                f"{_where(self)}: `predicate` must be None or a Polars expression, "
                f"got {type(self.predicate).__name__}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class Slices:
    """A plan's source: an in-memory table (``from_polars``, ``from_arrow``...), run by slices.

    Compares by the identity of its table.
    """

    table: TableChunk
    actor: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.table, TableChunk):
            raise TypeError(
                f"{_where(self)}: `table` must be a TableChunk, got {type(self.table).__name__}"
            )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Slices:
            return NotImplemented
        return self.table is other.table and self.actor == other.actor

    def __hash__(self) -> int:
        return hash((Slices, id(self.table), self.actor))


Source = ParquetScan | Slices
"""Where a plan's chunks come from when it has a source."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Per-chunk work: an optional source, then steps run in order on each chunk.

    Examples
    --------
    >>> import polars as pl
    >>> plan = Plan(steps=(Filter(pl.col("x") > 1, actor="filter#0"),))
    >>> plan = plan.then(Plan(steps=(WithColumns((pl.col("x") * 2,), actor="with_columns#0"),)))
    >>> plan.actors()
    ('filter#0', 'with_columns#0')
    >>> plan == Plan(steps=(Filter(pl.col("x") > 1, actor="filter#0"),
    ...                     WithColumns((pl.col("x") * 2,), actor="with_columns#0")))
    True
    """

    source: Source | None = None
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if self.source is not None and not isinstance(self.source, ParquetScan | Slices):
            raise TypeError(
                f"Plan: `source` must be None, a ParquetScan or Slices, "
                f"got {type(self.source).__name__}"
            )
        steps = (self.steps,) if isinstance(self.steps, Step) else tuple(self.steps)
        bad = [type(step).__name__ for step in steps if not isinstance(step, Step)]
        if bad:
            raise TypeError(f"Plan: `steps` must be plan steps (`Filter`...), got {bad}")
        early = [s.actor or "?" for s in steps[:-1] if isinstance(s, PartialAggregate)]
        if early:
            raise ValueError(
                f"Plan: a PartialAggregate step ends a plan; the one of actors {early} is "
                f"followed by other steps"
            )
        object.__setattr__(self, "steps", steps)

    def then(self, other: Plan) -> Plan:
        """This plan followed by ``other``'s steps.

        Raises
        ------
        ValueError
            ``other`` has a source: a source starts a plan; or this plan ends in a
            `PartialAggregate`, which nothing follows.
        """
        if not isinstance(other, Plan):
            raise TypeError(f"Plan.then: expected a Plan, got {type(other).__name__}")
        if other.source is not None:
            raise ValueError(
                f"Plan.then: the plan that follows has a source (of actor "
                f"`{other.source.actor}`); a source starts a plan, it cannot follow steps"
            )
        return Plan(self.source, self.steps + other.steps)

    def actors(self) -> tuple[str, ...]:
        """The actors that contributed the source and the steps, in order, each once."""
        named = [self.source.actor] if self.source is not None else []
        named.extend(step.actor for step in self.steps)
        return tuple(dict.fromkeys(name for name in named if name))
