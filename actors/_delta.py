"""Delta Lake: a version of a table read as a Parquet scan of its files, and a streamed writer
that commits once, at the end of a successful run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from actors._commit import output_actor
from actors._parquet import ParquetScanReport, PathLike, _check_read, scan_files
from actors._pushed import resolved_predicates
from actors._writing import WriteReport, check_target, partition_columns, write_stream
from streamnet import (
    Channel,
    ChannelBroken,
    ChunkWriter,
    Collective,
    Context,
    FilePath,
    Filter,
    Message,
    StorePath,
    TableChunk,
    check_delta_target,
    commit_delta,
    current_actor,
    define_actor,
    delta_add_action,
    delta_schema,
    empty_table,
    frame_of_arrow,
    on_success,
    plan_delta,
    resolve_path,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema, StorageOptions

__all__ = ["read_delta", "write_delta"]

DeltaMode = Literal["append", "overwrite", "error"]


@define_actor(check=_check_read, head=True, prunes=True, pushdown=True)
async def read_delta(
    ctx: Context,
    ch_out: Channel[TableChunk],
    source: PathLike,
    *,
    version: int | None = None,
    timestamp: dt.datetime | str | None = None,
    columns: Sequence[str] | None = None,
    filters: pl.Expr | None = None,
    prefetch: int | None = None,
    split: bool = True,
    storage_options: StorageOptions | None = None,
) -> ParquetScanReport:
    """Stream a version of a Delta Lake table (the latest, ``version``, or the one current
    at ``timestamp``), its files read as `read_parquet` reads files.

    The log gives the files of the version, their partition values and their
    statistics: files that ``filters`` (and fused filters, and the filters
    downstream that the Network moves to the scan) cannot match by their
    partition values or by the log's min, max and null counts are left out before
    any is opened, then row groups are pruned and read as in `read_parquet`
    (``columns``, ``filters``, ``prefetch`` and ``split`` mean the same). The
    columns come in the table's order.

    Parameters
    ----------
    source
        The table's folder: a local path or a URI (``s3://bucket/table``).
    storage_options
        How to reach a table on a store, as `read_parquet` takes them (pyarrow's
        S3 arguments are translated for the ``deltalake`` package's log reader).

    Returns
    -------
    ParquetScanReport
        Through ``node.result()``; ``files`` counts the files read (after pruning).

    Raises
    ------
    FileReadError
        ``source`` is not a Delta table, or has no such version; the message names it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from deltalake import write_deltalake
    >>> from streamnet import Context, Network
    >>> from actors import collect, read_delta
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t"
    >>> write_deltalake(path, pl.DataFrame({"x": [1, 2, 3]}).to_arrow())
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [read_delta(ctx, ch, path, filters=pl.col("x") > 1), sink]).run()
    >>> sink.result()["x"].to_list()
    [2, 3]
    """
    depth = prefetch if prefetch is not None else ctx.num_threads
    if type(depth) is not int or depth < 1:
        raise ValueError(f"read_delta: `prefetch` must be an int >= 1, got {prefetch!r}")
    if version is not None and timestamp is not None:
        raise ValueError(
            f"read_delta: pass `version` or `timestamp`, not both; got version={version!r} "
            f"and timestamp={timestamp!r}"
        )
    uri = _uri(source)
    node = current_actor()
    current_filters = [filters] if filters is not None else []
    if node is not None:
        current_filters += _leading_filters(node.fused_steps)
    predicate = pl.all_horizontal(current_filters) if len(current_filters) > 1 else (
        current_filters[0] if current_filters else None
    )  # fmt: skip
    pushed = [p.expr for p in await resolved_predicates(node)]  # the actors downstream's too
    files = await ctx.to_thread(
        plan_delta, uri, version=version, timestamp=timestamp,
        storage_options=storage_options, predicate=predicate, pushed=pushed,
    )  # fmt: skip
    out_columns = list(columns) if columns is not None else list(files.schema.names)
    if not files.paths:  # an empty version, or every file pruned: the schema, no rows
        ctx.progress.expect(0)
        empty = ctx.backend.from_polars(pl.DataFrame(schema=_polars_schema(files.schema)))
        try:
            if columns is not None:
                empty = ctx.backend.project(empty, list(columns))
            await ch_out.send(ctx, Message(0, empty))
            await ch_out.drain(ctx)
        except ChannelBroken:
            pass
        return ParquetScanReport(0, 0, 0, 0, 0)
    return await scan_files(
        ctx, ch_out, files.paths, files.partitions, out_columns, filters, depth, split
    )


def _polars_schema(schema: ArrowSchema) -> pl.Schema:
    return frame_of_arrow(empty_table(schema)).schema


def _leading_filters(steps: Sequence[Any]) -> list[pl.Expr]:
    """The predicates of the filters fused first after the scan: they prune files too."""
    found = []
    for step in steps:
        if not isinstance(step, Filter):
            break
        found.append(step.predicate)
    return found


def _uri(source: PathLike) -> str:
    text = os.fspath(source)
    return text if "://" in text else str(Path(text).absolute())


def _check_write(
    actor: str, *, target: object, mode: object, partition_by: object = None, **_: Any
) -> None:
    check_target(actor, target)
    text = os.fspath(target)  # type: ignore[call-overload]
    if "://" not in text and os.path.exists(text) and not os.path.isdir(text):
        raise NotADirectoryError(
            f"actor `{actor}`: `{text}` is a file, but a Delta table is a folder"
        )
    if mode not in ("append", "overwrite", "error"):
        raise ValueError(
            f"actor `{actor}`: `mode` must be 'append', 'overwrite' or 'error', got {mode!r}"
        )
    if partition_by is not None and (
        not isinstance(partition_by, str | Sequence)
        or not all(isinstance(c, str) for c in partition_by)
    ):
        raise TypeError(
            f"actor `{actor}`: `partition_by` must be a column name or a list of them, "
            f"got {partition_by!r}"
        )


@output_actor(check=_check_write)
async def write_delta(
    ctx: Context,
    ch_in: Channel[TableChunk],
    target: PathLike,
    *,
    mode: DeltaMode = "append",
    partition_by: str | Sequence[str] | None = None,
    compression: str = "zstd",
    max_open_files: int = 64,
    max_file_bytes: int | None = 512 << 20,
    storage_options: StorageOptions | None = None,
) -> WriteReport:
    """Write the stream into a Delta Lake table, committed once, at the end of a successful run.

    Each rank writes Parquet files into the table's folder as the stream comes
    (``partition_by`` makes its ``key=value`` folders, as `write_parquet` does),
    under names no other write uses; files that no version of the log names are
    invisible to readers. Once the whole run succeeded on every rank, rank 0
    commits them all in one transaction, with their partition values and the
    statistics readers prune by: a new version that adds them (``"append"``),
    or that replaces every file (``"overwrite"``); the table is created if it
    does not exist (``"error"`` requires that, and refuses a table that exists
    before any file is written). A failed run commits nothing and deletes the
    files it wrote. Timestamps are stored as Polars' ``write_delta`` stores them
    (`delta_schema`): in microseconds, and in UTC when they have a time zone.

    Returns
    -------
    WriteReport
        Through ``node.result()``: this rank's files, rows, chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from deltalake import DeltaTable
    >>> from streamnet import Context, Network
    >>> from actors import from_polars, write_delta
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t"
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> src = from_polars(ctx, ch, pl.DataFrame({"x": [1, 2], "p": ["a", "b"]}))
    >>> Network(ctx, [src, write_delta(ctx, ch, path, partition_by=["p"])]).run()
    >>> DeltaTable(path).version(), sorted(pl.read_delta(str(path))["x"].to_list())
    (0, [1, 2])
    """
    uri = _uri(target)
    root = resolve_path(uri if "://" in uri else Path(uri), storage_options=storage_options)
    backend = ctx.backend
    output: DeltaOutput | None = None

    async def begin(ctx: Context, coll: Collective) -> DeltaOutput:
        nonlocal output
        refused = None  # mode="error" and the table exists: refused before a file is written
        if coll.rank == 0 and mode == "error":
            try:
                await ctx.to_thread(check_delta_target, uri, mode, storage_options=storage_options)
            except FileExistsError as exc:
                refused = str(exc)
        ours = (uuid.uuid4().hex[:12], refused) if coll.rank == 0 else None
        token, refused = (await coll.allgather("delta", ours))[0]
        if refused is not None:
            raise FileExistsError(refused)
        output = DeltaOutput(root, uri, mode, partition_columns(partition_by), storage_options, token,
                             publisher=coll.rank == 0)  # fmt: skip
        on_success(output.publish, abort=output.abandon)
        return output

    def open_writer(file: FilePath, schema: ArrowSchema) -> ChunkWriter:
        return backend.parquet_writer(file, schema, compression=compression)

    def write(writer: ChunkWriter, chunk: TableChunk) -> None:
        writer.write(chunk)

    stored: dict[int, tuple[ArrowSchema, ArrowSchema]] = {}  # a schema's id -> it, as stored

    async def saw(chunk: TableChunk) -> TableChunk:
        """The chunk as the table stores it (`delta_schema`); the first one's schema is the
        table's (partition columns included)."""
        schema = chunk.schema
        known = stored.get(id(schema))
        if known is None or known[0] is not schema:
            known = stored[id(schema)] = (schema, delta_schema(schema))
        if known[1] != schema:
            target = known[1]
            chunk = await ctx.to_thread(
                lambda: backend.from_arrow(backend.to_arrow(chunk).cast(target, safe=False))
            )
        if output is not None:
            output.saw(chunk)
        return chunk

    return await write_stream(
        ctx, ch_in, root, "append", partitioned=False, suffix=".parquet",
        open_writer=open_writer, write=write, partition_by=partition_columns(partition_by),
        max_open_files=max_open_files, max_file_bytes=max_file_bytes, begin=begin,
        on_chunk=saw,
    )  # fmt: skip


