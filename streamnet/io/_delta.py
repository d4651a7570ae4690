"""Delta Lake tables: the files of a version planned from the log, and one commit of new files.

Host code on the table's log (through the ``deltalake`` package, installed with
the ``delta`` extra) and on Parquet footers; the files themselves are read and
written as any Parquet files are. A table's files are pruned before any is
opened by their partition values and by the statistics the log keeps for each
file (Polars' own test, as for row groups), so a filter on a sorted or
partitioned column reads only the files that can match.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import polars as pl

from channels.lowlevel import import_lazily
from streamnet._errors import FileReadError
from streamnet._schema import empty_table, frame_of_arrow
from streamnet.io._hive import NULL_PARTITION, HivePartitions
from streamnet.io._parquet_meta import _pruned, row_group_statistics, skip_predicate
from streamnet.io._stores import FilePath, StorePath, file_size, resolve_path

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
else:  # loaded on first use: importing the package stays light
    pa = import_lazily("pyarrow")
    pq = import_lazily("pyarrow.parquet")

__all__ = [
    "DeltaFiles",
    "check_delta_target",
    "commit_delta",
    "delta_add_action",
    "delta_schema",
    "delta_storage_options",
    "plan_delta",
]

_S3_KEYS = {
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
    "region": "AWS_REGION",
}
"""pyarrow's S3FileSystem arguments, and the deltalake (object_store) option of each."""


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError:
        raise ImportError(
            "Delta Lake tables need the `deltalake` package: pip install 'streamnet[delta]'"
        ) from None
    return deltalake


def delta_storage_options(
    uri: str, storage_options: Mapping[str, Any] | None
) -> dict[str, str] | None:
    """The options ``deltalake`` takes for ``uri``, from the ``storage_options`` that
    streamnet's sources take (pyarrow's filesystem arguments): pyarrow's S3 names become
    the object store's (``endpoint_override`` -> ``AWS_ENDPOINT_URL``...); other keys,
    already in deltalake's form, are passed as they are."""
    if not storage_options:
        return None
    options: dict[str, str] = {}
    s3 = uri.lower().startswith(("s3://", "s3a://"))
    for key, value in storage_options.items():
        if s3 and key in _S3_KEYS:
            options[_S3_KEYS[key]] = str(value)
        elif s3 and key == "endpoint_override":
            scheme = storage_options.get("scheme", "https")
            text = str(value)
            options["AWS_ENDPOINT_URL"] = text if "://" in text else f"{scheme}://{text}"
        elif s3 and key == "scheme":
            if value == "http":
                options["AWS_ALLOW_HTTP"] = "true"
        else:
            options[str(key)] = str(value)
    if s3:
        # A single writer commits (rank 0): the store's put-if-absent is not needed.
        options.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    return options


@dataclass(frozen=True, slots=True)
class DeltaFiles:
    """The files of one version of a Delta table that a scan reads.

    Attributes
    ----------
    version
        The version read.
    schema
        The table's schema (the partition columns in their place).
    paths
        The data files left after pruning, in the log's order.
    partitions
        Their values of the partition columns (None when the table has none).
    files_total
        Files in the version before pruning.
    """

    version: int
    schema: pa.Schema
    paths: tuple[FilePath, ...]
    partitions: HivePartitions | None
    files_total: int


def _table(uri: str, version: int | None, options: dict[str, str] | None) -> Any:
    deltalake = _deltalake()
    try:
        return deltalake.DeltaTable(uri, version=version, storage_options=options)
    except Exception as exc:  # deltalake's errors have no common base but Exception
        raise FileReadError(f"cannot read the Delta table `{uri}`: {exc}") from exc


def plan_delta(
    uri: str,
    *,
    version: int | None = None,
    timestamp: dt.datetime | str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    predicate: pl.Expr | None = None,
    pushed: Sequence[pl.Expr] = (),
) -> DeltaFiles:
    """The files of the version of the table ``uri`` (the latest, ``version``, or the one
    current at ``timestamp``), those whose partition values or log statistics prove
    ``predicate`` false for all their rows left out.

    ``pushed``: predicates the actors downstream apply anyway, each pruning files the
    same way on its own (those over columns the table lacks are left to those actors).

    Raises
    ------
    FileReadError
        ``uri`` is no Delta table (or the store refuses), or there is no such version;
        the message names the table.
    """
    options = delta_storage_options(uri, storage_options)
    table = _table(uri, version, options)
    if timestamp is not None:
        try:
            table.load_as_version(timestamp)
        except Exception as exc:
            raise FileReadError(
                f"cannot read the Delta table `{uri}` as of {timestamp}: {exc}"
            ) from exc
    schema = pa.schema(table.schema().to_arrow())
    empty = frame_of_arrow(empty_table(schema))
    types = empty.schema
    names = list(table.metadata().partition_columns)
    actions = pl.from_arrow(pa.table(table.get_add_actions(flatten=True)))
    assert isinstance(actions, pl.DataFrame)
    root = uri.rstrip("/")
    paths: list[FilePath] = [
        resolve_path(f"{root}/{unquote(p)}", storage_options=storage_options)
        for p in actions["path"].to_list()
    ]
    values: list[tuple[Any, ...]] = []
    if names:
        typed = actions.select(_partition_column(actions, n, types[n]).alias(n) for n in names)
        values = [tuple(row) for row in typed.iter_rows()]
    tests = [predicate] if predicate is not None else []
    tests += [expr for expr in pushed if set(expr.meta.root_names()) <= set(types)]
    pruned = [False] * len(paths)
    for test in tests if paths else ():
        verdict = _pruned_files(actions, test, types, names)
        pruned = [a or b for a, b in zip(pruned, verdict, strict=True)]
    keep = [i for i, gone in enumerate(pruned) if not gone]
    partitions = None
    if names:
        partitions = HivePartitions(
            tuple(names), tuple(types[n] for n in names), tuple(values[i] for i in keep)
        )
    return DeltaFiles(
        int(table.version()), schema, tuple(paths[i] for i in keep), partitions, len(paths)
    )


