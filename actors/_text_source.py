"""The loop of the text sources (CSV, NDJSON): a share of files, read part by part in blocks.

A text format says how to open one part (a file or a byte range of it) as a
`ChunkReader` and what its schema must be; this module checks every part against
the first file's schema, drops the rows that fail a predicate a Network pushed to
the source (`PushedFilter`), sends the chunks in order, reports bytes to the
progress bar (rows are estimated from them) and to the statistics, and sends the
schema with no rows when the share holds none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from actors._columns import describe_schema
from actors._pushed import PushedFilter
from streamnet import (
    Channel,
    ChannelBroken,
    ChunkReader,
    Context,
    CsvPart,
    FilePath,
    Message,
    SchemaError,
    TableChunk,
    current_actor,
    record_bytes_read,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema

__all__ = ["read_text_parts"]

OpenPart = Callable[[CsvPart], ChunkReader]
"""Opens one part of a file of the format (it blocks: run in the thread pool)."""


async def read_text_parts(
    ctx: Context,
    ch_out: Channel[TableChunk],
    paths: Sequence[FilePath],
    parts: Sequence[CsvPart],
    open_part: OpenPart,
    *,
    block_size: int,
    checked: Callable[[FilePath, ArrowSchema], ArrowSchema] = lambda path, schema: schema,
) -> None:
    """Send the rows of ``parts`` (this rank's share of ``paths``) on ``ch_out``, each part
    opened by ``open_part`` and its schema passed through ``checked`` (which raises for
    one the format refuses). Every part must have the schema of the first file; a
    rank whose share starts later reads that schema first."""
    first = paths[0]
    seen: ArrowSchema | None = None
    if not parts or parts[0].file != 0:  # every rank checks against the first file's schema
        reader = await ctx.to_thread(open_part, CsvPart(0, first))
        reader.close()
        seen = checked(first, reader.schema)
    sizes = [await ctx.to_thread(part.nbytes) for part in parts]
    ctx.progress.expect(None, nbytes=sum(sizes))  # rows estimated from the bytes read
    node = current_actor()
    pushed = await PushedFilter.of(ctx, node)
    seq = 0
    try:
        for part, size in zip(parts, sizes, strict=True):
            left = size  # a chunk is about a block of the part's bytes
            reader = await ctx.to_thread(open_part, part)
            try:
                schema = checked(part.path, reader.schema)
                if seen is None:
                    seen = schema
                elif not schema.equals(seen):
                    raise SchemaError(
                        f"`{part.path}` does not have the schema of `{first}`: "
                        f"{describe_schema(schema)} versus {describe_schema(seen)}; "
                        "pass `schema=` to read both alike"
                    )
                while (chunk := await ctx.to_thread(reader.next)) is not None:
                    block = min(block_size, left)
                    left -= block
                    ctx.progress.advance(chunk.num_rows, nbytes=block)
                    chunk = await ctx.to_thread(pushed, chunk)
                    if chunk.num_rows == 0:
                        continue  # its rows are dropped downstream anyway
                    await ch_out.send(ctx, Message(seq, chunk))
                    seq += 1
            finally:
                reader.close()
            ctx.progress.advance(0, nbytes=left)
            record_bytes_read(size)
        if seq == 0 and seen is not None:
            await ch_out.send(ctx, Message(0, ctx.backend.empty(seen)))
        await ch_out.drain(ctx)
    except ChannelBroken:
        pass  # downstream needs no more
