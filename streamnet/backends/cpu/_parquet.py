"""The CPU backend's Parquet writing: pyarrow's writer, chunks as Arrow tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._files import ChunkWriter
from streamnet.io._stores import FilePath, StorePath

if TYPE_CHECKING:  # pyarrow.parquet loads on first use: importing the package stays light
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

__all__ = ["CpuParquet", "CpuParquetWriter", "dictionary_columns"]


class CpuParquetWriter(ChunkWriter):
    """One Parquet file written with ``pyarrow.parquet.ParquetWriter``.

    The file is opened at once (a path that cannot be written fails here); the
    writer is made with the first chunk, which shows which columns are worth a
    dictionary (`dictionary_columns`).
    """

    def __init__(
        self, backend: Backend, path: FilePath, schema: pa.Schema, compression: str
    ) -> None:
        import pyarrow.fs as pafs

        self._backend = backend
        self._schema = schema
        self._compression = _checked_codec(compression)
        where, filesystem = _where(path)
        self._sink: pa.NativeFile | None = (filesystem or pafs.LocalFileSystem()).open_output_stream(where)
        self._writer: pq.ParquetWriter | None = None

    def _open(self, sink: pa.NativeFile, first: pa.Table | None) -> pq.ParquetWriter:
        import pyarrow.parquet as pq

        dictionary = dictionary_columns(first) if first is not None else True
        with _codec_checked(self._compression):
            self._writer = pq.ParquetWriter(
                sink, self._schema, compression=self._compression, use_dictionary=dictionary
            )
        return self._writer

    def write(self, chunk: TableChunk, *, row_group_rows: int | None = None) -> None:
        if self._sink is None:
            raise ValueError("write: the Parquet writer is closed")
        table = self._backend.to_arrow(chunk)
        writer = self._writer if self._writer is not None else self._open(self._sink, table)
        writer.write_table(table, row_group_size=row_group_rows)

    def close(self) -> None:
        sink, self._sink = self._sink, None
        if sink is None:
            return
        try:
            writer = self._writer if self._writer is not None else self._open(sink, None)
            self._writer = None
            writer.close()
        finally:
            sink.close()


class CpuParquet(Backend):
    """Parquet files written with pyarrow (read through Polars' scan, in plans)."""

    def parquet_writer(
        self, path: FilePath, schema: pa.Schema, *, compression: str
    ) -> ChunkWriter:
        return CpuParquetWriter(self, path, schema, compression)

    def write_parquet(
        self,
        chunk: TableChunk,
        path: FilePath,
        *,
        compression: str,
        row_group_rows: int | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        table = self.to_arrow(chunk)
        where, filesystem = _where(path)
        with _codec_checked(compression):
            pq.write_table(
                table, where, compression=compression, row_group_size=row_group_rows,
                filesystem=filesystem, use_dictionary=dictionary_columns(table),
            )  # fmt: skip


SAMPLE_ROWS = 65_536
"""The rows of a file's first chunk that `dictionary_columns` looks at."""
REPEATS = 8
"""A column is dictionary-encoded when its sample holds at most one distinct value in this many rows."""


def dictionary_columns(table: pa.Table) -> list[str] | bool:
    """The columns of a file worth a dictionary, judged on ``table`` (its first rows): those
    whose values repeat (`REPEATS`), and those of a dictionary type; True (pyarrow's
    default: every column) when there are too few rows to tell.

    pyarrow tries a dictionary on every column chunk and gives it up only once it
    passes 1 MiB: a row group of 100,000 unique 8-byte values never does, and is
    encoded twice as slowly into a larger file than without one.
    """
    import pyarrow.compute as pc

    sample = table.slice(0, SAMPLE_ROWS)
    if sample.num_rows < SAMPLE_ROWS // 64:
        return True
    chosen = []
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            chosen.append(name)
        elif not pa.types.is_nested(kind):
            try:
                distinct = pc.count_distinct(column, mode="all").as_py()
            except pa.ArrowNotImplementedError:  # a type it cannot count: pyarrow's default
                chosen.append(name)
                continue
            if distinct * REPEATS <= sample.num_rows:
                chosen.append(name)
    return chosen


def _where(path: FilePath) -> tuple[str, pafs.FileSystem | None]:
    """What pyarrow's writers take for ``path``: the path, and the filesystem of a store's."""
    if isinstance(path, StorePath):
        return path.path, path.filesystem
    return str(path), None


def _checked_codec(compression: str) -> str:
    """``compression`` if Parquet has such a codec, else the `ValueError` of `_codec_checked`."""
    if isinstance(compression, str) and compression.lower() in ("none", "uncompressed"):
        return compression
    with _codec_checked(compression):
        try:
            known = isinstance(compression, str) and pa.Codec.is_available(compression)
        except ValueError as exc:
            raise pa.ArrowInvalid(f"unknown compression {compression!r}") from exc
        if not known:
            raise pa.ArrowInvalid(f"unknown compression {compression!r}")
    return compression


@contextlib.contextmanager
def _codec_checked(compression: object) -> Iterator[None]:
    """pyarrow's error for a codec it does not know as a `ValueError` naming it."""
    try:
        yield
    except pa.ArrowException as exc:
        if "compression" not in str(exc).lower():
            raise
        raise ValueError(
            f'write_parquet: `compression` must name a Parquet codec ("zstd", "snappy", '
            f'"gzip", "brotli", "lz4" or "none"); got {compression!r}'
        ) from exc
