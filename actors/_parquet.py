"""Parquet: a streamed scan with projection and predicate pushdown, and a streamed writer."""

from __future__ import annotations

import asyncio
import glob
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from actors._columns import check_columns, describe_schema, referenced_columns
from actors._split import rank_share
from streamnet import (
    Channel,
    ChannelBroken,
    Context,
    FileReadError,
    Message,
    SchemaError,
    TableChunk,
    current_actor_name,
    define_actor,
    spawn,
)

__all__ = [
    "ParquetScanReport",
    "ParquetWriteReport",
    "arrow_predicate",
    "expand_paths",
    "read_parquet",
    "write_parquet",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ParquetScanReport:
    """What a Parquet scan read (the result of :func:`read_parquet`).

    On several ranks, each rank's report describes its own share of the scan.

    Attributes
    ----------
    files
        Files scanned.
    row_groups_total, row_groups_read
        Row groups in those files, and those actually read: the rest were skipped
        by their statistics (predicate pushdown) or never needed (a ``limit``
        downstream stopped the scan).
    rows_read
        Rows decoded from the row groups read.
    rows_emitted
        Rows sent downstream after the exact filter.
    """

    files: int
    row_groups_total: int
    row_groups_read: int
    rows_read: int
    rows_emitted: int


@dataclass(frozen=True, slots=True)
class ParquetWriteReport:
    """What :func:`write_parquet` wrote."""

    files: tuple[str, ...]
    rows: int
    chunks: int


def expand_paths(source: PathLike | Sequence[PathLike], suffix: str) -> list[Path]:
    """Files named by a path, a directory (every ``*suffix`` in it, recursively), a glob, or a list.

    Raises
    ------
    FileNotFoundError
        A path does not exist or a pattern matches nothing; the message names it.
    """
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not items:
        raise FileNotFoundError("no files given")
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text):
            matched = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matched:
                raise FileNotFoundError(f"no files match `{text}`")
            paths.extend(matched)
        elif os.path.isdir(text):
            found = sorted(p for p in Path(text).rglob(f"*{suffix}") if p.is_file())
            if not found:
                raise FileNotFoundError(f"directory `{text}` holds no `*{suffix}` files")
            paths.extend(found)
        elif os.path.isfile(text):
            paths.append(Path(text))
        else:
            raise FileNotFoundError(f"file `{text}` does not exist")
    return paths


