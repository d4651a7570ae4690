"""Parquet: a streamed scan with projection and predicate pushdown, and a streamed writer.

The reader and the writer share this module (above 400 lines): they are the two
halves of one format's actors, with one set of path and schema rules; what to read
is planned by `streamnet.io`, the reading itself is the backend's, and the reader
hands it out as tasks that grow when few rows come out (`_Tasks`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import operator
import os
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from actors._columns import check_columns, referenced_columns
from actors._commit import output_actor
from actors._pushed import (
    blame_pushed_in_scan,
    check_committed,
    few_keys,
    key_counts,
    key_ranges,
    resolved_predicates,
)
from actors._typing import WriteMode
from actors._writing import check_write, partition_columns, write_stream
from streamnet import (
    ActorNode,
    Backend,
    Channel,
    ChannelBroken,
    ChunkWriter,
    CompiledPlan,
    Context,
    FilePath,
    FileReadError,
    Filter,
    HivePartitions,
    KernelKind,
    Message,
    ParquetScan,
    Plan,
    PlanParams,
    Predicate,
    Reservation,
    RowGroup,
    ScanTask,
    Step,
    StorePath,
    TableChunk,
    check_row_wise,
    current_actor,
    dataset_root,
    define_actor,
    empty_table,
    expand_paths,
    frame_of_arrow,
    group_scan_tasks,
    hive_partitions,
    plan_row_groups,
    prune_partitions,
    rank_share,
    read_parquet_footers,
    record_bytes_read,
    resolve_path,
    split_scan_tasks,
    start_task,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema as Schema
    from streamnet import FileSystem, StorageOptions

__all__ = [
    "ParquetScanReport",
    "ParquetWriteReport",
    "read_parquet",
    "scan_files",
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


def _with_partitions(schema: Schema, partitions: HivePartitions | None) -> Schema:
    """``schema`` (the files') and the partition columns of a hive-partitioned dataset:
    after the files' columns, or, for a column the files hold too, in its place (its
    values are the folders', as Polars reads them: `write_parquet(partition_by=...)` of
    Polars keeps the keys in the files)."""
    if partitions is None:
        return schema
    for field in pl.DataFrame(schema=dict(partitions.schema)).to_arrow().schema:
        index = schema.get_field_index(field.name)
        schema = schema.append(field) if index < 0 else schema.set(index, field)
    return schema


def _plan(
    backend: Backend,
    plan: Plan,
    columns: list[str] | None,
    predicate: pl.Expr | None,
    wanted: frozenset[str] | None = None,
    partitions: HivePartitions | None = None,
    pushed: Sequence[Predicate] = (),
    committed: Collection[Predicate] = frozenset(),
    ranges: Sequence[pl.Expr] = (),
) -> tuple[CompiledPlan, list[RowGroup]]:
    """Read every file's footer, check schemas and columns, compile ``plan`` (the scan and
    the steps fused after it), and list every row group, in file and row order (those that
    statistics prune, by ``predicate`` and the plan's leading filters, marked not to be read).

    ``wanted``: the columns the actors downstream need (None: all); the scan reads only
    those of its columns (at least one, so that rows are still counted). ``partitions``:
    the values of a hive-partitioned dataset's partition columns, per file; the files
    whose values prove the predicates false are dropped before their footers are read.
    ``pushed``: the predicates the actors downstream apply anyway, added to the scan's
    predicate (but those the leading fused filters state, which Polars pushes into the
    scan itself); those ``committed`` must apply, or an error names the filter each
    comes from (`ActorNode.committed_predicates`). ``ranges``: tests of the key filters
    among them that only prune row groups (`key_ranges`)."""
    source = plan.source
    assert isinstance(source, ParquetScan)
    paths = list(source.paths)
    nothing = False
    if partitions is not None:
        moved = [p.expr for p in pushed if p.columns <= set(partitions.names)]
        paths, partitions, nothing = _prune_files(paths, partitions, predicate, plan.steps, moved)
        source = dataclasses.replace(source, paths=tuple(paths))
        plan = Plan(source, plan.steps)
    files = read_parquet_footers(paths)
    names = files.schema.names
    if partitions is not None:  # a column the files hold too keeps its place (`_with_partitions`)
        names = [*names, *(name for name in partitions.names if name not in names)]
    if files.reordered and columns is None:  # every file's columns in the first one's order
        columns = list(names)
        plan = Plan(dataclasses.replace(source, columns=tuple(columns)), plan.steps)
    filtered = referenced_columns([predicate]) if predicate is not None else set()
    check_columns(set(columns or []) | filtered, names, where="read_parquet")
    if wanted is not None:
        chosen = columns if columns is not None else names
        kept = [name for name in chosen if name in wanted] or chosen[:1]
        if len(kept) < len(chosen):
            columns = kept
            plan = Plan(dataclasses.replace(source, columns=tuple(kept)), plan.steps)
    compiled = None
    stated = {p for step in _leading_filters(plan.steps) for p in Predicate.of(step.predicate)}
    # The filters these come from left them out: they apply here, or fail with the error
    # of their filter (`check_committed`: a compile each, so only where one cannot apply).
    must = [p for p in pushed if p in committed and p not in stated]
    if any(not p.columns <= set(names) for p in must):  # left out of `usable` below
        check_committed(backend, must, _with_partitions(files.schema, partitions), source.actor)
    usable = [p.expr for p in pushed if p not in stated and p.columns <= set(names)]
    attempts = [usable, [p.expr for p in must]] if must else [usable]
    # Statistics prune no row group by a key filter where its range does not (`ranges`),
    # and testing its keys against them costs milliseconds.
    keyed = {id(p.expr) for p in pushed if p.keys is not None}
    pruning = predicate
    for attempt, extra in enumerate(attempts, 1):
        if not extra:
            continue
        given = [predicate] if predicate is not None else []
        scan_predicate = functools.reduce(operator.and_, [*given, *extra])
        tested = [*given, *(e for e in extra if id(e) not in keyed)]
        scan = plan.source
        assert isinstance(scan, ParquetScan)
        with_pushed = Plan(dataclasses.replace(scan, predicate=scan_predicate), plan.steps)
        try:
            compiled = backend.compile(with_pushed, files.schema)
        except Exception:
            if not must:  # the filters downstream report what is wrong with their predicates
                break
            if attempt < len(attempts):
                continue  # the committed ones alone
            check_committed(
                backend, must, _with_partitions(files.schema, partitions), source.actor
            )
            raise
        plan, predicate = with_pushed, scan_predicate
        pruning = functools.reduce(operator.and_, tested) if tested else None
        break
    if compiled is None:
        compiled = backend.compile(plan, files.schema)
    prunes = ([pruning] if pruning is not None else []) + _prunes(
        plan.steps, columns if columns is not None else names
    )
    prunes += [r for r in ranges if referenced_columns([r]) <= set(names)]
    if prunes:
        pruning = pl.all_horizontal(prunes) if len(prunes) > 1 else prunes[0]
        filtered = referenced_columns(prunes)
    planned = plan_row_groups(files, pruning, filtered, partitions, read_columns=columns)
    if nothing:  # every file was pruned: the first one was kept only for the schema
        planned = [dataclasses.replace(piece, read=False) for piece in planned]
    return compiled, planned


def _prune_files(
    paths: list[FilePath], partitions: HivePartitions, predicate: pl.Expr | None,
    steps: Sequence[Step], pushed: Sequence[pl.Expr] = (),
) -> tuple[list[FilePath], HivePartitions, bool]:  # fmt: skip
    """The files of a hive-partitioned dataset that the predicates on its partition columns
    alone (``predicate``, the leading filters, the ``pushed`` predicates of the actors
    downstream) do not prune, their partitions, and whether none is left (the first file
    is then kept, for the schema)."""
    tests = ([predicate] if predicate is not None else []) + _prunes(steps, partitions.names)
    tests += pushed
    pruned = [False] * len(paths)
    others: pl.Schema | None = None
    for test in tests:
        verdict = prune_partitions(partitions, test)
        if verdict is None:  # it reads the files' columns too: their types, from one footer
            if others is None:
                empty = frame_of_arrow(empty_table(read_parquet_footers(paths[:1]).schema))
                others = empty.schema
            verdict = prune_partitions(partitions, test, others)
        if verdict is not None:
            pruned = [a or b for a, b in zip(pruned, verdict, strict=True)]
    keep = [i for i, gone in enumerate(pruned) if not gone]
    nothing = not keep
    keep = keep or [0]
    kept = dataclasses.replace(partitions, values=tuple(partitions.values[i] for i in keep))
    return [paths[i] for i in keep], kept, nothing


SCAN_SHARE = 1 / 8
"""Under a memory budget, the share of it that one scan task may take: the encoded column
chunks it reads, the rows it decodes and the decoding's working memory
(`Backend.working_memory`). A row group that needs more is read in parts (each reads the
row group's column chunks and decodes its own rows; more parts read them more times)."""
READ_AHEAD_SHARE = 1 / 4
"""Under a memory budget, the share of it that the tasks a scan reads ahead of the one it
sends next may take, reserved or read (and only while it is free): more would only make
the actors downstream spill."""


class _ScanMemory:
    """A scan's tasks under the Context's memory budget (nothing without a limit): sized to
    `SCAN_SHARE`, each reserved before it is read (the first one in flight waits for
    memory, the others are read ahead only if they fit now), and once read held in the
    budget, spillable, until it is sent.

    The decoded bytes a footer gives are an estimate (`ScanTask.decoded`): a task that
    decodes to more raises the estimate of the tasks after it."""

    def __init__(self, ctx: Context, kind: KernelKind) -> None:
        self.ctx = ctx
        self.kind = kind
        self.budget = ctx.memory
        self.share = ctx.memory.share(SCAN_SHARE)
        self.limited = self.share is not None
        # about to be sent on: spilled only if nothing else is left to spill
        self.holder = ctx.memory.holder("read ahead", spill_last=True) if self.limited else None
        self.per_byte = ctx.backend.working_memory(kind, 1 << 20) / (1 << 20)
        self.max_decoded = None if self.share is None else max(1, int(self.share / self.per_byte))
        self.ahead = ctx.memory.share(READ_AHEAD_SHARE) or 0
        self.correction = 1.0
        self.reserved: set[Reservation] = set()  # of the tasks being read

    def sized(self, tasks: list[ScanTask]) -> list[ScanTask]:
        """The tasks, a row group whose task does not fit the share cut into parts."""
        if self.share is None:
            return tasks
        out: list[ScanTask] = []
        for task in tasks:
            room = max(self.share - task.nbytes, self.share // 2)  # column chunks read whole
            out += split_scan_tasks([task], max(1, int(room / self.per_byte)))
        return out

    async def reserve(self, task: ScanTask, *, ahead: bool) -> Reservation | None:
        """The task's working memory; None without a limit, or if ``ahead`` and it does not
        fit now."""
        limit = self.budget.limit
        if limit is None:
            return None
        decoded = int(task.decoded * self.correction)
        need = min(limit, task.nbytes + self.ctx.backend.working_memory(self.kind, decoded))
        what = "reading a Parquet scan task"
        if ahead:
            assert self.holder is not None
            outstanding = sum(r.nbytes for r in self.reserved) + self.holder.resident
            reservation = (
                self.budget.try_reserve(need, what=what)
                if outstanding + need <= self.ahead else None
            )  # fmt: skip
        else:
            reservation = await self.budget.reserve(need, what=what)
        if reservation is not None:
            self.reserved.add(reservation)
        return reservation

    def read(self, reservation: Reservation | None) -> None:
        """The task of ``reservation`` was read (or failed): its reservation ends."""
        if reservation is not None:
            reservation.release()
            self.reserved.discard(reservation)

    async def hold(self, task: ScanTask, chunk: TableChunk) -> None:
        """``chunk`` was read for ``task``: held until `sent`."""
        if self.kind == "scan" and task.decoded:  # rows as they came: more than estimated?
            self.correction = max(self.correction, chunk.nbytes / task.decoded)
        if self.holder is not None:
            await self.holder.add(chunk)

    def sent(self, chunk: TableChunk) -> None:
        if self.holder is not None:
            self.holder.remove(chunk)

    def close(self) -> None:
        if self.holder is not None:
            self.holder.clear()


AGGREGATE_TASK_ROWS = 4_000_000
"""The most rows one scan task joins, when few rows come out of each."""

TASK_ROWS = 1 << 20
"""The rows one scan task joins (at most a core's share of the scan) once its first tasks
ran, when more than `FEW_ROWS_OUT` of the rows come out: each task is one query with a cost
of its own (its planning, a few milliseconds), which row groups of a few hundred thousand
rows pay again and again (TPC-H's lineitem at SF 1, 25 row groups: 131 ms read one by
one, 80 ms four at a time; orders at SF 10 filtered to 30% of its rows, 60 row groups
on two cores: 282 ms one by one, 267 ms four at a time)."""

FEW_ROWS_OUT = 1 / 8
"""A plan that lets through at most this share of the rows it reads leaves few: its scan
tasks join row groups."""


ROWS_PER_MANY_KEYS = 8
"""A key filter of at least one key per this many rows of a scan's row groups (on average)
has many keys: each task builds their hash set (or reads their lookup table) anew, at a
cost like reading the rows, so the scan's tasks join row groups from the start (TPC-H
Q9's orders at SF 1, 287,000 keys: 8.8 ms a row group of 250,000 rows against 4.0 ms
without the filter, 19 ms for the six at once)."""


def _many_keys(node: ActorNode | None, rows: int, pieces: int) -> bool:
    """Whether a key filter pushed to ``node`` (published) has many keys for the rows of
    the scan's ``pieces`` row groups (`ROWS_PER_MANY_KEYS`)."""
    return any(c * ROWS_PER_MANY_KEYS * pieces >= rows for c in key_counts(node))


def _task_rows(total: int, threads: int, most: int = AGGREGATE_TASK_ROWS) -> int:
    """Rows per scan task for ``total`` rows read on ``threads`` cores, when tasks join row
    groups: a task per core, at most ``most`` (each query runs on every core, and costs
    less the more rows it reads at once)."""
    return max(1, min(most, total // threads))


class _Tasks:
    """A scan's row groups handed out as tasks, in order: one row group each, or runs of
    adjacent ones (`group_scan_tasks`), since each task is one query with a cost of its
    own. Runs of up to `AGGREGATE_TASK_ROWS` rows once few rows come out of them: a plan
    that ends in a group-by's partials lets few rows through from the start; any other
    shows it in the tasks it has run. Otherwise runs of `TASK_ROWS` rows once two tasks
    per core have run (a scan that a limit stops early reads little).

    ``threads``: how many tasks run at once, at most the machine's cores (each query
    uses them all); ``local``: whether the files are local (`in_flight`)."""

    def __init__(
        self, pieces: Sequence[ScanTask], threads: int, *, few: bool,
        max_decoded: int | None = None, local: bool = True,
    ) -> None:  # fmt: skip
        self.pieces = list(pieces)
        self.max_decoded = max_decoded  # a joined run's decoded bytes, at most
        self.threads = max(1, min(threads, os.cpu_count() or 1))
        self.next = 0
        self.rows_in = self.rows_out = 0
        self.rows: int | None = None  # per task, once few rows come out
        self.given: list[ScanTask] = []
        self.few = False
        self.local = local
        self.tasks_done = 0
        if few:
            self._join_row_groups(few=True)

    def _join_row_groups(self, *, few: bool) -> None:
        """From now on, tasks of `_task_rows` of the rows left: at most `AGGREGATE_TASK_ROWS`
        when few rows come out, `TASK_ROWS` otherwise."""
        rest = sum(piece.rows for piece in self.pieces[self.next :])
        most = AGGREGATE_TASK_ROWS if few else TASK_ROWS
        self.rows = _task_rows(rest, self.threads, most)
        self.few = few

    def in_flight(self, depth: int) -> int:
        """How many tasks to read at once, for a scan that reads ``depth`` at once: at most
        one per core once its tasks are runs that let few rows through, each a query that
        runs on every core and holds millions of rows (TPC-H Q1 at SF 10, 15 runs of 4M
        rows: 1.7-2.3 s six at a time, 1.5-1.7 s two at a time). Objects of a store are
        read ``depth`` at once: their reads wait on the network."""
        return min(depth, self.threads) if self.few and self.local else depth

    def peek(self, running: int) -> ScanTask | None:
        """The next task, or None when all are given, or while ``running`` tasks are as
        many as the cores and none has told how many rows come out."""
        if self.next >= len(self.pieces):
            return None
        if self.rows is None and self.rows_in == 0 and running >= self.threads:
            return None
        rest = self.pieces[self.next :]
        if self.rows is None:
            return rest[0]
        return group_scan_tasks(rest, self.rows, max_decoded=self.max_decoded)[0]

    def take(self, running: int) -> ScanTask | None:
        """The next task (`peek`), given out."""
        task = self.peek(running)
        if task is not None:
            self.next += len(task.row_groups) or 1
            self.given.append(task)
        return task

    def done(self, rows_in: int, rows_out: int) -> None:
        """A task read ``rows_in`` rows and let ``rows_out`` through."""
        self.rows_in += rows_in
        self.rows_out += rows_out
        self.tasks_done += 1
        if not self.few and self.rows_in > 0 and self.rows_out <= FEW_ROWS_OUT * self.rows_in:
            self._join_row_groups(few=True)
        elif self.rows is None and self.tasks_done >= 2 * self.threads:
            # still read: a consumer that needs a few rows only (a limit) has stopped it by now
            self._join_row_groups(few=False)


def _check_read(actor: str, *, filters: object, columns: object = None, **_: Any) -> None:
    if columns is not None:
        if isinstance(columns, str):
            raise TypeError(
                f"actor `{actor}`: `columns` must be a list of names, not a single string; "
                f"got {columns!r}"
            )
        listed = list(columns) if isinstance(columns, Iterable) else None
        if listed is None or not all(isinstance(c, str) for c in listed):
            raise TypeError(
                f"actor `{actor}`: `columns` must be a list of column names, got {columns!r}"
            )
        repeated = sorted({c for c in listed if listed.count(c) > 1})
        if repeated:
            raise ValueError(f"actor `{actor}`: `columns` names {repeated} more than once")
    if filters is None:
        return
    if not isinstance(filters, pl.Expr):
        raise TypeError(f"read_parquet: `filters` must be a Polars expression, got {filters!r}")
    check_row_wise([filters], actor=actor, where="`filters`")


def _files(
    source: PathLike | Sequence[PathLike], hive_partitioning: bool | None, filesystem: object,
    storage_options: object,
) -> tuple[list[FilePath], HivePartitions | None] | None:  # fmt: skip
    """The local files of ``source`` and their partitions, for what a Network asks before
    anything runs; None for a store (a request there waits for the run)."""
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    if filesystem is not None or storage_options is not None or any("://" in str(s) for s in sources):
        return None
    return _located(source, hive_partitioning)


def _located(
    source: PathLike | Sequence[PathLike], hive_partitioning: bool | None, *,
    filesystem: FileSystem | None = None, storage_options: StorageOptions | None = None,
) -> tuple[list[FilePath], HivePartitions | None]:  # fmt: skip
    """The files of ``source`` and, unless ``hive_partitioning`` is False, the values of
    their ``key=value`` folders when ``source`` is one directory: one kernel's work, so a
    scan waits for one thread rather than two before it reads the footers."""
    paths = expand_paths(source, ".parquet", filesystem=filesystem, storage_options=storage_options)
    partitions = None
    if hive_partitioning is not False:
        root = dataset_root(source, filesystem=filesystem, storage_options=storage_options)
        partitions = hive_partitions(root, paths) if root is not None else None
    return paths, partitions


def _emits(
    columns_in: Mapping[str, frozenset[str] | None],
    /,
    *,
    source: PathLike | Sequence[PathLike],
    columns: Sequence[str] | None,
    hive_partitioning: bool | None,
    filesystem: object,
    storage_options: object,
    **_: Any,
) -> frozenset[str] | None:
    """The columns read: those asked for, else the first file's (from its footer) and the
    partition columns."""
    if columns is not None:
        return None if isinstance(columns, str) else frozenset(columns)
    try:
        found = _files(source, hive_partitioning, filesystem, storage_options)
        if found is None:
            return None
        paths, partitions = found
        names = read_parquet_footers(paths[:1]).schema.names
        return frozenset([*names, *(partitions.names if partitions is not None else ())])
    except Exception:  # not known: the actor reports what is wrong when it runs
        return None


def _rows(
    *, source: PathLike | Sequence[PathLike], hive_partitioning: bool | None,
    filesystem: object, storage_options: object, **_: Any,
) -> int | None:  # fmt: skip
    """The files' rows, from their footers."""
    try:
        found = _files(source, hive_partitioning, filesystem, storage_options)
        if found is None:
            return None
        files = read_parquet_footers(found[0])
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
    hive_partitioning: bool | None = None,
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
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
    since only a few rows come out of each; so do the queries after the first
    ones of a chain that let at most an eighth of the rows they read through.

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
        ``num_threads``); memory holds about this many decoded row groups. Once
        the scan's tasks are runs of row groups that let few rows through (a
        plan that ends in a group-by's partials), a local file's scan reads at
        most one run per core at once: each runs on every core.
    split
        With several ranks: True (the default) splits the row groups that
        statistics do not prune into one contiguous run per rank, balanced by
        row count, so rank 0 reads the first rows in file and row order, rank 1
        the next, and so on (concatenated in rank order, the ranks' outputs are
        the whole scan, in order). A rank with no share sends one empty chunk
        with the schema. False makes every rank read everything, for an actor
        of the user's own that needs the whole table on each rank. Not for a
        collective such as `join`, which takes each rank's input as that rank's
        share, so that every rank's copy would count once more (a small side is
        broadcast by the join itself). Every rank must see the same files. With
        one rank, both are the same.
    hive_partitioning
        Whether the ``key=value`` folders of a directory ``source`` give
        partition columns (a hive-partitioned dataset, as ``write_parquet(...,
        partition_by=...)`` writes it): None (the default) reads them when
        ``source`` is one directory, as Polars does. They come after the files'
        own columns, typed as Polars types them (Int64, Float64, Date, else
        String; ``__HIVE_DEFAULT_PARTITION__`` is null); a column the files hold
        too (Polars' ``write_parquet(partition_by=...)`` keeps the keys in the
        files) keeps its place and type, with the folders' values, as Polars
        reads it. ``filters`` (and
        fused filters) on them prune whole folders before any of their files is
        opened.
    filesystem
        A ``pyarrow.fs.FileSystem`` that ``source`` is read from (its paths are
        paths in it); by default a URI's scheme chooses the store (see below).
    storage_options
        Keyword arguments of the filesystem a URI's scheme makes: pyarrow's
        (``S3FileSystem(endpoint_override=..., access_key=..., region=...)``), or
        fsspec's for a scheme pyarrow has no filesystem for. Without them,
        credentials come from the store's usual chain (environment variables,
        configuration files, instance metadata).

    ``source`` may name objects of a store by URI (``s3://bucket/data/``,
    ``gs://...``, ``az://...``): the folder is listed once per rank, footers
    are read several at once, and each scan task reads only its row groups'
    column chunks by range requests (``prefetch`` of them in flight), never
    the whole object first.

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
    depth = prefetch if prefetch is not None else ctx.num_threads
    if type(depth) is not int or depth < 1:
        raise ValueError(f"read_parquet: `prefetch` must be an int >= 1, got {prefetch!r}")
    if not isinstance(split, bool):
        raise TypeError(f"read_parquet: `split` must be True or False, got {split!r}")
    out_columns = list(columns) if columns is not None else None
    paths, partitions = await ctx.to_thread(
        _located, source, hive_partitioning, filesystem=filesystem, storage_options=storage_options
    )
    return await scan_files(ctx, ch_out, paths, partitions, out_columns, filters, depth, split)


async def scan_files(
    ctx: Context,
    ch_out: Channel[TableChunk],
    paths: Sequence[FilePath],
    partitions: HivePartitions | None,
    out_columns: list[str] | None,
    filters: pl.Expr | None,
    depth: int,
    split: bool,
) -> ParquetScanReport:
    """The scan of `read_parquet` (and of the sources that read Parquet files, such as
    `read_delta`), once the files and their partitions are known: plan, share between
    ranks, read ``depth`` tasks at once, send."""
    columns = out_columns
    node = current_actor()
    scan = ParquetScan(
        tuple(paths), tuple(columns) if columns is not None else None, filters,
        actor=node.name if node else "",
        partitioning=tuple(partitions.schema.items()) if partitions is not None else (),
    )  # fmt: skip
    plan = Plan(scan, node.fused_steps if node is not None else ())
    backend = ctx.backend
    wanted = node.pruned_columns if node is not None else None
    # a key filter waits for its join's keys; Polars' reader takes them best hashed
    keyed = node is not None and any(p.keys is not None for p in node.pushed_predicates)
    rows = node.estimated_rows() if node is not None and keyed else None
    pushed = await resolved_predicates(node, lookup=False, rows=rows)
    ranges = await key_ranges(node)
    compiled, planned = await ctx.to_thread(
        _plan,
        backend,
        plan,
        out_columns,
        filters,
        wanted,
        partitions,
        pushed,
        node.committed_predicates if node is not None else frozenset(),
        ranges,
    )
    if node is not None and node.link is not None:  # the plan ends in a group-by's partials
        node.link.publish(compiled.aggregate_input_schema)
    if split:
        weights = [piece.rows if piece.read else 0 for piece in planned]
        share = rank_share(weights, ctx.rank, ctx.nranks)
        planned = planned[share.start : share.stop]
    # A plan ending in a group-by's partials lets a few rows per task through.
    aggregate = node is not None and node.link is not None
    reads = _ScanMemory(ctx, "scan_aggregate" if aggregate else "scan")
    pieces = reads.sized([piece.task for piece in planned if piece.read])
    rows = sum(piece.rows for piece in pieces)
    few = aggregate or few_keys(node, rows) or _many_keys(node, rows, len(pieces))
    local = not any(isinstance(path, StorePath) for path in paths)
    tasks = _Tasks(pieces, depth, few=few, max_decoded=reads.max_decoded, local=local)
    ctx.progress.expect(sum(piece.rows for piece in tasks.pieces))

    pending: deque[asyncio.Future[TableChunk]] = deque()
    read = rows_read = rows_emitted = seq = 0

    async def scan_one(task: ScanTask, params: PlanParams, reserved: Reservation | None) -> TableChunk:
        try:
            chunk = await ctx.to_thread(backend.scan, compiled, task, params=params)
        except Exception as exc:
            if not pushed or isinstance(exc, FileReadError):
                raise
            # A predicate a filter downstream left to the scan may be what fails: its error.
            blamed = await ctx.to_thread(blame_pushed_in_scan, backend, compiled, task, pushed)
            if blamed is None:
                raise
            raise blamed from None
        finally:
            reads.read(reserved)
        await reads.hold(task, chunk)  # read ahead: held, spillable, until it is sent
        return chunk

    async def refill() -> None:
        while len(pending) < tasks.in_flight(depth) and (task := tasks.peek(len(pending))) is not None:
            reserved = await reads.reserve(task, ahead=bool(pending))
            if reserved is None and reads.limited:
                return  # it does not fit now: read it once the reads in flight are sent
            tasks.take(len(pending))
            params = PlanParams(rank=ctx.rank, sequence=len(tasks.given) - 1)  # a Stamp's values
            pending.append(start_task(scan_one(task, params, reserved)))

    try:
        await refill()
        while pending:
            task = tasks.given[read]
            rows_read += task.rows
            chunk = await pending.popleft()
            ctx.progress.advance(task.rows)
            record_bytes_read(task.nbytes)
            read += 1
            tasks.done(task.rows, chunk.num_rows)
            await refill()
            if chunk.num_rows == 0 and (rows_emitted or pending or tasks.next < len(tasks.pieces)):
                reads.sent(chunk)
                continue  # skip empty chunks, but keep one so the schema reaches the sink
            await ch_out.send(ctx, Message(seq, chunk))
            reads.sent(chunk)  # counted in the channel now
            seq += 1
            rows_emitted += chunk.num_rows
        if seq == 0:  # nothing at all (or no share): still send the schema, typed as the data
            schema_only = ScanTask(compiled.plan.source.paths[0], (), 0, 0)  # type: ignore[union-attr]
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
        reads.close()
    return ParquetScanReport(
        files=len({piece.file for piece in planned}),
        row_groups_total=sum(piece.index is not None for piece in planned),
        row_groups_read=len(
            {(str(task.path), g) for task in tasks.given[:read] for g in task.row_groups}
        ),  # a row group read in parts counts once
        rows_read=rows_read,
        rows_emitted=rows_emitted,
    )


def _check_write_parquet(actor: str, *, row_group_rows: object = None, **arguments: Any) -> None:
    check_write(actor, **arguments)
    if row_group_rows is not None and (type(row_group_rows) is not int or row_group_rows < 1):
        raise ValueError(
            f"actor `{actor}`: `row_group_rows` must be an int >= 1 or None, got {row_group_rows!r}"
        )


@output_actor(check=_check_write_parquet)
async def write_parquet(
    ctx: Context,
    ch_in: Channel[TableChunk],
    path: PathLike,
    *,
    partitioned: bool = False,
    mode: WriteMode = "error",
    compression: str = "zstd",
    row_group_rows: int | None = None,
    partition_by: str | Sequence[str] | None = None,
    max_open_files: int = 64,
    max_file_bytes: int | None = 512 << 20,
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
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
    partition_by
        A column name, or several, whose values partition the output into a hive-partitioned
        directory ``path``: one folder per value, ``year=2024/country=FR/``
        (null as ``__HIVE_DEFAULT_PARTITION__``), holding files of the other
        columns, ``part-<n>.parquet`` (``part-r<rank>-<n>`` on several ranks), as
        Spark, pyarrow and Polars write and read them back (``read_parquet(path)``
        gives the partition columns back, after the others). It streams: rows go
        to the open file of their partition, staged and published atomically as
        any directory output.
    max_open_files
        With ``partition_by``: the most files open at once; writing to another
        partition closes the one written longest ago (a later row of it starts a
        new file).
    max_file_bytes
        With ``partition_by``: a file is closed once the chunks written to it
        reach this many bytes (in memory, before encoding), and the partition's
        next rows roll into a new file; None for no limit.
    filesystem, storage_options
        Where ``path`` is when it is not a local path: a ``pyarrow.fs.FileSystem``
        it is a path in, or the keyword arguments of the filesystem that a URI's
        scheme (``s3://``...) makes (see `read_parquet`). A store has no rename:
        each object is uploaded under a hidden staging key as it is written, and
        copied to its key once the run succeeded (it appears whole, or not at
        all), the ``_SUCCESS`` marker of a directory last; a failed run deletes
        what it staged. See ``actors/_store_output.py``.

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
    target = resolve_path(path, filesystem=filesystem, storage_options=storage_options)
    backend = ctx.backend

    def open_writer(file: FilePath, schema: Schema) -> ChunkWriter:
        return backend.parquet_writer(file, schema, compression=compression)

    def write(writer: ChunkWriter, chunk: TableChunk) -> None:
        writer.write(chunk, row_group_rows=row_group_rows)

    if type(max_open_files) is not int or max_open_files < 1:
        raise ValueError(
            f"write_parquet: `max_open_files` must be an int >= 1, got {max_open_files!r}"
        )
    if max_file_bytes is not None and (type(max_file_bytes) is not int or max_file_bytes < 1):
        raise ValueError(
            f"write_parquet: `max_file_bytes` must be None or an int >= 1, got {max_file_bytes!r}"
        )
    written = await write_stream(
        ctx, ch_in, target, mode, partitioned=partitioned, suffix=".parquet",
        open_writer=open_writer, write=write, partition_by=partition_columns(partition_by),
        max_open_files=max_open_files, max_file_bytes=max_file_bytes,
    )  # fmt: skip
    return ParquetWriteReport(files=written.files, rows=written.rows, chunks=written.chunks)
