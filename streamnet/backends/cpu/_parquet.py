"""The CPU backend's Parquet writing: pyarrow's writer, chunks as Arrow tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._files import ChunkWriter

if TYPE_CHECKING:  # pyarrow.parquet loads on first use: importing the package stays light
    import pyarrow.parquet as pq

__all__ = ["CpuParquet", "CpuParquetWriter"]


class CpuParquetWriter(ChunkWriter):
    """One Parquet file written with ``pyarrow.parquet.ParquetWriter``."""

    def __init__(self, backend: Backend, path: Path, schema: pa.Schema, compression: str) -> None:
        import pyarrow.parquet as pq

        self._backend = backend
        with _codec_checked(compression):
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                str(path), schema, compression=compression
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

    def parquet_writer(self, path: Path, schema: pa.Schema, *, compression: str) -> ChunkWriter:
        return CpuParquetWriter(self, path, schema, compression)

    def write_parquet(
        self,
        chunk: TableChunk,
        path: Path,
        *,
        compression: str,
        row_group_rows: int | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        table = self.to_arrow(chunk)
        with _codec_checked(compression):
            pq.write_table(table, path, compression=compression, row_group_size=row_group_rows)


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