class _PredicateCapture:
    """Stands in for a pyarrow dataset so Polars hands over its pushed-down predicate."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.filter: Any = None

    def to_batches(self, columns: Any = None, filter: Any = None, **_: Any) -> Iterator[Any]:
        self.filter = filter
        return iter(())


def arrow_predicate(predicate: pl.Expr, schema: pa.Schema) -> Any:
    """The part of a Polars predicate that pyarrow can test on row-group statistics, or None.

    Polars does the translation (as for ``scan_pyarrow_dataset``): conjunctions it
    cannot translate are left out, so the result may keep rows the predicate
    drops, never the reverse. Rows are still filtered exactly afterwards.
    """
    capture = _PredicateCapture(schema)
    try:
        pl.scan_pyarrow_dataset(capture).filter(predicate).collect()  # type: ignore[arg-type]
    except Exception:  # any failure only means no pushdown
        return None
    return capture.filter if isinstance(capture.filter, ds.Expression) else None


@dataclass(slots=True)
class _Piece:
    """One row group: where its rows start in its file, how many there are, and whether to read it.

    ``read`` is False for a row group whose statistics prove the predicate false.
    A file without row groups is one piece with ``row_group`` False and no rows,
    so that it is still counted among the files of the scan. ``file`` is the
    index of ``path`` among the files scanned.
    """

    file: int
    path: Path
    offset: int
    rows: int
    read: bool = True
    row_group: bool = True


def _plan(paths: list[Path], columns: list[str] | None, predicate: pl.Expr | None) -> list[_Piece]:
    """Open every file's metadata, check schemas, and list every row group, in file and row order.

    The row groups that statistics prune are listed too, marked not to be read.
    """
    parquet = ds.ParquetFileFormat()
    local = pafs.LocalFileSystem()
    schema: pa.Schema | None = None
    first: Path | None = None
    fragments = []
    for path in paths:
        try:
            fragment = parquet.make_fragment(str(path), filesystem=local)
            fragment.ensure_complete_metadata()
            file_schema = fragment.physical_schema
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileReadError(f"cannot read `{path}` as Parquet: {exc}") from exc
        if schema is None:
            schema, first = file_schema, path
        elif not file_schema.equals(schema):
            raise SchemaError(
                f"`{path}` does not have the schema of `{first}`:\n"
                f"  `{path}`: {describe_schema(file_schema)}\n"
                f"  `{first}`: {describe_schema(schema)}"
            )
        fragments.append((path, fragment))
    assert schema is not None
    needed = set(columns or []) | (
        referenced_columns([predicate]) if predicate is not None else set()
    )
    check_columns(needed, schema.names, where="read_parquet")
    pushed = arrow_predicate(predicate, schema) if predicate is not None else None
    pieces: list[_Piece] = []
    for file, (path, fragment) in enumerate(fragments):
        groups = fragment.row_groups
        if not groups:
            pieces.append(_Piece(file, path, 0, 0, read=False, row_group=False))
            continue
        if pushed is not None:
            kept = {
                g.id
                for piece in fragment.split_by_row_group(pushed, schema=schema)
                for g in piece.row_groups
            }
        else:
            kept = {g.id for g in groups}
        offset = 0
        for group in sorted(groups, key=lambda g: g.id):
            pieces.append(_Piece(file, path, offset, group.num_rows, read=group.id in kept))
            offset += group.num_rows
    return pieces


def _read_piece(piece: _Piece, columns: list[str] | None, predicate: pl.Expr | None) -> TableChunk:
    """Read one row group with Polars' Parquet reader (the fastest here), filtered and projected."""
    # A row-group-aligned slice makes Polars decode that row group only.
    query = pl.scan_parquet(piece.path).slice(piece.offset, piece.rows)
    if predicate is not None:
        query = query.filter(predicate)
    if columns is not None:
        query = query.select(columns)
    try:
        frame = query.collect()
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise FileReadError(f"cannot read `{piece.path}`: {exc}") from exc
    return TableChunk.from_polars(frame)


