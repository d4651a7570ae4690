"""The loop every file writer runs: chunks into staged files, then the commit's preparation.

A writer actor (Parquet, CSV, NDJSON) says how to open one file of its format
(a `ChunkWriter` of its backend); this module stages the files (see
``_commit.py``), names them, writes the chunks in arrival order, checks that
the ranks agree on one schema, and removes what it staged if anything fails.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from actors._commit import begin_output, check_output
from actors._typing import WriteMode
from streamnet import (
    Channel,
    ChunkWriter,
    Collective,
    Context,
    FilePath,
    TableChunk,
    hive_folder,
    resolve_path,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema, FileSystem, StorageOptions

__all__ = ["BeginOutput", "OpenWriter", "Output", "WriteReport", "check_target", "check_write", "write_stream"]

OpenWriter = Callable[[FilePath, "ArrowSchema"], ChunkWriter]
"""Opens one file of a format for chunks of a schema (it blocks: run in the thread pool)."""


class Output(Protocol):
    """Where a writer stages its files, and their publication (`StagedOutput`, `StoreOutput`,
    or a table format's, such as Delta Lake's)."""

    def file_name(self, stem: str) -> str: ...

    def stage(self, name: str | None = None) -> Any: ...

    async def prepare(self, ctx: Context, coll: Collective) -> list[str]: ...

    def abandon(self) -> None: ...


BeginOutput = Callable[[Context, Collective], Awaitable[Output]]
"""Makes a writer's output on every rank (and registers its commit step with the network)."""


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a writer wrote on this rank: its files (their final paths), rows, chunks."""

    files: tuple[str, ...]
    rows: int
    chunks: int


def check_target(actor: str, target: object) -> None:
    """A writer's target is a path or a URI, as its node is made; a local one is not
    under a file (where making its folder fails)."""
    if not isinstance(target, str | os.PathLike):
        raise TypeError(
            f"actor `{actor}`: the target must be a path or a URI (str or os.PathLike), "
            f"got {target!r}"
        )
    text = os.fspath(target)
    if isinstance(text, str) and "://" not in text:
        above = os.path.dirname(os.path.abspath(text))
        while not os.path.lexists(above) and os.path.dirname(above) != above:
            above = os.path.dirname(above)
        if os.path.lexists(above) and not os.path.isdir(above):
            raise NotADirectoryError(
                f"actor `{actor}`: cannot write `{text}`: `{above}` is a file, not a folder"
            )


def partition_columns(partition_by: str | Sequence[str] | None) -> list[str]:
    """A writer's ``partition_by`` as a list: one column name or several, as in Polars."""
    if partition_by is None:
        return []
    return [partition_by] if isinstance(partition_by, str) else list(partition_by)


def check_write(actor: str, *, ctx: Context, path: str | os.PathLike[str], partitioned: bool,
                mode: object, filesystem: FileSystem | None = None,
                storage_options: StorageOptions | None = None,
                partition_by: str | Sequence[str] | None = None, **_: Any) -> None:  # fmt: skip
    """A writer's check as its node is made: its options, and a target it can write
    (`check_output`), so that a bad one fails before anything runs."""
    check_target(actor, path)
    if not isinstance(partitioned, bool):
        raise TypeError(
            f"actor `{actor}`: `partitioned` must be True or False, got {partitioned!r}"
        )
    if partition_by is not None and (
        isinstance(partition_by, bytes)
        or not isinstance(partition_by, str | Sequence)
        or not partition_by
        or not all(isinstance(c, str) for c in partition_by)
    ):
        raise TypeError(
            f"actor `{actor}`: `partition_by` must be a column name or a list of one or more, "
            f"got {partition_by!r}"
        )
    if partition_by and partitioned:
        raise ValueError(
            f"actor `{actor}`: `partition_by` writes files per partition value, "
            "`partitioned=True` one per chunk: pass one of them, got both"
        )
    directory = partitioned or ctx.nranks > 1 or bool(partition_by)
    target = resolve_path(path, filesystem=filesystem, storage_options=storage_options)
    check_output(target, mode, directory=directory, actor=actor)


