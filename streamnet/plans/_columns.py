"""Which input columns a plan step needs to give the output columns asked of it.

What the network's column pruning reads off each step (see
``streamnet/network/_columns.py``). A set of column names, or None for "every
column" (the step's needs cannot be told from its expressions: ``pl.all()``, a
selector, a regular expression). A step runs whole, so it needs every column its
expressions read, whatever is wanted of it; asking for every output column
(None) needs every input column, except of a ``Select``, which reads only its own.

`step_outputs` goes the other way, for the network's predicate pushdown: the
columns a step gives for input columns known by name.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from streamnet.plans._plan import (
    Cast,
    Filter,
    PartialAggregate,
    Rename,
    Select,
    Stamp,
    Step,
    WithColumns,
)

__all__ = ["Columns", "expression_columns", "step_needs", "step_outputs", "union"]

Columns = frozenset[str] | None
"""Column names, or None for every column."""


def union(sets: Iterable[Columns]) -> Columns:
    """All the columns of ``sets`` (None if any is None)."""
    out: set[str] = set()
    for columns in sets:
        if columns is None:
            return None
        out |= columns
    return frozenset(out)


def _output(expr: pl.Expr) -> str | None:
    try:
        return expr.meta.output_name()
    except pl.exceptions.PolarsError:
        return None


def expression_columns(exprs: Iterable[pl.Expr]) -> Columns:
    """The columns ``exprs`` read, or None when one of them selects columns by pattern,
    type or wildcard (``pl.all()``, ``cs.numeric()``, ``pl.col("^a.*$")``)."""
    read: set[str] = set()
    for expr in exprs:
        if expr.meta.has_multiple_outputs():
            return None
        read.update(expr.meta.root_names())
    return frozenset(read)


def _outputs(exprs: Iterable[pl.Expr]) -> dict[str, pl.Expr] | None:
    """Each expression by the column it gives; None if one's name is not known."""
    named: dict[str, pl.Expr] = {}
    for expr in exprs:
        if expr.meta.has_multiple_outputs():
            return None
        name = _output(expr)
        if name is None:
            return None
        named[name] = expr
    return named


def step_needs(step: Step, wanted: Columns) -> Columns:
    """The input columns ``step`` needs to give the output columns ``wanted``."""
    if isinstance(step, PartialAggregate):  # its output is its own: keys and partials
        aggregated = {agg.column for agg in step.aggs if agg.column is not None}
        return frozenset({*step.keys, *aggregated})
    if isinstance(step, Select):  # steps run whole: every expression's columns
        return expression_columns(step.exprs)
    if wanted is None:
        return None
    if isinstance(step, Filter):
        return union([wanted, expression_columns([step.predicate])])
    if isinstance(step, WithColumns):
        named = _outputs(step.exprs)
        if named is None:
            return None
        # the columns it adds or replaces come from its expressions (all of them run), the
        # others pass through
        return union([wanted - named.keys(), expression_columns(step.exprs)])
    if isinstance(step, Rename):  # every old name must be there; outputs map back
        back = {new: old for old, new in step.mapping.items()}
        kept = {back.get(name, name) for name in wanted if name in back or name not in step.mapping}
        return frozenset(kept | set(step.mapping))
    if isinstance(step, Cast):  # every cast column must be there
        return wanted | frozenset(step.types)
    if isinstance(step, Stamp):
        return frozenset(wanted - set(step.columns))
    return None  # a step this analysis does not know: every column


def step_outputs(step: Step, names: Columns) -> Columns:
    """The columns ``step`` gives for an input of columns ``names`` (None: not known)."""
    if isinstance(step, Select):
        named = _outputs(step.exprs)
        return None if named is None else frozenset(named)
    if names is None:
        return None
    if isinstance(step, Filter | Cast):
        return names
    if isinstance(step, WithColumns):
        named = _outputs(step.exprs)
        return None if named is None else names | frozenset(named)
    if isinstance(step, Rename):
        return frozenset(step.mapping.get(name, name) for name in names)
    if isinstance(step, Stamp):
        return names | frozenset(step.columns)
    return None  # a step this analysis does not know (a PartialAggregate ends a fused plan only)
