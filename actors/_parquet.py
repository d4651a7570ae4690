"""Parquet: a streamed scan with projection and predicate pushdown, and a streamed writer.

The reader and the writer share this module (above 400 lines): they are the two
halves of one format's actors, with one set of path and schema rules; what to read
is planned by `streamnet.io`, the reading itself is the backend's, and the reader
hands it out as tasks that grow when few rows come out (`_Tasks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import operator
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from actors._columns import check_columns, referenced_columns
from actors._commit import StagedOutput, check_target, output_actor
from actors._pushed import resolved_predicates
from actors._typing import WriteMode
from streamnet import (
    Backend,
    Channel,
    ChannelBroken,
    ChunkWriter,
    Collective,
    CompiledPlan,
    Context,
    Filter,
    Message,
    ParquetScan,
    Plan,
    PlanParams,
    Predicate,
    RowGroup,
    ScanTask,
    Step,
    TableChunk,
    check_row_wise,
    current_actor,
    define_actor,
    expand_paths,
    group_scan_tasks,
    plan_row_groups,
    rank_share,
    read_parquet_footers,
    start_task,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema as Schema

__all__ = ["ParquetScanReport", "ParquetWriteReport", "read_parquet", "write_parquet"]

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


def _leading_filters(steps: Sequence[Step]) -> list[Filter]:
    """The `Filter` steps that come first."""
    leading = []
    for step in steps:
        if not isinstance(step, Filter):
            break
        leading.append(step)
    return leading


def _prunes(steps: Sequence[Step], scanned: Sequence[str]) -> list[pl.Expr]:
    """The predicates of the leading `Filter` steps that read only scanned columns (none
    redefined before them, since only filters come first): their statistics prune too."""
    have = set(scanned)
    predicates = []
    for step in _leading_filters(steps):
        names = step.predicate.meta.root_names()
        if names and set(names) <= have and not step.predicate.meta.has_multiple_outputs():
            predicates.append(step.predicate)
    return predicates


def _plan(
    backend: Backend,
    plan: Plan,
    columns: list[str] | None,
    predicate: pl.Expr | None,
    wanted: frozenset[str] | None = None,
    pushed: Sequence[Predicate] = (),
) -> tuple[CompiledPlan, list[RowGroup]]:
    """Read every file's footer, check schemas and columns, compile ``plan`` (the scan and
    the steps fused after it), and list every row group, in file and row order (those that
    statistics prune, by ``predicate`` and the plan's leading filters, marked not to be read).

    ``wanted``: the columns the actors downstream need (None: all); the scan reads only
    those of its columns (at least one, so that rows are still counted). ``pushed``: the
    predicates the actors downstream apply anyway, added to the scan's predicate (but
    those the leading fused filters state, which Polars pushes into the scan itself)."""
    assert isinstance(plan.source, ParquetScan)
    files = read_parquet_footers(list(plan.source.paths))
    filtered = referenced_columns([predicate]) if predicate is not None else set()
    check_columns(set(columns or []) | filtered, files.schema.names, where="read_parquet")
    if wanted is not None:
        names = columns if columns is not None else files.schema.names
        kept = [name for name in names if name in wanted] or names[:1]
        if len(kept) < len(names):
            columns = kept
            plan = Plan(dataclasses.replace(plan.source, columns=tuple(kept)), plan.steps)
    compiled = None
    stated = {p for step in _leading_filters(plan.steps) for p in Predicate.of(step.predicate)}
    extra = [p.expr for p in pushed if p not in stated and p.columns <= set(files.schema.names)]
    if extra:
        scan_predicate = functools.reduce(operator.and_, [*filter(None, [predicate]), *extra])
        scan = plan.source
        assert isinstance(scan, ParquetScan)
        with_pushed = Plan(dataclasses.replace(scan, predicate=scan_predicate), plan.steps)
        try:
            compiled = backend.compile(with_pushed, files.schema)
        except Exception:  # the filter downstream reports what is wrong with its predicate
            compiled = None
        else:
            plan, predicate = with_pushed, scan_predicate
    if compiled is None:
        compiled = backend.compile(plan, files.schema)
    prunes = ([predicate] if predicate is not None else []) + _prunes(
        plan.steps, columns if columns is not None else files.schema.names
    )
    if prunes:
        predicate = pl.all_horizontal(prunes) if len(prunes) > 1 else prunes[0]
        filtered = referenced_columns(prunes)
    return compiled, plan_row_groups(files, predicate, filtered)


AGGREGATE_TASK_ROWS = 4_000_000
"""The most rows one scan task joins, when few rows come out of each."""

FEW_ROWS_OUT = 1 / 8
"""A plan that lets through at most this share of the rows it reads leaves few: its scan
tasks join row groups."""


def _task_rows(total: int, threads: int) -> int:
    """Rows per scan task for ``total`` rows read on ``threads`` cores, when few rows leave
    each: a task per core, at most `AGGREGATE_TASK_ROWS` (each query runs on every core,
    and costs less the more rows it reads at once)."""
    return max(1, min(AGGREGATE_TASK_ROWS, total // threads))


class _Tasks:
    """A scan's row groups handed out as tasks, in order: one row group each, or runs of
    adjacent ones (`group_scan_tasks`) once few rows come out of them, since each task is
    one query with a cost of its own. A plan that ends in a group-by's partials lets few
    rows through from the start; any other shows it in the tasks it has run.

    ``threads``: how many tasks run at once, at most the machine's cores (each query
    uses them all)."""

    def __init__(self, pieces: Sequence[ScanTask], threads: int, *, few: bool) -> None:
        self.pieces = list(pieces)
        self.threads = max(1, min(threads, os.cpu_count() or 1))
        self.next = 0
        self.rows_in = self.rows_out = 0
        self.rows: int | None = None  # per task, once few rows come out
        self.given: list[ScanTask] = []
        if few:
            self._join_row_groups()

    def _join_row_groups(self) -> None:
        """From now on, tasks of `_task_rows` of the rows left."""
        rest = sum(piece.rows for piece in self.pieces[self.next :])
        self.rows = _task_rows(rest, self.threads)

    def take(self, running: int) -> ScanTask | None:
        """The next task, or None when all are given, or while ``running`` tasks are as
        many as the cores and none has told how many rows come out."""
        if self.next >= len(self.pieces):
            return None
        if self.rows is None and self.rows_in == 0 and running >= self.threads:
            return None
        rest = self.pieces[self.next :]
        task = rest[0] if self.rows is None else group_scan_tasks(rest, self.rows)[0]
        self.next += len(task.row_groups) or 1
        self.given.append(task)
        return task

    def done(self, rows_in: int, rows_out: int) -> None:
        """A task read ``rows_in`` rows and let ``rows_out`` through."""
        self.rows_in += rows_in
        self.rows_out += rows_out
        if self.rows is None and self.rows_in > 0 and self.rows_out <= FEW_ROWS_OUT * self.rows_in:
            self._join_row_groups()


def _check_read(actor: str, *, filters: object, **_: Any) -> None:
    if filters is None:
        return
    if not isinstance(filters, pl.Expr):
        raise TypeError(f"read_parquet: `filters` must be a Polars expression, got {filters!r}")
    check_row_wise([filters], actor=actor, where="`filters`")


def _emits(
    columns_in: Mapping[str, frozenset[str] | None],
    /,
    *,
    source: PathLike | Sequence[PathLike],
    columns: Sequence[str] | None,
    **_: Any,
) -> frozenset[str] | None:
    """The columns read: those asked for, else the first file's (from its footer)."""
    if columns is not None:
        return None if isinstance(columns, str) else frozenset(columns)
    try:
        return frozenset(pl.read_parquet_schema(expand_paths(source, ".parquet")[0]))
    except Exception:  # not known: the actor reports what is wrong when it runs
        return None


