"""A collective's input stream: its chunks, their columns checked, and the schema every rank agrees on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

from channels import Channel
from streamnet._actor import current_actor_name
from streamnet._errors import ColumnNotFoundError
from streamnet._table_chunk import TableChunk
from streamnet.plans._compiled import PlanParams
from streamnet.plans._plan import Plan, Stamp

if TYPE_CHECKING:
    import pyarrow as pa

    from streamnet._collective import Collective
    from streamnet._context import Context
    from streamnet.comm._communicator import Tag

__all__ = ["InputSchema", "inputs"]


class InputSchema:
    """The schema of a collective's input stream: this rank's, then every rank's.

    A collective shows it each chunk it receives (``seen``); ``agree`` then
    checks that every rank's input has one schema (a `SchemaError` otherwise)
    and gives it to every rank, also to one whose stream had no chunk at all.
    """

    def __init__(self, channel: Channel[TableChunk]) -> None:
        self.channel = channel.name
        self.local: pa.Schema | None = None

    def seen(self, chunk: TableChunk) -> None:
        """Note ``chunk``'s schema if it is the first chunk (a schema, no data)."""
        if self.local is None:
            self.local = chunk.schema

    async def agree(self, coll: Collective, tag: Tag = ()) -> TableChunk | None:
        """An empty chunk with the input's schema on every rank; None if no rank had a chunk.
        ``tag`` tells apart the inputs of one collective.

        Raises
        ------
        SchemaError
            Two ranks' inputs differ in schema (see `Collective.agree_schema`).
        """
        schema = await self.agreed_schema(coll, tag)
        return None if schema is None else coll.ctx.backend.empty(schema)

    async def agreed_schema(self, coll: Collective, tag: Tag = ()) -> pa.Schema | None:
        """`agree`, for a collective that needs no empty chunk: the schema every rank's
        input has (None if no rank had a chunk), checked the same on every rank."""
        return await coll.agree_schema(tag, self.local, channel=self.channel)


def _check_columns(needed: Iterable[str], available: Sequence[str], where: str) -> None:
    missing = sorted(set(needed) - set(available))
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


async def inputs(
    ctx: Context,
    ch_in: Channel[TableChunk],
    needed: Sequence[str] = (),
    *,
    where: str = "",
    order: bool = False,
    schema: InputSchema | None = None,
) -> AsyncIterator[tuple[int, TableChunk]]:
    """``(sequence number, chunk)`` of a stream, checking once per schema that ``needed`` columns exist.

    With ``order``, each chunk gains two Int64 columns, ``__rank`` and ``__seq``
    (a `Stamp` step run by the Context's backend): with the row order inside a
    chunk they give the global order of a multi-rank stream (rank, then
    sequence number), which first/last/keep="first" rely on. ``schema`` notes
    the stream's schema (before the stamp). ``where`` says what needs the
    columns, for the error.

    Raises
    ------
    ColumnNotFoundError
        A chunk lacks a ``needed`` column; the message names the actor, ``where``
        and the chunk's columns.
    """
    backend = ctx.backend
    checked: pa.Schema | None = None
    stamp = Plan(steps=(Stamp(actor=current_actor_name() or ""),)) if order else None
    compiled = None
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        if chunk.schema is not checked and not (  # chunks of one stream share one schema
            checked is not None and chunk.schema.equals(checked)
        ):
            _check_columns(needed, chunk.schema.names, where)
            if stamp is not None:
                compiled = backend.compile(stamp, chunk.schema)
            checked = chunk.schema
        if schema is not None:
            schema.seen(chunk)
        if compiled is not None:
            params = PlanParams(rank=ctx.rank, sequence=msg.sequence_number)
            chunk = backend.run(compiled, chunk, params=params)
        yield msg.sequence_number, chunk
