"""Local transforms: filter, select, with_columns, rename, map_chunks.

Each runs its kernel in the Context's thread pool, one chunk at a time, and
keeps sequence numbers. Expressions are Polars expressions, and must be
row-wise (see `actors._expressions`); `map_chunks` is for work per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from actors._columns import ColumnCheck, IntoExpr, as_exprs, referenced_columns
from actors._expressions import check_row_wise
from actors._schemas import KernelSchema
from actors._typing import TableKind
from streamnet import Channel, Context, Message, TableChunk, define_actor

__all__ = ["filter", "map_chunks", "rename", "select", "with_columns"]


async def _map_frames(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    kernel: Callable[[pl.DataFrame], pl.DataFrame],
    needed: set[str],
    where: str,
) -> None:
    check = ColumnCheck(needed, where=where)
    outputs = KernelSchema(kernel)

    def run(chunk: TableChunk) -> TableChunk:  # in a thread: converting a chunk is work too
        frame = chunk.to_polars()
        return outputs.chunk(kernel(frame), chunk, frame)

    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        check.chunk(chunk)
        out = await ctx.to_thread(run, chunk)
        await ch_out.send(ctx, Message(msg.sequence_number, out))
    await ch_out.drain(ctx)


def _check_filter(actor: str, *, predicate: object, **_: Any) -> None:
    if not isinstance(predicate, pl.Expr):
        raise TypeError(f"filter: `predicate` must be a Polars expression, got {predicate!r}")
    check_row_wise([predicate], actor=actor, where="predicate")


def _check_select(
    actor: str, *, exprs: tuple[IntoExpr, ...], named: dict[str, IntoExpr], **_: Any
) -> None:
    check_row_wise(as_exprs(exprs, named), actor=actor, where="expressions", select=True)


def _check_with_columns(
    actor: str, *, exprs: tuple[IntoExpr, ...], named: dict[str, IntoExpr], **_: Any
) -> None:
    check_row_wise(as_exprs(exprs, named), actor=actor, where="expressions")


@define_actor(check=_check_filter)
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
    >>> import polars as pl
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
    await _map_frames(
        ctx,
        ch_in,
        ch_out,
        lambda df: df.filter(predicate),
        referenced_columns([predicate]),
        "filter predicate",
    )


@define_actor(check=_check_select)
async def select(
    ctx: Context,
    /,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *exprs: IntoExpr,
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
    >>> import polars as pl
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
    columns = as_exprs(exprs, named)
    await _map_frames(
        ctx, ch_in, ch_out, lambda df: df.select(columns), referenced_columns(columns), "select"
    )


@define_actor(check=_check_with_columns)
async def with_columns(
    ctx: Context,
    /,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    *exprs: IntoExpr,
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
    >>> import polars as pl
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
    columns = as_exprs(exprs, named)
    await _map_frames(
        ctx,
        ch_in,
        ch_out,
        lambda df: df.with_columns(columns),
        referenced_columns(columns),
        "with_columns",
    )


@define_actor
async def rename(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    mapping: Mapping[str, str],
) -> None:
    """Rename columns, ``{"old": "new"}``.

    Examples
    --------
    >>> import polars as pl
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
    if not isinstance(mapping, Mapping):
        raise TypeError(f"rename: `mapping` must be a mapping old -> new, got {mapping!r}")
    renames = dict(mapping)
    await _map_frames(ctx, ch_in, ch_out, lambda df: df.rename(renames), set(renames), "rename")


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
    >>> import polars as pl
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
