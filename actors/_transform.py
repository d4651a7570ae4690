"""Local transforms: filter, select, with_columns, rename, map_chunks.

``filter``, ``select``, ``with_columns`` and ``rename`` each contribute one
step to a plan (`streamnet.Plan`) that the Context's backend runs on every
chunk (`streamnet.run_plan`), keeping sequence numbers. Expressions are Polars
expressions, and must be row-wise (see `streamnet.check_row_wise`);
`map_chunks` is for work per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from actors._columns import IntoExpr, IntoExprs, as_exprs
from actors._typing import TableKind
from streamnet import (
    Channel,
    Context,
    Filter,
    Message,
    Rename,
    Select,
    Step,
    TableChunk,
    WithColumns,
    check_row_wise,
    define_actor,
    run_plan,
)

__all__ = ["filter", "map_chunks", "rename", "select", "with_columns"]


def _filter_step(predicate: pl.Expr, **_: Any) -> Step:
    return Filter(predicate)


def _select_step(exprs: tuple[IntoExprs, ...], named: dict[str, IntoExpr], **_: Any) -> Step:
    return Select(tuple(as_exprs(exprs, named)))


def _with_columns_step(
    exprs: tuple[IntoExprs, ...], named: dict[str, IntoExpr], **_: Any
) -> Step | None:
    columns = tuple(as_exprs(exprs, named))
    return WithColumns(columns) if columns else None


def _rename_step(mapping: Mapping[str, str], **_: Any) -> Step | None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"rename: `mapping` must be a mapping old -> new, got {mapping!r}")
    return Rename(dict(mapping)) if mapping else None


def _check_rename(actor: str, *, mapping: object, **_: Any) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"rename: `mapping` must be a mapping old -> new, got {mapping!r}")


def _check_filter(actor: str, *, predicate: object, **_: Any) -> None:
    if not isinstance(predicate, pl.Expr):
        raise TypeError(f"filter: `predicate` must be a Polars expression, got {predicate!r}")
    check_row_wise([predicate], actor=actor, where="predicate")


def _check_select(
    actor: str, *, exprs: tuple[IntoExprs, ...], named: dict[str, IntoExpr], **_: Any
) -> None:
    columns = as_exprs(exprs, named)
    if not columns:
        raise TypeError(
            f"actor `{actor}`: `select` needs at least one column name or expression; got none"
        )
    check_row_wise(columns, actor=actor, where="expressions", select=True)


def _check_with_columns(
    actor: str, *, exprs: tuple[IntoExprs, ...], named: dict[str, IntoExpr], **_: Any
) -> None:
    check_row_wise(as_exprs(exprs, named), actor=actor, where="expressions")


@define_actor(check=_check_filter, plan=_filter_step)
async def filter(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], predicate: pl.Expr
) -> None:
    """Keep the rows where ``predicate`` (a boolean Polars expression) is true.

    The predicate must be row-wise, as it is evaluated one chunk at a time.

    Raises
    ------
    ExpressionError
        When the node is made, if the predicate is not row-wise
        (``pl.col("x") > pl.col("x").mean()``, ``pl.col("x").is_duplicated()``...).

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, filter, from_polars
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [1, 2, 3]})
    >>> Network(ctx, [from_polars(ctx, a, df), filter(ctx, a, b, pl.col("x") > 1), sink]).run()
    >>> sink.result()["x"].to_list()
    [2, 3]
    """
    await run_plan(ctx, ch_in, ch_out)


@define_actor(check=_check_select, plan=_select_step)
async def select(
    ctx: Context,
    /,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *exprs: IntoExprs,
    **named: IntoExpr,
) -> None:
    """Keep or compute columns: names or Polars expressions; keywords name the result.

    Raises
    ------
    ExpressionError
        When the node is made, if an expression is not row-wise (``cum_sum()``,
        ``shift()``, ``pl.len()``, an aggregation...) or every one is a literal:
        they are evaluated one chunk at a time.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, select
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [1, 2], "y": [3, 4]})
    >>> Network(ctx, [from_polars(ctx, a, df), select(ctx, a, b, "y", z=pl.col("x") * 10), sink]).run()
    >>> sink.result().to_dicts()
    [{'y': 3, 'z': 10}, {'y': 4, 'z': 20}]
    """
    await run_plan(ctx, ch_in, ch_out)


@define_actor(check=_check_with_columns, plan=_with_columns_step)
async def with_columns(
    ctx: Context,
    /,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *exprs: IntoExprs,
    **named: IntoExpr,
) -> None:
    """Add or replace columns computed by Polars expressions; keywords name them.

    Raises
    ------
    ExpressionError
        When the node is made, if an expression is not row-wise (``cum_sum()``,
        ``shift()``, ``rank()``, ``over(...)``, an aggregation...): they are
        evaluated one chunk at a time. ``map_chunks`` computes per chunk on purpose.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, with_columns
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [1, 2]})
    >>> Network(ctx, [from_polars(ctx, a, df), with_columns(ctx, a, b, y=pl.col("x") + 1), sink]).run()
    >>> sink.result()["y"].to_list()
    [2, 3]
    """
    await run_plan(ctx, ch_in, ch_out)


@define_actor(check=_check_rename, plan=_rename_step)
async def rename(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    mapping: Mapping[str, str],
) -> None:
    """Rename columns, ``{"old": "new"}``.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, rename
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [1]})
    >>> Network(ctx, [from_polars(ctx, a, df), rename(ctx, a, b, {"x": "id"}), sink]).run()
    >>> sink.result().columns
    ['id']
    """
    await run_plan(ctx, ch_in, ch_out)


@define_actor
async def map_chunks(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    fn: Callable[[Any], Any],
    *,
    kind: TableKind = "arrow",
    in_thread: bool = True,
) -> None:
    """Apply ``fn`` to each chunk's table and send what it returns.

    The way to compute per chunk on purpose: ``filter``, ``select`` and
    ``with_columns`` refuse expressions that are not row-wise, while here
    ``lambda df: df.with_columns(pl.col("x").rank())`` ranks within each chunk.

    Parameters
    ----------
    fn
        Takes the table (``kind``: ``"arrow"`` gives a ``pyarrow.Table``, the CPU
        backend's native type; ``"polars"`` or ``"pandas"`` a DataFrame) and
        returns a table of any of these types. Returning None drops the chunk.
    in_thread
        Run ``fn`` in the Context's thread pool (default); it must then be thread-safe.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, map_chunks
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> sink = collect(ctx, b, into="polars")
    >>> df = pl.DataFrame({"x": [3, 1, 2]})
    >>> Network(ctx, [from_polars(ctx, a, df), map_chunks(ctx, a, b, lambda t: t.sort_by("x")), sink]).run()
    >>> sink.result()["x"].to_list()
    [1, 2, 3]
    """
    if not callable(fn):
        raise TypeError(f"map_chunks: `fn` must be callable, got {fn!r}")
    convert: Callable[[TableChunk], Any]
    if kind == "arrow":
        convert = TableChunk.to_arrow
    elif kind == "polars":
        convert = TableChunk.to_polars
    elif kind == "pandas":
        convert = TableChunk.to_pandas
    else:
        raise ValueError(f"map_chunks: `kind` must be 'arrow', 'polars' or 'pandas', got {kind!r}")
    where = f"map_chunks({getattr(fn, '__qualname__', fn)!s})"
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        if in_thread:  # the conversion too: it may copy or cast data
            out = await ctx.to_thread(lambda c: fn(convert(c)), chunk)
        else:
            out = fn(convert(chunk))
        if out is not None:
            chunk = ctx.backend.from_host(out, where=f"{where}: the function's result")
            await ch_out.send(ctx, Message(msg.sequence_number, chunk))
    await ch_out.drain(ctx)