@define_actor
async def read_parquet(
    ctx: Context,
    ch_out: Channel[TableChunk],
    source: PathLike | Sequence[PathLike],
    *,
    columns: Sequence[str] | None = None,
    filters: pl.Expr | None = None,
    prefetch: int | None = None,
    split: bool = True,
) -> ParquetScanReport:
    """Stream Parquet files row group by row group, in file and row order.

    On several ranks, each rank reads its own share of the row groups (see
    ``split``); together the ranks read every row exactly once.

    Parameters
    ----------
    source
        A file, a directory (every ``*.parquet`` in it), a glob, or a list of these.
    columns
        Columns to read (projection); all when None.
    filters
        A Polars predicate. Row groups whose statistics prove it false are never
        read; the rows of the others are filtered exactly.
    prefetch
        Row groups read at once in the thread pool (default: the Context's
        ``num_threads``); memory holds about this many decoded row groups.
    split
        With several ranks: True (the default) splits the row groups that
        statistics do not prune into one contiguous run per rank, balanced by
        row count, so rank 0 reads the first rows in file and row order, rank 1
        the next, and so on (concatenated in rank order, the ranks' outputs are
        the whole scan, in order). A rank with no share sends one empty chunk
        with the schema. False makes every rank read everything, e.g. a small
        table that every rank joins with. Every rank must see the same files.
        With one rank, both are the same.

    Returns
    -------
    ParquetScanReport
        Through ``node.result()``: files, row groups total and read, rows, of
        this rank's share (``files`` counts a file split between ranks on each
        of them; the other fields add up over the ranks to those of the whole
        scan). ``ctx.progress`` likewise expects this rank's rows only.

    Raises
    ------
    FileNotFoundError, FileReadError, SchemaError, ColumnNotFoundError
        Naming the file or the column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import polars as pl
    >>> from streamnet import Context, Network
    >>> from actors import collect, read_parquet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
    >>> pl.DataFrame({"x": range(10), "y": range(10)}).write_parquet(path, row_group_size=5)
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> scan = read_parquet(ctx, ch, path, columns=["y"], filters=pl.col("x") >= 7)
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [scan, sink]).run()
    >>> sink.result()["y"].to_list(), scan.result().row_groups_read
    ([7, 8, 9], 1)

    On two ranks (here in one process), each reads one row group:

    >>> from streamnet import run_ranks
    >>> async def job(ctx):
    ...     ch = ctx.create_channel()
    ...     sink = collect(ctx, ch, into="polars")
    ...     await Network(ctx, [read_parquet(ctx, ch, path, columns=["x"]), sink]).run_async()
    ...     return sink.result()["x"].to_list()
    >>> run_ranks(2, job)
    [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    """
    if filters is not None and not isinstance(filters, pl.Expr):
        raise TypeError(f"read_parquet: `filters` must be a Polars expression, got {filters!r}")
    if isinstance(columns, str):
        raise TypeError("read_parquet: `columns` must be a list of names, not a single string")
    depth = prefetch if prefetch is not None else ctx.num_threads
    if type(depth) is not int or depth < 1:
        raise ValueError(f"read_parquet: `prefetch` must be an int >= 1, got {prefetch!r}")
    if not isinstance(split, bool):
        raise TypeError(f"read_parquet: `split` must be True or False, got {split!r}")
    out_columns = list(columns) if columns is not None else None
    paths = await ctx.to_thread(expand_paths, source, ".parquet")
    planned = await ctx.to_thread(_plan, paths, out_columns, filters)
    if split:
        weights = [piece.rows if piece.read else 0 for piece in planned]
        share = rank_share(weights, ctx.rank, ctx.nranks)
        planned = planned[share.start : share.stop]
    pieces = [piece for piece in planned if piece.read]
    ctx.progress.expect(sum(piece.rows for piece in pieces))

    pending: deque[asyncio.Future[TableChunk]] = deque()
    next_piece = 0
    read = rows_read = rows_emitted = seq = 0

    def refill() -> None:
        nonlocal next_piece
        while len(pending) < depth and next_piece < len(pieces):
            piece = pieces[next_piece]
            next_piece += 1
            pending.append(spawn(ctx.to_thread(_read_piece, piece, out_columns, filters)))

    try:
        refill()
        while pending:
            rows_read += pieces[read].rows
            chunk = await pending.popleft()
            ctx.progress.advance(pieces[read].rows)
            read += 1
            refill()
            if chunk.num_rows == 0 and (rows_emitted or pending or next_piece < len(pieces)):
                continue  # skip empty chunks, but keep one so the schema reaches the sink
            await ch_out.send(ctx, Message(seq, chunk))
            seq += 1
            rows_emitted += chunk.num_rows
        if seq == 0:  # nothing at all (or no share): still send the schema, typed as the data
            empty = await ctx.to_thread(_read_piece, _Piece(0, paths[0], 0, 0), out_columns, None)
            await ch_out.send(ctx, Message(0, empty))
        await ch_out.drain(ctx)
    except ChannelBroken:
        pass  # downstream needs no more (a limit): stop reading
    finally:
        for future in pending:
            future.cancel()
    return ParquetScanReport(
        files=len({piece.file for piece in planned}),
        row_groups_total=sum(piece.row_group for piece in planned),
        row_groups_read=read,
        rows_read=rows_read,
        rows_emitted=rows_emitted,
    )


