"""Parquet files planned before anything is read: footers, their schema, row groups, pruning.

Host code on the files' metadata only (no table is read): every backend scans
the `ScanTask` s planned here.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from channels.lowlevel import import_lazily
from streamnet._errors import FileReadError, SchemaError
from streamnet._schema import describe_schema, empty_table, frame_of_arrow
from streamnet.io._hive import HivePartitions
from streamnet.io._stores import FilePath, StorePath, in_flight

if TYPE_CHECKING:
    import pyarrow as pa
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")

__all__ = [
    "ParquetFiles",
    "RowGroup",
    "ScanTask",
    "decoded_bytes",
    "group_scan_tasks",
    "plan_row_groups",
    "prune_partitions",
    "read_parquet_footers",
    "row_group_statistics",
    "skip_predicate",
    "split_scan_tasks",
]


@dataclass(frozen=True, slots=True)
class ScanTask:
    """One unit of a Parquet scan: a run of row groups of one file.

    Attributes
    ----------
    path
        The file.
    row_groups
        The row groups to read, by index in the file, in order (none for a task
        that only gives the schema).
    offset
        The file's row where the first of them starts.
    rows
        Rows in them.
    partition
        The file's values of the partition columns of a hive-partitioned dataset (see
        `ParquetScan.partitioning`), added to its rows; none otherwise.
    nbytes
        The encoded bytes of the column chunks it reads (what it reads from the file:
        the whole column chunks of its row groups, also for a task that reads only
        some rows of one).
    decoded
        About the bytes its rows take once decoded (`decoded_bytes`, from the footer):
        what a scan under a memory budget sizes its tasks and reservations by.
    """

    path: FilePath
    row_groups: tuple[int, ...]
    offset: int
    rows: int
    partition: tuple[Any, ...] = ()
    nbytes: int = 0
    decoded: int = 0


@dataclass(frozen=True, slots=True)
class ParquetFiles:
    """The footers of the files of one scan, checked to share one schema.

    Attributes
    ----------
    paths
        The files, in scan order.
    schema
        Their Arrow schema (the first file's column order).
    metadata
        Each file's footer (``pyarrow.parquet.FileMetaData``), in the order of ``paths``.
    reordered
        Whether a file holds the columns in another order than the first (Polars reads
        them by name): a scan then selects the columns of ``schema`` in its order.
    """

    paths: tuple[FilePath, ...]
    schema: pa.Schema
    metadata: tuple[Any, ...]
    reordered: bool = False


@dataclass(frozen=True, slots=True)
class RowGroup:
    """One row group of a scan: where its rows start in its file, how many, whether to read it.

    ``read`` is False for a row group whose statistics prove the predicate
    false. A file without row groups is one entry with ``index`` None and no
    rows, so that it is still counted among the files of the scan. ``file`` is
    the index of ``path`` among the files scanned.
    """

    file: int
    path: FilePath
    index: int | None
    offset: int
    rows: int
    read: bool = True
    partition: tuple[Any, ...] = ()
    nbytes: int = 0
    decoded: int = 0

    @property
    def task(self) -> ScanTask:
        """The scan of this row group alone."""
        groups = () if self.index is None else (self.index,)
        return ScanTask(
            self.path, groups, self.offset, self.rows, self.partition, self.nbytes, self.decoded
        )


def group_scan_tasks(
    tasks: Sequence[ScanTask], rows: int, *, max_decoded: int | None = None
) -> list[ScanTask]:
    """``tasks`` in order, each run of adjacent row groups of one file joined into
    tasks of at least ``rows`` rows (the last of a run may have fewer), and of at
    most ``max_decoded`` decoded bytes when given (a task that has more alone).

    A scan whose rows end in a few (a plan that ends in an aggregation) reads
    larger tasks: each task is one query with a cost of its own. Tasks of
    different files, or with pruned row groups between them, or that read only
    some rows of a row group (`split_scan_tasks`), stay apart.

    Raises
    ------
    ValueError
        ``rows`` is not an int >= 1, or ``max_decoded`` not None or an int >= 1.
    """
    if type(rows) is not int or rows < 1:
        raise ValueError(f"group_scan_tasks: `rows` must be an int >= 1, got {rows!r}")
    if max_decoded is not None and (type(max_decoded) is not int or max_decoded < 1):
        raise ValueError(
            f"group_scan_tasks: `max_decoded` must be None or an int >= 1, got {max_decoded!r}"
        )
    # a row group that several tasks read part of (split_scan_tasks) joins no other
    counts: Counter[tuple[FilePath, tuple[int, ...]]] = Counter(
        (task.path, task.row_groups) for task in tasks if len(task.row_groups) == 1
    )
    grouped: list[ScanTask] = []
    for task in tasks:
        last = grouped[-1] if grouped else None
        if (
            last is not None
            and last.rows < rows
            and (max_decoded is None or last.decoded + task.decoded <= max_decoded)
            and last.path == task.path
            and last.row_groups
            and task.row_groups
            and last.row_groups[-1] + 1 == task.row_groups[0]
            and counts[(last.path, last.row_groups[-1:])] < 2
            and counts[(task.path, task.row_groups)] < 2
        ):
            grouped[-1] = ScanTask(
                last.path, last.row_groups + task.row_groups, last.offset, last.rows + task.rows,
                last.partition, last.nbytes + task.nbytes, last.decoded + task.decoded,
            )  # fmt: skip
        else:
            grouped.append(task)
    return grouped


def split_scan_tasks(tasks: Sequence[ScanTask], max_decoded: int) -> list[ScanTask]:
    """``tasks`` in order, each task of one row group that decodes to more than
    ``max_decoded`` bytes cut into tasks of consecutive rows of it that decode to at
    most ``max_decoded`` each (at least one row each).

    A scan under a memory budget reads a row group larger than its share of the
    budget this way: each task reads the row group's column chunks and decodes
    only its rows (Polars' scan sliced to them). Each keeps the row group's encoded
    bytes as its ``nbytes`` (it reads them all) and its share of the decoded bytes.

    Raises
    ------
    ValueError
        ``max_decoded`` is not an int >= 1.
    """
    if type(max_decoded) is not int or max_decoded < 1:
        raise ValueError(
            f"split_scan_tasks: `max_decoded` must be an int >= 1, got {max_decoded!r}"
        )
    out: list[ScanTask] = []
    for task in tasks:
        if len(task.row_groups) != 1 or task.decoded <= max_decoded or task.rows < 2:
            out.append(task)
            continue
        step = max(1, task.rows * max_decoded // task.decoded)  # rows that fit the bytes
        for start in range(0, task.rows, step):
            rows = min(step, task.rows - start)
            out.append(
                ScanTask(
                    task.path, task.row_groups, task.offset + start, rows, task.partition,
                    task.nbytes, task.decoded * rows // task.rows,
                )
            )  # fmt: skip
    return out


def decoded_bytes(column: Any, rows: int, kind: pa.DataType) -> int:
    """About the bytes a Parquet column chunk (``pyarrow.parquet.ColumnChunkMetaData``)
    of ``rows`` rows takes once decoded as Arrow type ``kind``, as the backend holds it.

    Fixed-width values take their width per row whatever their encoding; a string or
    binary value its bytes (the plain encoding's, less its 4-byte length) and a
    16-byte view (Polars' layout; Arrow's offsets take half); anything else (nested
    columns, one leaf at a time) its uncompressed encoded size. Values repeated
    through a dictionary decode to more than their encoding holds: a scan corrects
    the estimate by what it meets (see `read_parquet`).
    """
    if pa.types.is_boolean(kind):
        return rows // 8 + 1
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind) or pa.types.is_string_view(kind) \
            or pa.types.is_binary_view(kind):  # fmt: skip
        return 16 * rows + max(0, int(column.total_uncompressed_size) - 4 * rows)
    try:
        width = int(kind.bit_width)
    except ValueError:  # not of fixed width
        return int(column.total_uncompressed_size)
    return rows * max(1, width // 8)


def read_parquet_footers(paths: Sequence[FilePath]) -> ParquetFiles:
    """Every file's footer, checked to have the schema of the first: the same columns of the
    same types, in any order (as Polars reads them).

    The footers of objects of a store are read several at once (each is a
    request or two that waits on the store's latency).

    Raises
    ------
    FileReadError
        A file is not Parquet (or cannot be read); the message names it.
    SchemaError
        A file's schema differs from the first file's; the message names both and shows both.
    """
    schema: pa.Schema | None = None
    first: FilePath | None = None
    footers = []
    reordered = False
    read = in_flight(_footer, paths, remote=any(isinstance(p, StorePath) for p in paths))
    for path, (metadata, file_schema) in zip(paths, read, strict=True):
        if schema is None:
            schema, first = file_schema, path
        elif file_schema.equals(schema):
            pass
        elif _same_columns(file_schema, schema):
            reordered = True
        else:
            raise SchemaError(
                f"`{path}` does not have the schema of `{first}`:\n"
                f"  `{path}`: {describe_schema(file_schema)}\n"
                f"  `{first}`: {describe_schema(schema)}"
            )
        footers.append(metadata)
    if schema is None:
        raise FileNotFoundError("no files given")
    return ParquetFiles(tuple(paths), schema, tuple(footers), reordered)


def _same_columns(schema: pa.Schema, other: pa.Schema) -> bool:
    """Whether two schemas hold the same columns, of the same types, in another order."""
    if len(schema) != len(other) or sorted(schema.names) != sorted(other.names):
        return False
    if len(set(schema.names)) != len(schema.names):
        return False  # a name twice: no order by name
    return all(field.type.equals(other.field(field.name).type) for field in schema)


def file_version(path: str | os.PathLike[str]) -> tuple[str, int, int] | None:
    """``path`` with its modification time and size: the key under which what was read of
    a local file is kept, so that a file written again is read anew (None when it cannot
    be looked at: the reader reports why)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return os.fspath(path), stat.st_mtime_ns, stat.st_size


FOOTERS_KEPT = 32
"""How many local files' footers a process keeps (`_footer`)."""
_footers: OrderedDict[tuple[str, int, int], tuple[Any, pa.Schema]] = OrderedDict()
_footers_lock = threading.Lock()


def _footer(path: FilePath) -> tuple[Any, pa.Schema]:
    """The footer of ``path`` and its Arrow schema.

    A local file's is kept (the latest `FOOTERS_KEPT`) by its path, modification time
    and size: a network asks for a file's footer several times before it runs (its
    columns, its rows) and its scan once more, each a few milliseconds for a file of a
    few hundred row groups; a file written again is read anew."""
    import pyarrow.parquet as pq  # loaded on first use: importing the package stays light

    key = None if isinstance(path, StorePath) else file_version(path)
    if key is not None:
        with _footers_lock:
            found = _footers.get(key)
            if found is not None:
                _footers.move_to_end(key)
                return found
    try:
        if isinstance(path, StorePath):
            with path.filesystem.open_input_file(path.path) as file:
                metadata = pq.read_metadata(file)
        else:
            metadata = pq.read_metadata(path)
        read = metadata, metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        raise FileReadError(f"cannot read `{path}` as Parquet: {exc}") from exc
    if key is not None:
        with _footers_lock:
            _footers[key] = read
            while len(_footers) > FOOTERS_KEPT:
                _footers.popitem(last=False)
    return read


def plan_row_groups(
    files: ParquetFiles,
    predicate: pl.Expr | None,
    columns: Iterable[str] = (),
    partitions: HivePartitions | None = None,
    read_columns: Iterable[str] | None = None,
) -> list[RowGroup]:
    """Every row group of ``files``, in file and row order, those that statistics prune
    marked not to be read (``read=False``).

    ``columns`` are the columns ``predicate`` reads: their statistics are what
    `skip_predicate` tests. ``partitions`` gives each file's values of the
    partition columns of a hive-partitioned dataset (in the order of
    ``files.paths``): the statistics of every row group of the file.
    ``read_columns`` (all when None) are the columns a scan decodes: each row
    group's ``nbytes`` counts their encoded column chunks.
    """
    wanted = None if read_columns is None else set(read_columns)
    skip = None
    hive = partitions.schema if partitions is not None else pl.Schema()
    if predicate is not None:
        empty = frame_of_arrow(empty_table(files.schema))
        skip = skip_predicate(predicate, pl.Schema({**empty.schema, **hive}))
    names = sorted(set(columns) - set(hive))
    pieces: list[RowGroup] = []
    for file, (path, metadata) in enumerate(zip(files.paths, files.metadata, strict=True)):
        values = partitions.values[file] if partitions is not None else ()
        if metadata.num_row_groups == 0:
            pieces.append(RowGroup(file, path, None, 0, 0, read=False, partition=values))
            continue
        pruned = [False] * metadata.num_row_groups
        if skip is not None:
            statistics = row_group_statistics(metadata, files.schema, names)
            if partitions is not None:
                statistics = statistics.with_columns(
                    pl.lit(value, dtype).alias(name)
                    for name, value in _partition_stats(partitions, file, hive).items()
                    for dtype in [_stat_type(name, hive)]
                )
            pruned = _pruned(skip, statistics)
        # the column chunks read, and their types: the same in every row group of the file
        leaves = [metadata.schema.column(j).path for j in range(metadata.num_columns)]
        read = [
            (j, _leaf_type(files.schema, leaf))
            for j, leaf in enumerate(leaves)
            if wanted is None or leaf.split(".")[0] in wanted
        ]
        offset = 0
        for group in range(metadata.num_row_groups):
            meta = metadata.row_group(group)
            rows = meta.num_rows
            chunks = [(meta.column(j), kind) for j, kind in read]
            nbytes = sum(chunk.total_compressed_size for chunk, _ in chunks)
            decoded = sum(decoded_bytes(chunk, rows, kind) for chunk, kind in chunks)
            pieces.append(
                RowGroup(file, path, group, offset, rows, read=not pruned[group],
                         partition=values, nbytes=nbytes, decoded=decoded)
            )  # fmt: skip
            offset += rows
    return pieces


def _leaf_type(schema: pa.Schema, path: str) -> pa.DataType:
    """The Arrow type of the column chunk at ``path`` (``a`` or ``a.list.element``...): the
    field's own for a top-level column; a nested one's leaves count as encoded (null type)."""
    name, _, rest = path.partition(".")
    index = schema.get_field_index(name)
    if rest or index < 0:
        return pa.null()  # not of fixed width: its encoded size
    return schema.field(index).type


def _partition_stats(partitions: HivePartitions, file: int, hive: pl.Schema) -> dict[str, Any]:
    """The statistics of the partition columns in every row group of file ``file``; the null
    count is the row group's rows when the value is null (``len``, set per row group)."""
    stats = partitions.skip_statistics(file, 0)
    for name, value in zip(partitions.names, partitions.values[file], strict=True):
        stats[f"{name}_nc"] = None if value is None else 0
    return stats


def _stat_type(stat: str, hive: pl.Schema) -> pl.DataType:
    """The type of the statistic column ``stat`` (``<column>_min`` ...) of a partition column."""
    column, _, kind = stat.rpartition("_")
    return pl.Int64() if kind == "nc" else hive[column]


def prune_partitions(
    partitions: HivePartitions, predicate: pl.Expr, others: pl.Schema | None = None
) -> list[bool] | None:
    """Per file, whether ``predicate`` is false for every row of it by its partition values
    alone.

    A row-wise predicate over partition columns only is evaluated on each file's
    values, as Polars evaluates it (a null result drops the rows too): any expression
    prunes, a float comparison included. Any other is Polars' test of statistics, as
    for row groups (what it knows of other columns is nothing): ``others`` gives the
    types of the files' own columns; without them, a predicate that reads one of them
    cannot be tested (None).
    """
    verdict = _evaluated(partitions, predicate)
    if verdict is not None:
        return verdict
    schema = pl.Schema({**(others or {}), **partitions.schema})
    skip = skip_predicate(predicate, schema)
    if skip is None:
        return None
    rows = [partitions.skip_statistics(file, 1) | {"len": 1} for file in range(len(partitions.values))]
    types: dict[str, pl.DataType] = {"len": pl.Int64()}
    for name, dtype in schema.items():
        types |= {f"{name}_min": dtype, f"{name}_max": dtype, f"{name}_nc": pl.Int64()}
    return _pruned(skip, pl.DataFrame(rows, schema=types, orient="row"))


def _evaluated(partitions: HivePartitions, predicate: pl.Expr) -> list[bool] | None:
    """Per file, whether ``predicate`` is not true of its partition values; None unless
    it is row-wise and reads partition columns only (or it does not evaluate on them)."""
    from streamnet.plans._row_wise import not_row_wise  # plans import io: loaded on use

    try:
        names = set(predicate.meta.root_names())
        if not names <= set(partitions.names) or not_row_wise(predicate) is not None:
            return None
        kept = partitions.frame().select(predicate.alias("kept")).to_series()
    except Exception:  # a predicate these values cannot answer: the statistics' test, if any
        return None
    if kept.dtype != pl.Boolean or kept.len() != len(partitions.values):
        return None
    return [value is not True for value in kept.to_list()]


def skip_predicate(predicate: pl.Expr, schema: pl.Schema) -> pl.Expr | None:
    """Polars' own test of whether a batch of rows can be skipped by its statistics, or None.

    It is the test Polars' Parquet reader prunes row groups with, so pruning
    follows Polars' semantics: NaN sorts above every number and equals itself,
    and Parquet's min/max (which leave NaN out) never prune a row group where
    NaN could match. The expression reads, per batch, ``len`` (rows) and for each
    column ``c`` ``c_min``, ``c_max`` and ``c_nc`` (null count), null where
    unknown; true means no row can match. None when Polars has no such test.
    """
    try:
        return predicate._skip_batch_predicate(dict(schema))  # Polars' own (see pyproject)
    except Exception:  # any failure (unsupported expression) only means no pruning
        return None


def row_group_statistics(metadata: Any, schema: pa.Schema, columns: Iterable[str]) -> pl.DataFrame:
    """The statistics of each row group of a file's footer (``pyarrow.parquet.FileMetaData``)
    in the columns :func:`skip_predicate` reads.

    A value the file does not record (no statistics, a nested column, a type
    the statistics do not convert to) is null, which never prunes. So is every
    value of a dictionary column (Polars' Categorical and Enum): its statistics
    order the strings as text, and an Enum's values compare in its categories' order.
    """
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    leaves = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    counts = pl.Series("len", [g.num_rows for g in groups], dtype=pl.Int64)
    data: list[pl.Series] = [counts]
    for name in columns:
        kind = schema.field(name).type
        leaf = leaves.get(name)
        stats = [g.column(leaf).statistics if leaf is not None else None for g in groups]
        ordered = not pa.types.is_dictionary(kind)
        bounds = [s if s is not None and s.has_min_max and ordered else None for s in stats]
        data.append(_statistic(f"{name}_min", [s.min if s else None for s in bounds], kind))
        data.append(_statistic(f"{name}_max", [s.max if s else None for s in bounds], kind))
        nulls = [s.null_count if s is not None and s.has_null_count else None for s in stats]
        data.append(pl.Series(f"{name}_nc", nulls, dtype=pl.Int64))
    return pl.DataFrame(data)


def _statistic(name: str, values: list[Any], kind: pa.DataType) -> pl.Series:
    """``values`` (a column's statistics, as pyarrow gives them) as the Polars column the
    Arrow type ``kind`` reads as, or nulls when they do not convert.

    Integers, floats, booleans, dates and strings are made by Polars, of the very type
    the column is read as: pyarrow's own conversion of Python values (``pa.array``)
    imports pandas where it is installed (a fifth of a second at a process's first
    scan), and casting loads its compute module. Other types take that conversion."""
    simple = _simple_types().get(kind)
    if simple is not None:
        try:
            return pl.Series(name, values, dtype=simple, strict=True)
        except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
            return pl.Series(name, [None] * len(values), dtype=simple)
    try:
        array = pa.array(values, type=kind)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        array = pa.nulls(len(values), kind)
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.alias(name)


@functools.cache
def _simple_types() -> dict[pa.DataType, pl.DataType]:
    """Arrow type -> the Polars type it reads as, for the types `_statistic` makes with
    Polars (made on first use: pyarrow loads then)."""
    return {
        pa.int8(): pl.Int8(), pa.int16(): pl.Int16(), pa.int32(): pl.Int32(),
        pa.int64(): pl.Int64(), pa.uint8(): pl.UInt8(), pa.uint16(): pl.UInt16(),
        pa.uint32(): pl.UInt32(), pa.uint64(): pl.UInt64(), pa.float32(): pl.Float32(),
        pa.float64(): pl.Float64(), pa.bool_(): pl.Boolean(), pa.date32(): pl.Date(),
        pa.string(): pl.String(), pa.large_string(): pl.String(),
    }  # fmt: skip


def _pruned(skip: pl.Expr, statistics: pl.DataFrame) -> list[bool]:
    """Per row group, whether ``skip`` proves that none of its rows match."""
    try:
        verdict = statistics.with_columns(skip.fill_null(False).alias("skip"))["skip"]
        return [v is True for v in verdict.to_list()]
    except Exception:  # statistics Polars cannot compare: read every row group
        return [False] * statistics.height
