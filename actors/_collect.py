"""Sinks that gather a stream into one table."""

from __future__ import annotations

import itertools
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from actors._columns import describe_schema
from streamnet import (
    Channel,
    Context,
    SchemaError,
    SequenceError,
    TableChunk,
    current_actor_name,
    define_actor,
)

__all__ = ["CollectInto", "collect"]

CollectInto = Literal["arrow", "polars", "pandas"]
"""The table type :func:`collect` returns."""


def _concat(chunks: list[tuple[int, TableChunk]], into: CollectInto) -> Any:
    if into == "polars":
        frames = [chunk.to_polars() for _, chunk in chunks]
        if not frames:
            return pl.DataFrame()
        try:
            return pl.concat(frames, how="vertical", rechunk=False)
        except pl.exceptions.SchemaError as exc:
            raise _schema_error(chunks) from exc
    tables = [chunk.to_arrow() for _, chunk in chunks]
    if not tables:
        table = pa.table({})
    else:
        first = tables[0].schema
        for table in tables:
            if not table.schema.equals(first, check_metadata=False):
                raise _schema_error(chunks)
        table = pa.concat_tables(tables)
    return table.to_pandas() if into == "pandas" else table


def _schema_error(chunks: list[tuple[int, TableChunk]]) -> SchemaError:
    first_seq, first = chunks[0]
    for seq, chunk in chunks[1:]:
        if not chunk.schema.equals(first.schema, check_metadata=False):
            return SchemaError(
                f"actor `{current_actor_name()}`: chunk {seq} has schema "
                f"{describe_schema(chunk.schema)} but chunk {first_seq} has "
                f"{describe_schema(first.schema)}; every chunk of a stream must share one"
            )
    return SchemaError(f"actor `{current_actor_name()}`: chunks of the stream differ in schema")


@define_actor
async def collect(ctx: Context, ch_in: Channel[TableChunk], *, into: CollectInto = "arrow") -> Any:
    """Gather the stream into one table, in sequence-number order; ``node.result()`` returns it.

    Parameters
    ----------
    into
        ``"arrow"`` (a ``pyarrow.Table``), ``"polars"`` or ``"pandas"`` (a DataFrame).

    Raises
    ------
    SequenceError
        Two chunks carry the same sequence number.
    SchemaError
        Chunks differ in schema.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_arrow
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [from_arrow(ctx, ch, pa.table({"x": [1, 2]})), sink]).run()
    >>> sink.result()["x"].sum()
    3
    """
    if into not in ("arrow", "polars", "pandas"):
        raise ValueError(f"collect: `into` must be 'arrow', 'polars' or 'pandas', got {into!r}")
    chunks: list[tuple[int, TableChunk]] = []
    while (msg := await ch_in.recv(ctx)) is not None:
        chunks.append((msg.sequence_number, TableChunk.from_message(msg)))
    chunks.sort(key=lambda item: item[0])
    for (a, _), (b, _) in itertools.pairwise(chunks):
        if a == b:
            raise SequenceError(
                f"actor `{current_actor_name()}`: sequence number {a} arrived twice; merged "
                "streams need distinct numbers (use `concat`, or `merge(..., renumber=True)`)"
            )
    return await ctx.to_thread(_concat, chunks, into)