class DeltaOutput:
    """A write's new files in a Delta table's folder, and their one commit (rank 0)."""

    def __init__(
        self, root: FilePath, uri: str, mode: DeltaMode, partition_by: Sequence[str],
        storage_options: StorageOptions | None, token: str, *, publisher: bool,
    ) -> None:  # fmt: skip
        self.root = root
        self.uri = uri
        self.mode = mode
        self.partition_by = list(partition_by)
        self.storage_options = storage_options
        self.token = token
        self.publisher = publisher
        self.schema: ArrowSchema | None = None
        """The table's schema: the chunks' (partition columns included)."""
        self.staged: list[FilePath] = []
        self.actions: list[dict[str, Any]] = []
        self.everyone: list[FilePath] = []
        self.made: list[Path] = []  # the key=value folders this write made, outermost first
        self.committed = False

    def saw(self, chunk: TableChunk) -> None:
        if self.schema is None:
            self.schema = chunk.schema

    def file_name(self, stem: str) -> str:
        """A name no other write to the table uses (the write's token), then ``stem``."""
        return f"part-{self.token}{stem}" if stem.startswith(".") else f"part-{self.token}-{stem}"

    def stage(self, name: str | None = None) -> FilePath:
        assert name is not None
        path = self.root / name
        if isinstance(path, Path) and isinstance(self.root, Path):
            folders = [p for p in reversed(path.parents) if p.is_relative_to(self.root)]
            self.made.extend(p for p in folders if p not in self.made and not p.exists())
            path.parent.mkdir(parents=True, exist_ok=True)
        self.staged.append(path)
        return path

    def _relative(self, path: FilePath) -> str:
        if isinstance(path, StorePath) and isinstance(self.root, StorePath):
            return path.path[len(self.root.path.rstrip("/")) + 1 :]
        assert isinstance(path, Path)
        assert isinstance(self.root, Path)
        return path.relative_to(self.root).as_posix()

    async def prepare(self, ctx: Context, coll: Collective) -> list[str]:
        """Every rank's files and what the log will say of them, on rank 0."""
        mine = [
            await ctx.to_thread(delta_add_action, path, self._relative(path))
            for path in self.staged
        ]
        everyone = await coll.allgather("delta files", mine)
        schemas = await coll.allgather("delta schema", self.schema)
        if self.schema is None:
            self.schema = next((s for s in schemas if s is not None), None)
        if self.publisher:
            self.actions = [action for actions in everyone for action in actions]
            self.everyone = [self.root / a["path"] for a in self.actions]
        await coll.allgather("delta gathered", True)
        if not self.publisher:
            self.committed = True  # rank 0 deletes them if the commit does not happen
        return [str(path) for path in self.staged]

    def publish(self) -> None:
        """One transaction with every rank's files (rank 0)."""
        if not self.publisher:
            return
        if self.schema is None:  # no chunk on any rank: nothing to commit
            self.committed = True
            return
        commit_delta(
            self.uri, self.actions, mode=self.mode, schema=self.schema,
            partition_by=self.partition_by, storage_options=self.storage_options,
        )  # fmt: skip
        self.committed = True

    def abandon(self) -> None:
        """Delete the files written (nothing once committed): no log names them."""
        if self.committed:
            return
        for path in self.everyone or self.staged:
            with contextlib.suppress(OSError):
                if isinstance(path, StorePath):
                    path.filesystem.delete_file(path.path)
                else:
                    path.unlink()
        for folder in reversed(self.made):  # innermost first; one a peer still uses stays
            with contextlib.suppress(OSError):
                folder.rmdir()
