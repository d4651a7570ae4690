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

__all__ = ["CpuParquet", "CpuParquetWriter"]


class CpuParquetWriter(ChunkWriter):
    """One Parquet file written with ``pyarrow.parquet.ParquetWriter``."""

    def __init__(
        self, backend: Backend, path: FilePath, schema: pa.Schema, compression: str
    ) -> None:
        import pyarrow.parquet as pq

        self._backend = backend
        where, filesystem = _where(path)
        with _codec_checked(compression):
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                where, schema, compression=compression, filesystem=filesystem
            )

    def write(self, chunk: TableChunk, *, row_group_rows: int | None = None) -> None:
        if self._writer is None:
            raise ValueError("write: the Parquet writer is closed")
        table = self._backend.to_arrow(chunk)
        self._writer.write_table(table, row_group_size=row_group_rows)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


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
                filesystem=filesystem,
            )  # fmt: skip


def _where(path: FilePath) -> tuple[str, pafs.FileSystem | None]:
    """What pyarrow's writers take for ``path``: the path, and the filesystem of a store's."""
    if isinstance(path, StorePath):
        return path.path, path.filesystem
    return str(path), None


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
