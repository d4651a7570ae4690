"""The checks of a plan's steps that need only column names, the same on every backend.

Each step is checked against the columns its predecessors leave: its
expressions must be row-wise (``_row_wise.py``) and the columns it reads by
name must be there. Errors name the actor that contributed the step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from streamnet._errors import ColumnNotFoundError, SchemaError
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
from streamnet.plans._row_wise import calls_python_function, check_row_wise

__all__ = ["calls_python", "check_step", "referenced_columns", "step_label"]


def step_label(step: Step) -> str:
    """How messages name a step: by its actor (``actor `filter#0```), else by its kind."""
    return f"actor `{step.actor}`" if step.actor else f"{type(step).__name__} step"


def referenced_columns(exprs: Iterable[pl.Expr]) -> set[str]:
    """Columns the expressions read by name (selectors like ``pl.all()`` name none)."""
    names: set[str] = set()
    for expr in exprs:
        names.update(expr.meta.root_names())
    return names


def _needs(step: Step) -> tuple[set[str], str]:
    """The columns ``step`` reads by name, and what reads them (for the message)."""
    if isinstance(step, Filter):
        return referenced_columns([step.predicate]), "filter predicate"
    if isinstance(step, Select):
        return referenced_columns(step.exprs), "select"
    if isinstance(step, WithColumns):
        return referenced_columns(step.exprs), "with_columns"
    if isinstance(step, Rename):
        return set(step.mapping), "rename"
    if isinstance(step, Cast):
        return set(step.types), "cast"
    if isinstance(step, PartialAggregate):
        read = {agg.column for agg in step.aggs if agg.column is not None}
        return set(step.keys) | read, "aggregation"
    return set(), ""


def check_step(step: Step, columns: Sequence[str]) -> None:
    """Check ``step`` against the ``columns`` of its input.

    Raises
    ------
    ExpressionError
        An expression of the step is not row-wise.
    ColumnNotFoundError
        The step reads a column that is not in ``columns``; the message names
        the step's actor, the columns missing and the columns there are.
    SchemaError
        A `Stamp` step's columns are already in ``columns``.
    TypeError
        ``step`` is not a step (`Filter`, `Select`...).
    """
    if not isinstance(
        step, Filter | Select | WithColumns | Rename | Cast | Stamp | PartialAggregate
    ):
        raise TypeError(f"a plan's steps are `Filter`, `Select`...; got {type(step).__name__}")
    actor = step.actor or type(step).__name__
    if isinstance(step, Filter):
        check_row_wise([step.predicate], actor=actor, where="predicate")
    elif isinstance(step, Select):
        check_row_wise(step.exprs, actor=actor, where="expressions", select=True)
    elif isinstance(step, WithColumns):
        check_row_wise(step.exprs, actor=actor, where="expressions")
    if isinstance(step, Stamp):
        taken = sorted(set(step.columns) & set(columns))
        if taken:
            listed = ", ".join(f"`{name}`" for name in taken)
            raise SchemaError(
                f"{step_label(step)}: the input has a column {listed}, a name the stream-order "
                f"columns {list(step.columns)} take (for first/last and keep='first'/'last'); "
                f"rename it; columns are {list(columns)}"
            )
    needed, where = _needs(step)
    missing = sorted(needed - set(columns))
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise ColumnNotFoundError(
            f"{step_label(step)}: {noun} {listed} not found ({where}); columns are {list(columns)}"
        )


def calls_python(step: Step) -> bool:
    """Whether an expression of ``step`` that makes columns calls a Python function
    (whose result types Polars learns only from the data), or cannot be inspected."""
    if isinstance(step, Select | WithColumns):
        return any(map(calls_python_function, step.exprs))
    return False
