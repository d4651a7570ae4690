"""Sinks that gather a stream into one table."""

from __future__ import annotations

import itertools
from typing import Any

from actors._typing import TableKind
from streamnet import (
    Backend,
    Channel,
    Context,
    SequenceError,
    TableChunk,
    current_actor_name,
    define_actor,
)

__all__ = ["collect"]


def _concat(backend: Backend, chunks: list[TableChunk], into: TableKind) -> Any:
    # Every chunk entered the channel with the stream's schema, so they concatenate as they are.
    if not chunks:  # a table without columns
        chunks = [backend.empty()]
    whole = backend.concat(chunks)
    if into == "polars":
        return backend.to_polars(whole)
    if into == "pandas":
        return backend.to_pandas(whole)
    return backend.to_arrow(whole)


@define_actor
async def collect(ctx: Context, ch_in: Channel[TableChunk], *, into: TableKind = "arrow") -> Any:
    """Gather the stream into one table, in sequence-number order; ``node.result()`` returns it
    (typed ``Any``: its type is the one ``into`` names).

    Parameters
    ----------
    into
        ``"arrow"`` (a ``pyarrow.Table``), ``"polars"`` or ``"pandas"`` (a DataFrame).

    Raises
    ------
    SequenceError
        Two chunks carry the same sequence number.

    Every chunk of the stream has one schema (a chunk of another schema makes
    the actor that sent it raise `SchemaError`), so the chunks concatenate as
    they are, without casting. A stream without any chunk gives a table without
    columns.

    Examples
    --------
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
    return await ctx.to_thread(_concat, ctx.backend, [chunk for _, chunk in chunks], into)