async def write_stream(
    ctx: Context,
    ch_in: Channel[TableChunk],
    target: FilePath,
    mode: WriteMode,
    *,
    partitioned: bool,
    suffix: str,
    open_writer: OpenWriter,
    write: Callable[[ChunkWriter, TableChunk], None] | None = None,
    partition_by: Sequence[str] = (),
    max_open_files: int = 64,
    max_file_bytes: int | None = None,
    begin: BeginOutput | None = None,
    on_chunk: Callable[[TableChunk], Awaitable[TableChunk]] | None = None,
) -> WriteReport:
    """Write the stream of ``ch_in`` to ``target`` atomically: one file, or a directory of
    one file per rank (several ranks) or per chunk (``partitioned``), named as
    `actors.write_parquet` says, each made by ``open_writer`` and filled by ``write``
    (by default, the writer's own `ChunkWriter.write`).
    With ``partition_by``, a hive-partitioned directory: see `PartitionedFiles`.
    The output is published by the network's commit step once the run succeeded.
    ``on_chunk`` gives what is written of each chunk (a table format's types, say)."""
    if write is None:
        write = _write_chunk
    coll = Collective(ctx)
    # A table format's output (``begin``) is a folder of files.
    directory = partitioned or ctx.nranks > 1 or bool(partition_by) or begin is not None
    if begin is not None:
        output = await begin(ctx, coll)
    else:
        output = await begin_output(ctx, coll, target, mode, directory=directory)
    writer: ChunkWriter | None = None
    files_by_value: PartitionedFiles | None = None
    schema: ArrowSchema | None = None
    rows = chunks = 0
    prefix = "" if ctx.nranks == 1 else f"r{ctx.rank:05d}"
    try:
        # The channel lets in only chunks of one schema (SchemaError in the sender otherwise),
        # so every chunk fits the file the first one opened.
        while (msg := await ch_in.recv(ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            if on_chunk is not None:
                chunk = await on_chunk(chunk)
            if schema is None:
                schema = chunk.schema
            if partition_by:
                if files_by_value is None:
                    files_by_value = PartitionedFiles(
                        ctx, output, partition_by, suffix, prefix, open_writer, write,
                        max_open_files=max_open_files, max_file_bytes=max_file_bytes,
                    )  # fmt: skip
                await files_by_value.write(chunk)
            else:
                if writer is None:
                    if partitioned:
                        stem = "-".join(filter(None, [prefix, f"{msg.sequence_number:08d}"]))
                        file = output.stage(output.file_name(f"{stem}{suffix}"))
                    else:
                        name = output.file_name(f"{prefix}{suffix}") if directory else None
                        file = output.stage(name)
                    writer = await _open_file(ctx, open_writer, file, schema)
                need = ctx.backend.working_memory("write", chunk.nbytes)
                async with await ctx.memory.reserve(need, what="writing a chunk", in_hand=True):
                    await ctx.to_thread(write, writer, chunk)
                if partitioned:  # one file per chunk: this one is complete
                    closing, writer = writer, None
                    await ctx.to_thread(closing.close)
            rows += chunk.num_rows
            chunks += 1
        if writer is not None:
            closing, writer = writer, None
            await ctx.to_thread(closing.close)
        if files_by_value is not None:
            await ctx.to_thread(files_by_value.close)
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
        if files_by_value is not None:
            files_by_value.close(suppress=True)
        output.abandon()
        raise
    return WriteReport(tuple(files), rows, chunks)


def _write_chunk(writer: ChunkWriter, chunk: TableChunk) -> None:
    writer.write(chunk)


async def _open_file(
    ctx: Context, open_writer: OpenWriter, file: FilePath, schema: ArrowSchema
) -> ChunkWriter:
    """``open_writer(file, schema)`` in the thread pool. Should this actor be cancelled
    meanwhile, the thread still finishes opening the file; the writer it made is then
    closed here, not left to the garbage collector (an upload to a store would wait
    for its server when collected, perhaps at interpreter exit, after the server went)."""
    opened: list[ChunkWriter] = []

    def run() -> ChunkWriter:
        writer = open_writer(file, schema)
        opened.append(writer)
        return writer

    try:
        return await ctx.to_thread(run)
    except BaseException:
        for writer in opened:
            with contextlib.suppress(Exception):
                writer.close()
        raise


class PartitionedFiles:
    """The open files of a hive-partitioned write: one folder per value of the partition
    columns (``year=2024/country=FR/``), the rows written there without those columns.

    At most ``max_open_files`` files are open at once: writing to another partition
    closes the one written longest ago (a later row of it starts a new file). A
    file whose chunks reach ``max_file_bytes`` (in memory, before encoding) is
    closed, and the next rows of its partition roll into a new one. Files of a
    partition are named ``part-[r<rank>-]<n>`` with ``n`` counting from 0 on each
    rank, so that name order is rank order, then write order.
    """

    def __init__(
        self, ctx: Context, output: Output, columns: Sequence[str],
        suffix: str, prefix: str, open_writer: OpenWriter,
        write: Callable[[ChunkWriter, TableChunk], None], *, max_open_files: int,
        max_file_bytes: int | None,
    ) -> None:  # fmt: skip
        self._ctx = ctx
        self._output = output
        self._columns = list(columns)
        self._suffix = suffix
        self._prefix = prefix
        self._open_writer = open_writer
        self._write = write
        self._max_open = max_open_files
        self._max_bytes = max_file_bytes
        self._open: OrderedDict[tuple[object, ...], tuple[ChunkWriter, int]] = OrderedDict()
        self._counts: dict[tuple[object, ...], int] = {}

    async def write(self, chunk: TableChunk) -> None:
        """Write the rows of ``chunk`` into the files of their partitions."""
        ctx = self._ctx
        pieces = await ctx.to_thread(ctx.backend.split_by_values, chunk, self._columns)
        for values, rows in pieces:
            await ctx.to_thread(self._put, values, rows)

    def _put(self, values: tuple[object, ...], rows: TableChunk) -> None:
        found = self._open.pop(values, None)
        if found is None:
            if len(self._open) >= self._max_open:
                _, (oldest, _) = self._open.popitem(last=False)
                oldest.close()
            number = self._counts.get(values, 0)
            self._counts[values] = number + 1
            stem = "-".join(filter(None, [self._prefix, f"{number:05d}"]))
            name = f"{hive_folder(self._columns, values)}/{self._output.file_name(stem)}"
            writer = self._open_writer(self._output.stage(name + self._suffix), rows.schema)
            found = (writer, 0)
        writer, size = found
        # Registered before it is written, so that `close` reaches it if the write fails.
        self._open[values] = found  # the most recently written, last
        self._write(writer, rows)
        size += rows.nbytes
        if self._max_bytes is not None and size >= self._max_bytes:
            del self._open[values]
            writer.close()  # full: the partition's next rows start a new file
        else:
            self._open[values] = (writer, size)

    def close(self, *, suppress: bool = False) -> None:
        """Close every open file (when ``suppress``, ignoring errors: the write failed)."""
        while self._open:
            _, (writer, _) = self._open.popitem(last=False)
            if suppress:
                with contextlib.suppress(Exception):
                    writer.close()
            else:
                writer.close()
