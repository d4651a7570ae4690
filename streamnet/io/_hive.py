"""Hive-partitioned datasets: ``key=value/`` folders, read as typed columns and pruned by them.

A dataset written with ``partition_by`` (by streamnet, Spark, Polars, pyarrow)
keeps the values of its partition columns in folder names,
``<root>/year=2024/country=FR/part-0.parquet``. Reading it yields those
columns after the files' own, typed as Polars types them (Polars itself is asked
for a local dataset; for a store's, integers, then floats, then dates, else
strings; ``__HIVE_DEFAULT_PARTITION__`` is null), and
a predicate on them prunes whole folders before any of their files is opened.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import polars as pl

from streamnet._errors import SchemaError
from streamnet.io._stores import FilePath, StorePath

__all__ = ["NULL_PARTITION", "HivePartitions", "hive_folder", "hive_partitions"]

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The folder value of a null partition key, as Hive, Spark and Polars write it."""


@dataclass(frozen=True, slots=True)
class HivePartitions:
    """The partition columns of a dataset and each file's values of them.

    Attributes
    ----------
    names
        The partition columns, outermost folder first.
    types
        Their Polars types, in the order of ``names``.
    values
        Per file (in the order of the paths they were read from), its values.
    """

    names: tuple[str, ...]
    types: tuple[pl.DataType, ...]
    values: tuple[tuple[Any, ...], ...]

    @property
    def schema(self) -> pl.Schema:
        """The partition columns as a Polars schema."""
        return pl.Schema(dict(zip(self.names, self.types, strict=True)))

    def frame(self, files: Sequence[int] | None = None) -> pl.DataFrame:
        """One row per file (those of ``files``, or all), its values of the partition columns."""
        rows = self.values if files is None else [self.values[i] for i in files]
        return pl.DataFrame(
            [list(column) for column in zip(*rows, strict=True)] if rows else None,
            schema=self.schema,
            orient="col",
        )

    def skip_statistics(self, file: int, rows: int) -> dict[str, Any]:
        """The statistics of the partition columns in a batch of ``rows`` rows of file
        number ``file``, as `skip_predicate` reads them: every row has the folder's value."""
        stats: dict[str, Any] = {}
        for name, value in zip(self.names, self.values[file], strict=True):
            stats[f"{name}_min"] = value
            stats[f"{name}_max"] = value
            stats[f"{name}_nc"] = rows if value is None else 0
        return stats


def _relative_parts(root: FilePath, path: FilePath) -> list[str]:
    """The folders between ``root`` and the file ``path``."""
    if isinstance(path, StorePath) and isinstance(root, StorePath):
        inside = path.path[len(root.path.rstrip("/")) + 1 :]
        return inside.split("/")[:-1]
    assert isinstance(path, Path)
    assert isinstance(root, Path)
    return list(path.relative_to(root).parts[:-1])


def hive_partitions(root: FilePath, paths: Sequence[FilePath]) -> HivePartitions | None:
    """The partitions that the ``key=value`` folders between ``root`` and each of ``paths``
    give, or None when there are none.

    Raises
    ------
    SchemaError
        The files are not all under the same keys, in the same order; the message names
        a file of each.
    """
    names: tuple[str, ...] | None = None
    first: FilePath | None = None
    texts: list[list[str | None]] = []
    for path in paths:
        pairs = [part.split("=", 1) for part in _relative_parts(root, path) if "=" in part]
        keys = tuple(unquote(key) for key, _ in pairs)
        if names is None:
            names, first = keys, path
        elif keys != names:
            raise SchemaError(
                f"the files of a hive-partitioned dataset must all be under the same "
                f"`key=value` folders: `{path}` is under {list(keys)}, `{first}` under "
                f"{list(names)}"
            )
        texts.append([None if value == NULL_PARTITION else unquote(value) for _, value in pairs])
    if not names:
        return None
    columns = list(zip(*texts, strict=True))
    polars_types = _polars_types(root, names)
    types, parsed = [], []
    for i, column in enumerate(columns):
        found = None if polars_types is None else _parsed(column, polars_types[i])
        if polars_types is not None and found is not None:
            kind, values = polars_types[i], found
        else:
            kind, values = _typed(column)
        types.append(kind)
        parsed.append(values)
    rows = tuple(zip(*parsed, strict=True)) if parsed else ()
    return HivePartitions(names, tuple(types), rows)


def _polars_types(root: FilePath, names: Sequence[str]) -> list[pl.DataType] | None:
    """The types Polars gives the partition columns ``names`` of the local dataset ``root``
    (its own inference: Int64, or Int128 beyond it, Float64, Boolean, Date, Datetime, else
    String; an empty value is null), or None when Polars cannot tell (a store's dataset)."""
    if not isinstance(root, Path):
        return None
    try:
        schema = pl.scan_parquet(root, hive_partitioning=True).collect_schema()
        return [schema[name] for name in names]
    except Exception:  # whatever Polars cannot scan, the reader reports with its own words
        return None


def _parsed(texts: Sequence[str | None], dtype: pl.DataType) -> list[Any] | None:
    """The folder values ``texts`` as values of ``dtype``, as Polars reads them; None if one
    does not parse."""
    strings = pl.Series(texts, dtype=pl.String)
    try:
        if dtype == pl.String:
            return list(texts)
        if dtype == pl.Boolean:
            lowered = strings.str.to_lowercase()
            if not lowered.drop_nulls().is_in(["true", "false"]).all():
                return None
            return (lowered == "true").to_list()
        if dtype == pl.Date:
            values = strings.str.to_date(strict=True)
        elif isinstance(dtype, pl.Datetime):
            values = strings.str.to_datetime(
                time_unit=dtype.time_unit, time_zone=dtype.time_zone, strict=True
            )
        else:
            values = strings.replace("", None).cast(dtype, strict=True)
    except pl.exceptions.PolarsError:
        return None
    return values.to_list()


def _typed(texts: Sequence[str | None]) -> tuple[pl.DataType, list[Any]]:
    """The type of a partition column whose folder values are ``texts``, and its values:
    Int64 if every value is an integer, else Float64 if a number, else Date if a date
    (``YYYY-MM-DD``), else String, as Polars infers them."""
    present = [t for t in texts if t is not None]
    for kind, parse in ((pl.Int64(), int), (pl.Float64(), float), (pl.Date(), _date)):
        try:
            values = [None if t is None else parse(t) for t in texts]
        except ValueError:
            continue
        if present or kind == pl.String():
            return kind, values
    return pl.String(), list(texts)


def _date(text: str) -> dt.date:
    if len(text) != 10:
        raise ValueError(text)
    return dt.date.fromisoformat(text)


def hive_folder(names: Sequence[str], values: Sequence[Any]) -> str:
    """The folders ``key=value/...`` of one partition (values percent-encoded where a
    character would not survive as a folder name; null as `NULL_PARTITION`).

    Raises
    ------
    ValueError
        A value is the text `NULL_PARTITION` itself, which every reader (Polars, Spark,
        streamnet) takes for null, encoded or not: it would come back as null, and share
        the folder of the null values.
    """
    return "/".join(
        f"{quote(name, safe=' ')}={_folder_value(name, value)}"
        for name, value in zip(names, values, strict=True)
    )


def _folder_value(name: str, value: Any) -> str:
    if value is None:
        return NULL_PARTITION
    if value == NULL_PARTITION:
        raise ValueError(
            f"partition column `{name}` holds the text {NULL_PARTITION!r}, the folder name of "
            "its null values: it would be read back as null; replace it before writing"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"  # as Polars writes it, and reads it back as a float
    return quote(str(value), safe=" ,;:+@")
