"""The CPU backend's hash partitioning: Polars' seeded hash of the keys, modulo the partitions.

Polars' hash of a value depends on Polars' version (it differs between 1.44 and
2.x), which is why the backend's fingerprint names that version.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from streamnet._errors import ColumnNotFoundError, SchemaError
from streamnet._schema import unused_name
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends.cpu._table import cpu_table

__all__ = ["SEED", "CpuPartitioning", "canonical_keys", "partition_frame"]

SEED = 0x5EED
"""The seed of the hash (``seed=0``): the same on every rank. Seed ``s`` hashes with ``SEED + s``."""


FILTERED_PARTITIONS = 4
"""Up to this many partitions, each is the frame filtered by its id: a filter per partition
is cheaper than Polars' ``partition_by`` for a few of them (a 64 MiB chunk of 8 columns in
2 partitions: 17 ms against 33 ms; 31 against 36 ms in 4; in 16, 79 against 53 ms)."""


def canonical_keys(df: pl.DataFrame, keys: Sequence[str]) -> list[pl.Expr]:
    """Key expressions cast so that equal values hash alike whatever their type on either
    side of a join: every integer as Int64 (a UInt64 beyond it by its bits, which only
    shares a partition with the negative number of the same bits), every float as
    Float64, a Categorical or Enum as its strings. Signed and unsigned integers must meet
    in one type: Polars hashes an Int64 1 and a UInt64 1 alike, but not within a struct,
    which is how several keys hash."""
    exprs = []
    for key in keys:
        dtype = df.schema[key]
        expr = pl.col(key)
        if dtype == pl.UInt64:
            expr = expr.reinterpret(signed=True)
        elif dtype.is_integer():
            expr = expr.cast(pl.Int64)
        elif dtype.is_float():
            expr = expr.cast(pl.Float64)
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            expr = expr.cast(pl.String)
        exprs.append(expr)
    return exprs


def partition_frame(
    df: pl.DataFrame, keys: Sequence[str], partitions: int, *, seed: int = 0
) -> dict[int, pl.DataFrame]:
    """Rows of ``df`` by partition: a seeded hash of the key columns modulo ``partitions``.

    Rows with equal keys land in the same partition on every rank; null keys too.
    Empty partitions are left out. Each ``seed`` gives a hash of its own.
    """
    if partitions == 1 or df.height == 0:
        return {0: df} if df.height else {}
    columns = canonical_keys(df, keys)
    # One key hashes directly: four times cheaper than hashing a struct of one field. The
    # fields are named by position: a key may repeat (a join on [a, b] against [c, c]).
    hashed = (
        columns[0].hash(SEED + seed)
        if len(columns) == 1
        else pl.struct([c.alias(f"__key{i}") for i, c in enumerate(columns)]).hash(SEED + seed)
    )
    name = unused_name("__partition", df.columns)
    ids = df.select((hashed % partitions).alias(name)).to_series()
    if partitions <= FILTERED_PARTITIONS:
        pieces = {p: df.filter(ids == p) for p in range(partitions)}
        return {p: piece for p, piece in pieces.items() if piece.height}
    by_id = df.with_columns(ids).partition_by(name, as_dict=True, include_key=False)
    return {int(key[0]): piece for key, piece in by_id.items()}


class CpuPartitioning(Backend):
    """Hash partitioning with Polars."""

    def split_by_values(
        self, chunk: TableChunk, columns: Sequence[str]
    ) -> list[tuple[tuple[object, ...], TableChunk]]:
        return _split_by_values(self, self._own(chunk, "split_by_values"), columns)

    def hash_partition(
        self, chunk: TableChunk, keys: Sequence[str], partitions: int, *, seed: int = 0
    ) -> dict[int, TableChunk]:
        chunk = self._own(chunk, "hash_partition")
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ValueError("hash_partition: `keys` must name at least one column; got []")
        if type(partitions) is not int or partitions < 1:
            raise ValueError(
                f"hash_partition: `partitions` must be an int >= 1, got {partitions!r}"
            )
        if type(seed) is not int or not 0 <= seed < 2**32:
            raise ValueError(f"hash_partition: `seed` must be an int in [0, 2**32), got {seed!r}")
        names = chunk.column_names
        missing = [key for key in keys if key not in names]
        if missing:
            listed = ", ".join(f"`{key}`" for key in missing)
            raise ColumnNotFoundError(
                f"hash_partition: key column {listed} not found; columns are {names}; "
                f"got keys {keys}"
            )
        if partitions == 1 or chunk.num_rows == 0:
            return {0: chunk} if chunk.num_rows else {}
        schema = chunk.schema
        distinct = cpu_table(chunk, self).distinct_by  # each piece keeps its rows apart
        pieces = partition_frame(chunk.to_polars(), keys, partitions, seed=seed)
        out = {p: self.from_polars(piece, schema=schema) for p, piece in pieces.items()}
        for piece in out.values():
            cpu_table(piece, self).distinct_by = distinct
        return out


def _split_by_values(
    backend: Backend, chunk: TableChunk, columns: Sequence[str]
) -> list[tuple[tuple[object, ...], TableChunk]]:
    names = list(columns)
    if not names or isinstance(columns, str):
        raise ValueError(f"split_by_values: `columns` must name one or more columns, got {columns!r}")
    have = chunk.schema.names
    missing = [name for name in names if name not in have]
    if missing:
        raise ColumnNotFoundError(
            f"split_by_values: column `{missing[0]}` not found; columns are {have}"
        )
    if len(set(names)) == len(have):
        raise ValueError(
            f"split_by_values: the columns {names} are every column, so no column would be "
            f"left to write; got columns {have}"
        )
    frame = backend.to_polars(chunk)
    nested = [name for name in names if frame.schema[name].is_nested()]
    if nested:
        raise SchemaError(
            f"split_by_values: column `{nested[0]}` holds {frame.schema[nested[0]]} values, "
            "which cannot name a partition (a folder `key=value`); partition by columns of "
            f"simple types, got {names}"
        )
    binary = [name for name in names if frame.schema[name] == pl.Binary]
    if binary:
        raise SchemaError(
            f"split_by_values: column `{binary[0]}` holds Binary values, which have no text to "
            f"name a partition (a folder `key=value`) by; cast it to String first, got {names}"
        )
    pieces = frame.partition_by(names, maintain_order=True, include_key=False, as_dict=True)
    # a Float32 key as its own shortest text (0.1, not the 0.10000000149011612 of a float)
    narrow = [i for i, name in enumerate(names) if frame.schema[name] == pl.Float32]
    return [
        (_float32s(key, narrow) if narrow else tuple(key), backend.from_polars(rows))
        for key, rows in pieces.items()
    ]


def _float32s(key: tuple[object, ...], at: Sequence[int]) -> tuple[object, ...]:
    """``key`` with its Float32 values (at ``at``) as the floats of their shortest text."""
    import numpy as np

    return tuple(
        float(str(np.float32(v))) if i in at and v is not None else v  # type: ignore[arg-type]
        for i, v in enumerate(key)
    )
