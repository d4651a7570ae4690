"""The CPU backend's tables: the host boundary, metadata, slice and concat.

A CPU chunk holds an Arrow table or a Polars frame (`TableChunk`, which
converts between the two only when asked); these methods hand chunks to and
from the host and cut and join them without converting data where they can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from streamnet._errors import ColumnNotFoundError, SchemaError
from streamnet._schema import (
    SchemaInfo,
    describe_schema,
    info_of_arrow,
    info_of_frame,
    info_of_schema,
    schema_differences,
)
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend, is_pandas_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CpuTables"]


class CpuTables(Backend):
    """Host boundary, metadata, slice and concat of Arrow tables and Polars frames."""

    # ------------------------------------------------------------------ host boundary
    def from_arrow(self, data: pa.Table | pa.RecordBatch) -> TableChunk:
        if not isinstance(data, pa.Table | pa.RecordBatch):
            raise TypeError(
                f"from_arrow takes a pyarrow.Table or pyarrow.RecordBatch, got {_kind(data)}"
            )
        return TableChunk.from_arrow(data)

    def from_polars(self, df: pl.DataFrame, *, schema: pa.Schema | None = None) -> TableChunk:
        return TableChunk.from_polars(df, schema=schema)

    def from_pandas(self, df: pd.DataFrame, *, preserve_index: bool = False) -> TableChunk:
        if not is_pandas_frame(df):
            raise TypeError(f"from_pandas takes a pandas.DataFrame, got {_kind(df)}")
        return TableChunk.from_pandas(df, preserve_index=preserve_index)

    def to_arrow(self, chunk: TableChunk) -> pa.Table:
        return self._own(chunk, "to_arrow").to_arrow()

    def to_polars(self, chunk: TableChunk, *, convert: Iterable[str] = ()) -> pl.DataFrame:
        return self._own(chunk, "to_polars").to_polars(convert=convert)

    def to_pandas(self, chunk: TableChunk) -> pd.DataFrame:
        return self._own(chunk, "to_pandas").to_pandas()

    def empty(self, schema: pa.Schema) -> TableChunk:
        if not isinstance(schema, pa.Schema):
            raise TypeError(f"empty takes a pyarrow.Schema, got {_kind(schema)}")
        return TableChunk.from_arrow(schema.empty_table())

    # ------------------------------------------------------------------ metadata
    def describe(self, native: object) -> tuple[SchemaInfo | None, int, int]:
        if isinstance(native, pa.Table):
            return info_of_arrow(native.schema), int(native.num_rows), int(native.nbytes)
        if isinstance(native, pl.DataFrame):
            return None, native.height, int(native.estimated_size())
        raise TypeError(_not_native(native))

    def schema_info(self, native: object) -> SchemaInfo:
        if isinstance(native, pa.Table):
            return info_of_arrow(native.schema)
        if isinstance(native, pl.DataFrame):
            return info_of_frame(native)
        raise TypeError(_not_native(native))

    # ------------------------------------------------------------------ slice and concat
    def slice(self, chunk: TableChunk, offset: int, length: int | None = None) -> TableChunk:
        chunk = self._own(chunk, "slice")
        if type(offset) is not int or offset < 0:
            raise ValueError(f"slice: `offset` must be an int >= 0, got {offset!r}")
        if length is not None and (type(length) is not int or length < 0):
            raise ValueError(f"slice: `length` must be None or an int >= 0, got {length!r}")
        return chunk.slice(offset, length)

    def concat(self, chunks: Sequence[TableChunk]) -> TableChunk:
        chunks = [self._own(chunk, "concat") for chunk in chunks]
        if not chunks:
            raise ValueError("concat: no chunks to concatenate; got an empty sequence")
        info = chunks[0]._schema_info()
        for index, chunk in enumerate(chunks[1:], 1):
            other = chunk._schema_info()
            if other is not info and not other.arrow.equals(info.arrow, check_metadata=False):
                problems = "; ".join(schema_differences(info.arrow, other.arrow, of="chunk 0"))
                raise SchemaError(
                    f"concat: chunk {index} does not have the schema of chunk 0: {problems}; "
                    f"chunks are concatenated as they are, never cast; "
                    f"got {describe_schema(other.arrow)}"
                )
        if len(chunks) == 1:
            return chunks[0]
        frames = [frame for chunk in chunks if (frame := chunk._frame) is not None]
        if len(frames) == len(chunks):  # all held by Polars: the result stays in Polars
            joined = pl.concat(frames, how="vertical", rechunk=False)
            return TableChunk.from_polars(joined, schema=info.arrow)
        return TableChunk.from_arrow(pa.concat_tables([chunk.to_arrow() for chunk in chunks]))

    def project(self, chunk: TableChunk, columns: Sequence[str]) -> TableChunk:
        chunk = self._own(chunk, "project")
        columns = list(columns)
        info = chunk._schema_info()
        names = info.arrow.names
        missing = [name for name in columns if name not in names]
        if missing:
            listed = ", ".join(f"`{name}`" for name in missing)
            raise ColumnNotFoundError(
                f"project: column {listed} not found; columns are {names}; got {columns}"
            )
        if not columns:
            raise ValueError("project: `columns` must name at least one column; got []")
        if len(set(columns)) != len(columns):
            raise ValueError(f"project: `columns` names a column twice; got {columns}")
        schema = info_of_schema(
            pa.schema([info.arrow.field(name) for name in columns], metadata=info.arrow.metadata)
        ).arrow
        frame = chunk._frame
        if frame is not None:
            return TableChunk.from_polars(frame.select(columns), schema=schema)
        return TableChunk.from_arrow(chunk._arrow(canonical=False).select(columns))


def _kind(value: object) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _not_native(native: object) -> str:
    return f"the cpu backend's tables are pyarrow.Table and polars.DataFrame, got {_kind(native)}"