def _pruned_files(
    actions: pl.DataFrame, predicate: pl.Expr, types: pl.Schema, partition_names: list[str]
) -> list[bool]:
    """Per file, whether its partition values and the statistics of the log prove that
    ``predicate`` holds for none of its rows."""
    skip = skip_predicate(predicate, types)
    if skip is None:
        return [False] * actions.height
    columns = [pl.col("num_records").cast(pl.Int64).alias("len")]
    for name, dtype in types.items():
        if name in partition_names:
            value = _partition_column(actions, name, dtype)
            nulls = pl.when(value.is_null()).then(pl.col("num_records")).otherwise(0)
            columns += [value.alias(f"{name}_min"), value.alias(f"{name}_max"),
                        nulls.cast(pl.Int64).alias(f"{name}_nc")]  # fmt: skip
            continue
        for stat, kind in (("min", dtype), ("max", dtype), ("null_count", pl.Int64())):
            source = f"{stat}.{name}"
            target = f"{name}_{'nc' if stat == 'null_count' else stat}"
            if source in actions.columns:
                columns.append(pl.col(source).cast(kind, strict=False).alias(target))
            else:
                columns.append(pl.lit(None, kind).alias(target))
    try:
        statistics = actions.select(columns)
    except pl.exceptions.PolarsError:  # statistics of a type that does not convert
        return [False] * actions.height
    return _pruned(skip, statistics)


