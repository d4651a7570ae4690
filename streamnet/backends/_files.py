"""ChunkReader and ChunkWriter: a file read or written chunk by chunk, as a backend opens it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from streamnet._table_chunk import TableChunk

__all__ = ["ChunkReader", "ChunkWriter"]


class ChunkReader(ABC):
    """A file (or part of one) read chunk by chunk: made by a backend's files facet
    (`Backend.csv_reader`).

    Its methods block (they read and parse): call them in the Context's thread
    pool. Not thread-safe: one reader is read by one actor.
    """

    @property
    @abstractmethod
    def schema(self) -> pa.Schema:
        """The file's schema, known once it is open (before any chunk); every chunk has
        its canonical form (as `TableChunk.schema` gives it)."""

    @abstractmethod
    def next(self) -> TableChunk | None:
        """The next chunk, or None at the end (then None again).

        Raises
        ------
        FileReadError
            The file's bytes are not what the reader was told to read; the message
            names the file (and the line, the column and the fix, where they can be told).
        """

    @abstractmethod
    def close(self) -> None:
        """Release the file. Idempotent; `next` then gives None."""


class ChunkWriter(ABC):
    """One file written chunk by chunk: made by a backend's files facet (`Backend.parquet_writer`).

    Its methods block (they encode and write): call them in the Context's thread
    pool. The file is complete once `close` returned.
    """

    @abstractmethod
    def write(self, chunk: TableChunk, *, row_group_rows: int | None = None) -> None:
        """Append the rows of ``chunk``, in row groups of at most ``row_group_rows`` rows
        (one per chunk when None).

        Raises
        ------
        ValueError
            ``chunk`` does not have the schema the writer was opened with.
        OSError
            The file cannot be written (a full disk...).
        """

    @abstractmethod
    def close(self) -> None:
        """Finish the file (its footer) and release it. Idempotent.

        Raises
        ------
        OSError
            The file cannot be finished.
        """
