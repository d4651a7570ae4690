"""Sources from in-memory tables: Arrow, Polars, pandas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from actors._pushed import PushedFilter
from streamnet import Channel, Context, Message, TableChunk, current_actor, define_actor, host_kind

if TYPE_CHECKING:
    import pandas as pd

    from streamnet import ArrowTable, PolarsFrame

__all__ = ["DEFAULT_CHUNK_ROWS", "chunk_row_count", "from_arrow", "from_pandas", "from_polars"]

DEFAULT_CHUNK_ROWS = 100_000
"""Rows per chunk when neither ``chunk_rows`` nor ``chunk_bytes`` is given."""


def chunk_row_count(
    num_rows: int, nbytes: int, chunk_rows: int | None, chunk_bytes: int | None
) -> int:
    """Rows per chunk for a table of ``num_rows`` rows and ``nbytes`` bytes."""
    if chunk_rows is not None and chunk_bytes is not None:
        raise ValueError("give `chunk_rows` or `chunk_bytes`, not both")
    if chunk_rows is not None:
        if type(chunk_rows) is not int or chunk_rows < 1:
            raise ValueError(f"`chunk_rows` must be an int >= 1, got {chunk_rows!r}")
        return chunk_rows
    if chunk_bytes is not None:
        if type(chunk_bytes) is not int or chunk_bytes < 1:
            raise ValueError(f"`chunk_bytes` must be an int >= 1, got {chunk_bytes!r}")
        row_bytes = nbytes / num_rows if num_rows else 1.0
        return max(1, int(chunk_bytes // max(row_bytes, 1e-9)))
    return DEFAULT_CHUNK_ROWS


def _emits(columns: Mapping[str, frozenset[str] | None], /, *, table: Any = None, df: Any = None,
           **_: Any) -> frozenset[str] | None:  # fmt: skip
    """The columns of the table or frame (a pandas frame's are not known: its index)."""
    source = table if table is not None else df
    if host_kind(source) in ("arrow", "polars"):
        return frozenset(source.schema.names if host_kind(source) == "arrow" else source.columns)
    return None


def _rows(*, table: Any = None, df: Any = None, **_: Any) -> int | None:
    """The table's or frame's rows."""
    source = table if table is not None else df
    return len(source) if host_kind(source) is not None else None


async def _send_slices(
    ctx: Context,
    ch_out: Channel[TableChunk],
    whole: TableChunk,
    chunk_rows: int | None,
    chunk_bytes: int | None,
) -> None:
    """Send ``whole`` in slices of the rows ``chunk_rows`` or ``chunk_bytes`` ask for (the
    rows of the predicates a Network pushed to the actor only)."""
    node = current_actor()
    pushed = await PushedFilter.of(ctx, node)
    whole = await ctx.to_thread(pushed, whole)
    num_rows = whole.num_rows
    step = chunk_row_count(num_rows, whole.nbytes, chunk_rows, chunk_bytes)
    ctx.progress.expect(num_rows)
    if num_rows == 0:  # one empty chunk carries the schema downstream
        await ch_out.send(ctx, Message(0, whole))
    for seq, offset in enumerate(range(0, num_rows, step)):
        chunk = ctx.backend.slice(whole, offset, step)
        await ch_out.send(ctx, Message(seq, chunk))
        ctx.progress.advance(chunk.num_rows)
    await ch_out.drain(ctx)


@define_actor(emits=_emits, pushdown=True, rows=_rows)
async def from_arrow(
    ctx: Context,
    ch_out: Channel[TableChunk],
    table: ArrowTable,
    *,
    chunk_rows: int | None = None,
    chunk_bytes: int | None = None,
) -> None:
    """Stream an Arrow table in chunks of ``chunk_rows`` rows or about ``chunk_bytes`` bytes.

    Chunks are zero-copy slices, numbered 0, 1, 2... in row order. An empty
    table gives one empty chunk, so its schema reaches the sink.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch)
    >>> Network(ctx, [from_arrow(ctx, ch, pa.table({"x": range(5)}), chunk_rows=2), sink]).run()
    >>> sink.result()["x"].to_pylist()
    [0, 1, 2, 3, 4]
    """
    try:
        whole = ctx.backend.from_arrow(table)
    except TypeError:  # the backend's contract: only for what is not an Arrow table or batch
        raise TypeError(
            f"from_arrow: `table` must be a pyarrow.Table, got {type(table).__name__}"
        ) from None
    await _send_slices(ctx, ch_out, whole, chunk_rows, chunk_bytes)


@define_actor(emits=_emits, pushdown=True, rows=_rows)
async def from_polars(
    ctx: Context,
    ch_out: Channel[TableChunk],
    df: PolarsFrame,
    *,
    chunk_rows: int | None = None,
    chunk_bytes: int | None = None,
) -> None:
    """Stream a Polars DataFrame in chunks (see :func:`from_arrow`).

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [from_polars(ctx, ch, pl.DataFrame({"x": [1, 2, 3]}), chunk_rows=1), sink]).run()
    >>> sink.result().height
    3
    """
    if host_kind(df) != "polars":
        lazy = type(df).__name__ == "LazyFrame"
        raise TypeError(
            "from_polars: got a LazyFrame; collect it first or use read_parquet"
            if lazy
            else f"from_polars: `df` must be a polars.DataFrame, got {type(df).__name__}"
        )
    whole = ctx.backend.from_polars(df)  # its slices share its schema, worked out once
    await _send_slices(ctx, ch_out, whole, chunk_rows, chunk_bytes)


@define_actor(emits=_emits, pushdown=True, rows=_rows)
async def from_pandas(
    ctx: Context,
    ch_out: Channel[TableChunk],
    df: pd.DataFrame,
    *,
    chunk_rows: int | None = None,
    chunk_bytes: int | None = None,
    preserve_index: bool = False,
) -> None:
    """Stream a pandas DataFrame in chunks (converted to Arrow once; see :func:`from_arrow`).

    Examples
    --------
    >>> import pandas as pd
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_pandas
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="pandas")
    >>> Network(ctx, [from_pandas(ctx, ch, pd.DataFrame({"x": [1, 2]})), sink]).run()
    >>> sink.result()["x"].tolist()
    [1, 2]
    """
    if not type(df).__module__.startswith("pandas"):
        raise TypeError(f"from_pandas: `df` must be a pandas.DataFrame, got {type(df).__name__}")
    whole = await ctx.to_thread(ctx.backend.from_pandas, df, preserve_index=preserve_index)
    await _send_slices(ctx, ch_out, whole, chunk_rows, chunk_bytes)