def _rows(*, source: PathLike | Sequence[PathLike], **_: Any) -> int | None:
    """The files' rows, from their footers."""
    try:
        files = read_parquet_footers(expand_paths(source, ".parquet"))
    except Exception:  # not known: the actor reports what is wrong when it runs
        return None
    return int(sum(footer.num_rows for footer in files.metadata))


@define_actor(
    check=_check_read, head=True, prunes=True, emits=_emits, pushdown=True, rows=_rows
)
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

    In a `Network`, the per-chunk actors that follow it (``filter``,
    ``with_columns``, ``select``...) fuse into its scan: each row group is read
    and run through their steps as one query, the reader decoding only the
    columns the steps use, and the predicates of the leading filters prune
    row groups by their statistics as ``filters`` does. The report then counts
    the rows after the whole chain in ``rows_emitted``. The predicates of filters
    further downstream that a Network pushes to it (see `Network`'s
    ``pushdown``) join ``filters``, statistics included. When the chain ends in
    the partial aggregation of a ``groupby_agg``, one query reads a run of
    adjacent row groups (a run per core of the machine, up to four million rows),
    since only a few rows come out of each; so do the
    queries after the first ones of a chain that let at most an eighth of the
    rows they read through.

    Parameters
    ----------
    source
        A file, a directory (every ``*.parquet`` in it, skipping names that start
        with ``.`` or ``_``: a write in progress, markers), a glob, or a list of these.
    columns
        Columns to read (projection); all when None.
    filters
        A row-wise Polars predicate (it is evaluated one row group at a time).
        Row groups whose statistics prove that no row matches are never read
        (Polars' own test, so NaN, which Parquet statistics leave out, is never
        pruned where it could match); the rows of the others are filtered exactly.
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
    ExpressionError
        When the node is made, if ``filters`` is not row-wise.

    Examples
    --------
    >>> import tempfile, pathlib
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
    if isinstance(columns, str):
        raise TypeError("read_parquet: `columns` must be a list of names, not a single string")
    depth = prefetch if prefetch is not None else ctx.num_threads
    if type(depth) is not int or depth < 1:
        raise ValueError(f"read_parquet: `prefetch` must be an int >= 1, got {prefetch!r}")
    if not isinstance(split, bool):
        raise TypeError(f"read_parquet: `split` must be True or False, got {split!r}")
    out_columns = list(columns) if columns is not None else None
    paths = await ctx.to_thread(expand_paths, source, ".parquet")
    node = current_actor()
    scan = ParquetScan(
        tuple(paths), tuple(columns) if columns is not None else None, filters,
        actor=node.name if node else "",
    )  # fmt: skip
    plan = Plan(scan, node.fused_steps if node is not None else ())
    backend = ctx.backend
    wanted = node.pruned_columns if node is not None else None
    pushed = await resolved_predicates(node)  # a key filter waits for its join's keys
    compiled, planned = await ctx.to_thread(
        _plan, backend, plan, out_columns, filters, wanted, pushed
    )
    if node is not None and node.link is not None:  # the plan ends in a group-by's partials
        node.link.publish(compiled.aggregate_input_schema)
    if split:
        weights = [piece.rows if piece.read else 0 for piece in planned]
        share = rank_share(weights, ctx.rank, ctx.nranks)
        planned = planned[share.start : share.stop]
    # A plan ending in a group-by's partials lets a few rows per task through.
    tasks = _Tasks(
        [piece.task for piece in planned if piece.read], depth,
        few=node is not None and node.link is not None,
    )  # fmt: skip
    ctx.progress.expect(sum(piece.rows for piece in tasks.pieces))

    pending: deque[asyncio.Future[TableChunk]] = deque()
    read = rows_read = rows_emitted = seq = 0

    def refill() -> None:
        while len(pending) < depth and (task := tasks.take(len(pending))) is not None:
            params = PlanParams(rank=ctx.rank, sequence=len(tasks.given) - 1)  # a Stamp's values
            pending.append(start_task(ctx.to_thread(backend.scan, compiled, task, params=params)))

    try:
        refill()
        while pending:
            task = tasks.given[read]
            rows_read += task.rows
            chunk = await pending.popleft()
            ctx.progress.advance(task.rows)
            read += 1
            tasks.done(task.rows, chunk.num_rows)
            refill()
            if chunk.num_rows == 0 and (rows_emitted or pending or tasks.next < len(tasks.pieces)):
                continue  # skip empty chunks, but keep one so the schema reaches the sink
            await ch_out.send(ctx, Message(seq, chunk))
            seq += 1
            rows_emitted += chunk.num_rows
        if seq == 0:  # nothing at all (or no share): still send the schema, typed as the data
            schema_only = ScanTask(paths[0], (), 0, 0)
            empty = await ctx.to_thread(backend.scan, compiled, schema_only)
            await ch_out.send(ctx, Message(0, empty))
        await ch_out.drain(ctx)
    except ChannelBroken:
        pass  # downstream needs no more (a limit): stop reading
    finally:
        for future in pending:
            future.cancel()
        if pending:  # a cancelled read still running ends first (see Context.to_thread)
            await asyncio.wait(pending)
    return ParquetScanReport(
        files=len({piece.file for piece in planned}),
        row_groups_total=sum(piece.index is not None for piece in planned),
        row_groups_read=sum(len(task.row_groups) for task in tasks.given[:read]),
        rows_read=rows_read,
        rows_emitted=rows_emitted,
    )


