"""Column references: which columns expressions need, and a clear error when one is missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import polars as pl

from streamnet import ColumnNotFoundError, TableChunk, current_actor_name, describe_schema

if TYPE_CHECKING:
    from streamnet import ArrowSchema, Predicate

__all__ = [
    "ColumnCheck",
    "needs_with",
    "passes_columns",
    "passes_predicates",
    "predicates_over",
    "same_columns",
    "IntoExpr",
    "IntoExprs",
    "as_exprs",
    "check_columns",
    "describe_schema",
    "referenced_columns",
]

IntoExpr = pl.Expr | str
"""A Polars expression, or a column name."""

IntoExprs = IntoExpr | Sequence[IntoExpr]
"""One expression or column name, or a list of them (as Polars' ``select`` takes)."""


def as_exprs(exprs: Iterable[IntoExprs], named: dict[str, IntoExpr] | None = None) -> list[pl.Expr]:
    """Expressions from expressions and column names (``named`` become aliases); a list
    or tuple of them counts as its items, as in Polars' ``select([...])``."""
    out: list[pl.Expr] = []
    for expr in exprs:
        if isinstance(expr, list | tuple):
            out.extend(_as_expr(item) for item in expr)
        else:
            out.append(_as_expr(expr))
    for name, expr in (named or {}).items():
        out.append(_as_expr(expr).alias(name))
    return out


def _as_expr(expr: object) -> pl.Expr:
    if isinstance(expr, str):
        return pl.col(expr)
    if isinstance(expr, pl.Expr):
        return expr
    raise TypeError(
        f"expected a Polars expression or a column name, got {type(expr).__name__} {expr!r}"
    )


def referenced_columns(exprs: Iterable[pl.Expr]) -> set[str]:
    """Columns the expressions read (selectors like ``pl.all()`` read none by name)."""
    names: set[str] = set()
    for expr in exprs:
        names.update(expr.meta.root_names())
    return names


def check_columns(needed: Iterable[str], available: Sequence[str], *, where: str = "") -> None:
    """Raise `ColumnNotFoundError` naming the actor and the missing columns.

    ``where`` says what asked for them (``"filter predicate"``); the actor's
    name comes from the running Network.
    """
    have = set(available)
    missing = sorted(set(needed) - have)
    if not missing:
        return
    actor = current_actor_name()
    prefix = f"actor `{actor}`" if actor else "streamnet"
    what = f" ({where})" if where else ""
    listed = ", ".join(f"`{name}`" for name in missing)
    noun = "column" if len(missing) == 1 else "columns"
    raise ColumnNotFoundError(
        f"{prefix}: {noun} {listed} not found{what}; columns are {list(available)}"
    )


class ColumnCheck:
    """:func:`check_columns` for a stream: each distinct set of columns is checked once."""

    def __init__(self, needed: Iterable[str], *, where: str = "") -> None:
        self.needed = set(needed)
        self.where = where
        self._seen: set[tuple[str, ...]] = set()
        self._schema: ArrowSchema | None = None

    def __call__(self, columns: Sequence[str]) -> None:
        key = tuple(columns)
        if key not in self._seen:
            check_columns(self.needed, key, where=self.where)
            self._seen.add(key)

    def chunk(self, chunk: TableChunk) -> None:
        """Check a chunk's columns; free for a chunk of the schema checked last (chunks of
        one stream share one schema object)."""
        if not self.needed:
            return
        schema = chunk.schema
        if schema is not self._schema:
            self(schema.names)
            self._schema = schema


# ------------------------------------------------------------------ column pruning
def passes_columns(wanted: frozenset[str] | None, **_: object) -> frozenset[str] | None:
    """An actor that passes its rows on as they are needs what is wanted of it
    (``define_actor(columns=passes_columns)``)."""
    return wanted


def needs_with(wanted: frozenset[str] | None, names: Iterable[str] | None) -> frozenset[str] | None:
    """What is wanted and ``names`` (None: every column). Names that are not a list of
    column names (an actor's bad argument, which it reports when it runs) need every
    column: a Network's passes read them before any actor checks them."""
    if wanted is None or names is None or not isinstance(names, Iterable):
        return None
    listed = list(names)
    if not all(isinstance(name, str) for name in listed):
        return None
    return wanted | frozenset(listed)


# ------------------------------------------------------------------ predicate pushdown
def same_columns(
    columns: Mapping[str, frozenset[str] | None], /, **_: object
) -> frozenset[str] | None:
    """An actor that passes its rows on as they are gives its input's columns
    (``define_actor(emits=same_columns)``); not known when its inputs differ."""
    known = set(columns.values())
    return known.pop() if len(known) == 1 else None


def passes_predicates(
    wanted: frozenset[Predicate], columns: Mapping[str, frozenset[str] | None], /, **_: object
) -> frozenset[Predicate]:
    """An actor that passes its rows on as they are, whatever their number and order, lets
    every predicate through to its inputs (``define_actor(predicates=passes_predicates)``)."""
    return wanted


def predicates_over(
    wanted: frozenset[Predicate], names: Iterable[str] | None
) -> frozenset[Predicate]:
    """The predicates of ``wanted`` that read only ``names`` (None: every column); none
    for names that are not a list of column names (an actor's bad argument, see
    `needs_with`)."""
    if names is None:
        return wanted
    listed = list(names) if isinstance(names, Iterable) else None
    if listed is None or not all(isinstance(name, str) for name in listed):
        return frozenset()
    allowed = frozenset(listed)
    return frozenset(p for p in wanted if p.columns <= allowed)