@define_actor
async def write_parquet(
    ctx: Context,
    ch_in: Channel[TableChunk],
    path: PathLike,
    *,
    partitioned: bool = False,
    compression: str = "zstd",
    row_group_rows: int | None = None,
) -> ParquetWriteReport:
    """Write the stream to Parquet without holding it in memory.

    On several ranks, each rank writes its own files into the directory ``path``,
    with its rank in their names, so ranks never collide (see ``path``).

    Parameters
    ----------
    path
        The file to write, or with ``partitioned=True`` a directory that gets one
        file per chunk, ``part-<sequence number>.parquet``. With several ranks,
        ``path`` is always a directory (created if missing), as Spark and Dask
        write a dataset: each rank writes ``part-r<rank>.parquet`` into it, or
        with ``partitioned=True`` one ``part-r<rank>-<sequence number>.parquet``
        per chunk (ranks zero-padded to 5 digits, sequence numbers to 8), so
        that name order is rank order, then stream order, and
        ``read_parquet(path)`` or ``polars.read_parquet(path)`` reads the
        dataset back in that order. Files already in the directory are left
        alone. A rank that receives no chunk writes no file.
    compression
        Parquet codec (``"zstd"``, ``"snappy"``, ``"none"``...).
    row_group_rows
        Largest row group; a chunk larger than this is split.

    Chunks are written in arrival order (sequence order for a linear pipeline).

    Raises
    ------
    SchemaError
        A chunk does not have the schema of the first one; the message names both.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> from streamnet import Context, Network
    >>> from actors import from_arrow, write_parquet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.parquet"
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> src = from_arrow(ctx, ch, pa.table({"x": range(6)}), chunk_rows=2)
    >>> Network(ctx, [src, write_parquet(ctx, ch, path)]).run()
    >>> pq.read_table(path)["x"].to_pylist()
    [0, 1, 2, 3, 4, 5]
    """
    target = Path(path)
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    first_seq = 0
    files: list[str] = []
    rows = chunks = 0
    prefix = "part-" if ctx.nranks == 1 else f"part-r{ctx.rank:05d}-"
    if partitioned or ctx.nranks > 1:
        await ctx.to_thread(_make_directory, target)
    if not partitioned and ctx.nranks > 1:
        target = target / f"part-r{ctx.rank:05d}.parquet"
    try:
        while (msg := await ch_in.recv(ctx)) is not None:
            table = TableChunk.from_message(msg).to_arrow()
            if schema is None:
                schema, first_seq = table.schema, msg.sequence_number
            elif not table.schema.equals(schema, check_metadata=False):
                raise SchemaError(
                    f"actor `{current_actor_name()}`: chunk {msg.sequence_number} has schema "
                    f"{describe_schema(table.schema)} but chunk {first_seq} had "
                    f"{describe_schema(schema)}; a Parquet file holds one schema"
                )
            if partitioned:
                file = target / f"{prefix}{msg.sequence_number:08d}.parquet"
                await ctx.to_thread(
                    pq.write_table,
                    table,
                    file,
                    compression=compression,
                    row_group_size=row_group_rows,
                )
                files.append(str(file))
            else:
                if writer is None:
                    writer = await ctx.to_thread(
                        pq.ParquetWriter, str(target), schema, compression=compression
                    )
                    files.append(str(target))
                assert writer is not None
                await ctx.to_thread(writer.write_table, table, row_group_size=row_group_rows)
            rows += table.num_rows
            chunks += 1
    finally:
        if writer is not None:
            await ctx.to_thread(writer.close)
    return ParquetWriteReport(files=tuple(files), rows=rows, chunks=chunks)


def _make_directory(target: Path) -> None:
    """Create the directory ``target`` that :func:`write_parquet` writes into."""
    if target.exists() and not target.is_dir():
        raise FileExistsError(
            f"actor `{current_actor_name()}`: `{target}` is a file, but a directory is needed "
            "to write one Parquet file per chunk or per rank into"
        )
    target.mkdir(parents=True, exist_ok=True)
