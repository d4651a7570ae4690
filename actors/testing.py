"""Helpers for testing actors: run a linear pipeline on a table and get the result back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from actors._collect import collect
from actors._memory import from_arrow, from_pandas, from_polars
from actors._typing import TableKind
from streamnet import ActorNode, Channel, Context, Network, host_kind

if TYPE_CHECKING:
    import pandas as pd

    from streamnet import ArrowTable, HostTable, PolarsFrame

__all__ = ["Stage", "run_pipeline"]

Stage = Callable[[Context, Channel[Any], Channel[Any]], ActorNode]
"""Makes one actor between an input and an output channel: ``lambda ctx, i, o: ...``."""


@overload
def run_pipeline(
    data: HostTable,
    *stages: Stage,
    chunk_rows: int | None = None,
    into: Literal["polars"] = "polars",
    ctx: Context | None = None,
    capacity: int = 2,
) -> PolarsFrame: ...


@overload
def run_pipeline(
    data: HostTable,
    *stages: Stage,
    chunk_rows: int | None = None,
    into: Literal["arrow"],
    ctx: Context | None = None,
    capacity: int = 2,
) -> ArrowTable: ...


@overload
def run_pipeline(
    data: HostTable,
    *stages: Stage,
    chunk_rows: int | None = None,
    into: Literal["pandas"],
    ctx: Context | None = None,
    capacity: int = 2,
) -> pd.DataFrame: ...


def run_pipeline(
    data: HostTable,
    *stages: Stage,
    chunk_rows: int | None = None,
    into: TableKind = "polars",
    ctx: Context | None = None,
    capacity: int = 2,
) -> PolarsFrame | ArrowTable | pd.DataFrame:
    """Stream ``data`` (a Polars, Arrow or pandas table) through ``stages`` in order and
    collect the result, a table of the kind ``into`` names (a Polars DataFrame by default).

    The source is the actor for ``data``'s kind (`from_polars`, `from_arrow`,
    `from_pandas`), so the network's picture and statistics name it as a user's would.

    Examples
    --------
    >>> from actors import filter
    >>> df = pl.DataFrame({"x": [1, 2, 3]})
    >>> run_pipeline(df, lambda ctx, i, o: filter(ctx, i, o, pl.col("x") != 2))["x"].to_list()
    [1, 3]
    """
    context = ctx if ctx is not None else Context()
    try:
        return _run(context, data, stages, chunk_rows, into, capacity)
    finally:
        if ctx is None:
            context.close()


def _run(
    context: Context,
    data: HostTable,
    stages: tuple[Stage, ...],
    chunk_rows: int | None,
    into: TableKind,
    capacity: int,
) -> Any:
    chans: list[Channel[Any]] = [
        context.create_channel(capacity=capacity) for _ in range(len(stages) + 1)
    ]
    kind = host_kind(data)
    if kind == "polars":
        source = from_polars(context, chans[0], data, chunk_rows=chunk_rows)
    elif kind == "pandas":
        source = from_pandas(context, chans[0], data, chunk_rows=chunk_rows)
    else:
        source = from_arrow(context, chans[0], data, chunk_rows=chunk_rows)
    nodes = [source]
    nodes += [stage(context, chans[i], chans[i + 1]) for i, stage in enumerate(stages)]
    sink = collect(context, chans[-1], into=into)
    Network(context, [*nodes, sink]).run()
    return sink.result()