def _partition_column(actions: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """The partition values of column ``name`` in the log's ``actions``, as ``dtype``: the
    log gives them typed (deltalake 1.x) or as text."""
    column = pl.col(f"partition.{name}")
    if actions.schema[f"partition.{name}"] != pl.String:
        return column.cast(dtype, strict=False)
    return _typed_partition(column.replace(NULL_PARTITION, None), dtype)


def _typed_partition(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A partition value of the log (text) as a value of ``dtype``; null where it does not
    parse. Delta writes a timestamp as ``2024-01-02 12:30:00[.123456]`` in UTC (or in ISO
    form, with a ``T`` and a ``Z``), a boolean as ``true``/``false``: Polars casts text to
    neither, nor to a date."""
    if dtype == pl.Boolean:
        lowered = text.str.to_lowercase()
        return pl.when(lowered == "true").then(True).when(lowered == "false").then(False)
    if dtype == pl.Date:
        return text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    if isinstance(dtype, pl.Datetime):
        plain = text.str.replace("T", " ", literal=True).str.strip_suffix("Z")
        unit = dtype.time_unit or "us"
        value = pl.coalesce(
            plain.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit=unit, strict=False),
            plain.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit=unit, strict=False),
        )
        if dtype.time_zone is not None:
            value = value.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return value
    return text.cast(dtype, strict=False)


def _delta_partition_values(
    values: Mapping[str, str | None], schema: pa.Schema
) -> dict[str, str | None]:
    """The partition values of a file (the text of its ``key=value`` folders) as Delta writes
    them: a timestamp as ``YYYY-MM-DD HH:MM:SS.ffffff``, in UTC when it has a time zone.
    The folder holds ISO text (``2024-01-02T12:30:00``), which Delta readers refuse: a
    table committed with it could not be read, not even its versions before."""
    typed: dict[str, str | None] = {}
    for name, value in values.items():
        field = schema.field(name) if name in schema.names else None
        if value is not None and field is not None and pa.types.is_timestamp(field.type):
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            value = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        typed[name] = value
    return typed


def delta_add_action(path: FilePath, relative: str) -> dict[str, Any]:
    """What the log records of a new data file at ``path`` (``relative`` to the table's
    root, under its ``key=value`` folders): size, partition values, and the statistics
    readers prune by (rows; per column of a simple type, null count, and min and max of
    integers, strings and dates), from its footer."""
    if isinstance(path, StorePath):
        with path.filesystem.open_input_file(path.path) as file:
            metadata = pq.read_metadata(file)
    else:
        metadata = pq.read_metadata(path)
    schema = metadata.schema.to_arrow_schema()
    simple = [f.name for f in schema if not pa.types.is_nested(f.type)]
    stats = row_group_statistics(metadata, schema, simple)
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in schema:
        name = field.name
        if name not in simple:
            continue
        counts = stats[f"{name}_nc"]
        if counts.null_count() == 0:
            nulls[name] = int(counts.sum())
        exact = (pa.types.is_integer(field.type) or pa.types.is_string(field.type)
                 or pa.types.is_large_string(field.type) or pa.types.is_string_view(field.type)
                 or pa.types.is_date(field.type))  # fmt: skip
        low, high = stats[f"{name}_min"], stats[f"{name}_max"]
        if exact and stats.height and low.null_count() == 0 and high.null_count() == 0:
            lows[name], highs[name] = _json_value(low.min()), _json_value(high.max())
    partition = {}
    for part in relative.split("/")[:-1]:
        key, _, value = part.partition("=")
        partition[unquote(key)] = None if value == NULL_PARTITION else unquote(value)
    return {
        "path": relative,
        "size": file_size(path),
        "partition_values": partition,
        "modification_time": int(time.time() * 1000),
        "stats": json.dumps(
            {
                "numRecords": metadata.num_rows,
                "minValues": lows,
                "maxValues": highs,
                "nullCount": nulls,
            }
        ),
    }


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the types a Delta table stores, as Polars' ``write_delta`` writes
    them: timestamps in microseconds (readers refuse nanoseconds unless the table asks
    for a feature Polars does not read), those with a time zone in UTC (the same
    instants: Delta has no other zone), in nested types too."""
    def stored(kind: pa.DataType) -> pa.DataType:
        if pa.types.is_timestamp(kind):
            return pa.timestamp("us", "UTC" if kind.tz is not None else None)
        if pa.types.is_struct(kind):
            return pa.struct([field.with_type(stored(field.type)) for field in kind])
        if pa.types.is_large_list(kind):
            return pa.large_list(kind.value_field.with_type(stored(kind.value_type)))
        if pa.types.is_list(kind):
            return pa.list_(kind.value_field.with_type(stored(kind.value_type)))
        if pa.types.is_fixed_size_list(kind):
            return pa.list_(kind.value_field.with_type(stored(kind.value_type)), kind.list_size)
        if pa.types.is_map(kind):
            return pa.map_(
                kind.key_field.with_type(stored(kind.key_type)),
                kind.item_field.with_type(stored(kind.item_type)),
            )
        return kind

    return pa.schema(
        [field.with_type(stored(field.type)) for field in schema], metadata=schema.metadata
    )


def check_delta_target(
    uri: str,
    mode: Literal["append", "overwrite", "error"],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the Delta table ``uri`` exists; a write with ``mode="error"`` checks it
    before it writes a file, and `commit_delta` again when it commits.

    Raises
    ------
    FileExistsError
        ``mode="error"`` and the table exists.
    """
    deltalake = _deltalake()
    options = delta_storage_options(uri, storage_options)
    exists = bool(deltalake.DeltaTable.is_deltatable(uri, storage_options=options))
    if exists and mode == "error":
        raise FileExistsError(
            f"the Delta table `{uri}` already exists; pass mode='append' or mode='overwrite', "
            "got mode='error'"
        )
    return exists


def commit_delta(
    uri: str,
    actions: Sequence[Mapping[str, Any]],
    *,
    mode: Literal["append", "overwrite", "error"],
    schema: pa.Schema,
    partition_by: Sequence[str],
    storage_options: Mapping[str, Any] | None,
) -> None:
    """Commit the files of ``actions`` (as `delta_add_action` gives them) to the table
    ``uri`` in one transaction: a new version that adds them (``append``), or that
    replaces every file (``overwrite``); a new table is created with them.

    Raises
    ------
    FileExistsError
        ``mode="error"`` and the table exists.
    """
    deltalake = _deltalake()
    from deltalake.transaction import AddAction, create_table_with_add_actions

    options = delta_storage_options(uri, storage_options)
    adds = [
        AddAction(data_change=True, **{
            **action, "partition_values": _delta_partition_values(action["partition_values"], schema),
        })
        for action in actions
    ]  # fmt: skip
    exists = check_delta_target(uri, mode, storage_options=storage_options)
    if exists:
        table = deltalake.DeltaTable(uri, storage_options=options)
        table.create_write_transaction(
            adds, mode, schema, list(partition_by) or None
        )
    else:
        create_table_with_add_actions(
            uri, deltalake.Schema.from_arrow(schema), adds, mode="error",
            partition_by=list(partition_by) or None, storage_options=options,
        )  # fmt: skip