def _check_write(actor: str, *, ctx: Context, path: PathLike, partitioned: bool, mode: object,
                 **_: Any) -> None:  # fmt: skip
    if not isinstance(partitioned, bool):
        raise TypeError(
            f"actor `{actor}`: `partitioned` must be True or False, got {partitioned!r}"
        )
    directory = partitioned or ctx.nranks > 1
    check_target(Path(path), mode, directory=directory, actor=actor)


@output_actor(check=_check_write)
async def write_parquet(
    ctx: Context,
    ch_in: Channel[TableChunk],
    path: PathLike,
    *,
    partitioned: bool = False,
    mode: WriteMode = "error",
    compression: str = "zstd",
    row_group_rows: int | None = None,
) -> ParquetWriteReport:
    """Write the stream to Parquet without holding it in memory, atomically.

    Output appears only complete, and only when the whole run succeeded:
    files are written under hidden temporary names next to ``path`` and moved
    into place once every actor of the network ended well, on every rank (a
    commit step, see `streamnet.on_success`); a directory gets a ``_SUCCESS``
    marker last. A run that fails or is cancelled, in this actor or any other,
    removes what it wrote and leaves ``path`` as it was. On several ranks, each
    rank writes its own files into the directory ``path``, with its rank in
    their names, so ranks never collide (see ``path``), and the ranks' chunks
    must share one schema.

    Parameters
    ----------
    path
        The file to write, or with ``partitioned=True`` a directory that gets one
        file per chunk, ``part-<sequence number>.parquet``. With several ranks,
        ``path`` is always a directory, as Spark and Dask write a dataset: each
        rank writes ``part-r<rank>.parquet`` into it, or with ``partitioned=True``
        one ``part-r<rank>-<sequence number>.parquet`` per chunk (ranks
        zero-padded to 5 digits, sequence numbers to 8), so that name order is
        rank order, then stream order, and ``read_parquet(path)`` or
        ``polars.read_parquet(path)`` reads the dataset back in that order. A
        rank that receives no chunk writes no file.
    mode
        When ``path`` exists: ``"error"`` (default) raises `FileExistsError` as
        the network is built, before anything runs; ``"overwrite"`` replaces it
        once the new output is complete; ``"append"`` adds this write's files to
        the directory, named ``part-w<UTC time>-...`` so that no earlier name is
        reused and a later write sorts after (a single file cannot be appended to).
    compression
        Parquet codec (``"zstd"``, ``"snappy"``, ``"none"``...).
    row_group_rows
        Largest row group; a chunk larger than this is split.

    Chunks are written in arrival order (sequence order for a linear pipeline).

    Returns
    -------
    ParquetWriteReport
        Through ``node.result()``: this rank's files (their final paths), rows, chunks.

    Raises
    ------
    FileExistsError, ValueError
        The target exists (``mode="error"``), or the mode does not fit it.
    SchemaError
        On several ranks, the ranks' chunks differ in schema: one dataset has one
        schema, so nothing is written (cast them first, with `actors.cast`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from streamnet import Context, Network
    >>> from actors import from_arrow, write_parquet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.parquet"
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> src = from_arrow(ctx, ch, pa.table({"x": range(6)}), chunk_rows=2)
    >>> Network(ctx, [src, write_parquet(ctx, ch, path)]).run()
    >>> pl.read_parquet(path)["x"].to_list()
    [0, 1, 2, 3, 4, 5]
    """
    coll = Collective(ctx)
    directory = partitioned or ctx.nranks > 1
    output = await StagedOutput.begin(ctx, coll, Path(path), mode, directory=directory)
    backend = ctx.backend
    writer: ChunkWriter | None = None
    schema: Schema | None = None
    rows = chunks = 0
    prefix = "" if ctx.nranks == 1 else f"r{ctx.rank:05d}"
    try:
        # The channel lets in only chunks of one schema (SchemaError in the sender otherwise),
        # so every chunk fits the file the first one opened.
        while (msg := await ch_in.recv(ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            if schema is None:
                schema = chunk.schema
            if partitioned:
                stem = "-".join(filter(None, [prefix, f"{msg.sequence_number:08d}"]))
                file = output.stage(output.file_name(f"{stem}.parquet"))
                await ctx.to_thread(
                    backend.write_parquet, chunk, file, compression=compression,
                    row_group_rows=row_group_rows,
                )  # fmt: skip
            else:
                if writer is None:
                    file = output.stage(
                        output.file_name(f"{prefix}.parquet") if directory else None
                    )
                    writer = await ctx.to_thread(
                        backend.parquet_writer, file, schema, compression=compression
                    )
                assert writer is not None
                await ctx.to_thread(writer.write, chunk, row_group_rows=row_group_rows)
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
    return ParquetWriteReport(files=tuple(files), rows=rows, chunks=chunks)
