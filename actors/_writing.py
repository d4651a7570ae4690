"""The loop every file writer runs: chunks into staged files, then the commit's preparation.

A writer actor (Parquet, CSV, NDJSON) says how to open one file of its format
(a `ChunkWriter` of its backend); this module stages the files (see
``_commit.py``), names them, writes the chunks in arrival order, checks that
the ranks agree on one schema, and removes what it staged if anything fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors._commit import begin_output, check_output
from actors._typing import WriteMode
from streamnet import (
    ArrowSchema,
    Channel,
    ChunkWriter,
    Collective,
    Context,
    FilePath,
    TableChunk,
    resolve_path,
)

if TYPE_CHECKING:
    from streamnet import FileSystem, StorageOptions

__all__ = ["OpenWriter", "WriteReport", "check_write", "write_stream"]

OpenWriter = Callable[[FilePath, ArrowSchema], ChunkWriter]
"""Opens one file of a format for chunks of a schema (it blocks: run in the thread pool)."""


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a writer wrote on this rank: its files (their final paths), rows, chunks."""

    files: tuple[str, ...]
    rows: int
    chunks: int


def check_write(actor: str, *, ctx: Context, path: str | os.PathLike[str], partitioned: bool,
                mode: object, filesystem: FileSystem | None = None,
                storage_options: StorageOptions | None = None, **_: Any) -> None:  # fmt: skip
    """A writer's check as its node is made: its options, and a target it can write
    (`check_output`), so that a bad one fails before anything runs."""
    if not isinstance(partitioned, bool):
        raise TypeError(
            f"actor `{actor}`: `partitioned` must be True or False, got {partitioned!r}"
        )
    target = resolve_path(path, filesystem=filesystem, storage_options=storage_options)
    check_output(target, mode, directory=partitioned or ctx.nranks > 1, actor=actor)


async def write_stream(
    ctx: Context,
    ch_in: Channel[TableChunk],
    target: FilePath,
    mode: WriteMode,
    *,
    partitioned: bool,
    suffix: str,
    open_writer: OpenWriter,
    write: Callable[[ChunkWriter, TableChunk], None],
) -> WriteReport:
    """Write the stream of ``ch_in`` to ``target`` atomically: one file, or a directory of
    one file per rank (several ranks) or per chunk (``partitioned``), named as
    `actors.write_parquet` says, each made by ``open_writer`` and filled by ``write``.
    The output is published by the network's commit step once the run succeeded."""
    coll = Collective(ctx)
    directory = partitioned or ctx.nranks > 1
    output = await begin_output(ctx, coll, target, mode, directory=directory)
    writer: ChunkWriter | None = None
    schema: ArrowSchema | None = None
    rows = chunks = 0
    prefix = "" if ctx.nranks == 1 else f"r{ctx.rank:05d}"
    try:
        # The channel lets in only chunks of one schema (SchemaError in the sender otherwise),
        # so every chunk fits the file the first one opened.
        while (msg := await ch_in.recv(ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            if schema is None:
                schema = chunk.schema
            if writer is None:
                if partitioned:
                    stem = "-".join(filter(None, [prefix, f"{msg.sequence_number:08d}"]))
                    file = output.stage(output.file_name(f"{stem}{suffix}"))
                else:
                    file = output.stage(output.file_name(f"{prefix}{suffix}") if directory else None)
                writer = await ctx.to_thread(open_writer, file, schema)
            await ctx.to_thread(write, writer, chunk)
            if partitioned:  # one file per chunk: this one is complete
                closing, writer = writer, None
                await ctx.to_thread(closing.close)
            rows += chunk.num_rows
            chunks += 1
        if writer is not None:
            closing, writer = writer, None
            await ctx.to_thread(closing.close)
        # One dataset has one schema: ranks whose chunks differ fail, and nothing is published.
        await coll.agree_schema("written", schema, channel=ch_in.name)
        # Published by the network once the whole run succeeded on every rank.
        files = await output.prepare(ctx, coll)
    except BaseException:
        # Synchronous, so that no second cancellation cuts it short; no kernel of this
        # actor still runs (Context.to_thread waits for a cancelled one to end).
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        output.abandon()
        raise
    return WriteReport(tuple(files), rows, chunks)
