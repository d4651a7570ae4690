"""TableChunk: one chunk of a table on one backend, possibly spilled."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from channels._message import Message
from streamnet._errors import SpillError
from streamnet._schema import (
    StreamSchema,
    arrow_schema_of,
    canonical_table,
    check_stream,
    polars_to_arrow,
)
from streamnet._spill import SpillDirectory

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["TableChunk", "TableView"]


class TableView:
    """A read-only view of a chunk's table (rapidsmpf's ``table_view()``)."""

    __slots__ = ("_table",)

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def num_rows(self) -> int:
        """Number of rows."""
        return int(self._table.num_rows)

    def num_columns(self) -> int:
        """Number of columns."""
        return int(self._table.num_columns)

    def column_names(self) -> list[str]:
        """Column names, in order."""
        return list(self._table.column_names)

    def schema(self) -> pa.Schema:
        """The Arrow schema."""
        return self._table.schema

    def __repr__(self) -> str:
        return f"<TableView {self._table.num_rows} rows x {self._table.num_columns} columns>"


class TableChunk:
    """One chunk of a table. On the CPU backend it holds a ``pyarrow.Table``.

    A chunk made from a Polars DataFrame keeps the frame and converts to Arrow
    only when asked (and the other way round), so a chain of Polars transforms
    never converts back and forth. Its Arrow types are the canonical ones, what
    Polars exports (``large_string``, ``large_binary``, ``large_list``...): a
    table of other flavours (``string``, ``string_view``, ``list``...) is cast
    when the chunk is made, so equal tables give equal schemas whatever their
    origin. A chunk may be spilled to disk to free memory and is loaded back
    transparently the next time its data is used; metadata (rows, columns,
    schema, bytes) never needs a load. Spilling and loading are atomic: a
    reader never sees a half-spilled chunk.

    Examples
    --------
    >>> import pyarrow as pa
    >>> chunk = TableChunk.from_arrow(pa.table({"a": [1, 2, 3]}))
    >>> chunk.num_rows, chunk.table_view().num_columns()
    (3, 1)
    >>> chunk.to_polars()["a"].sum()
    6
    >>> TableChunk.from_arrow(pa.table({"s": ["x"]})).schema.field("s").type
    DataType(large_string)
    """

    __slots__ = (
        "_frame",
        "_lock",
        "_nbytes",
        "_num_rows",
        "_polars_schema",
        "_schema",
        "_spill_path",
        "_table",
    )

    backend = "cpu"

    def __init__(self, table: pa.Table) -> None:
        if not isinstance(table, pa.Table):
            raise TypeError(
                "TableChunk holds a pyarrow.Table; use TableChunk.from_polars, from_pandas or "
                f"from_arrow for other inputs, got {type(table).__module__}.{type(table).__name__}"
            )
        table = canonical_table(table)
        self._table: pa.Table | None = table
        self._frame: pl.DataFrame | None = None
        self._num_rows = int(table.num_rows)
        self._schema: pa.Schema | None = table.schema
        self._polars_schema: tuple[list[str], list[Any]] | None = None
        self._nbytes = int(table.nbytes)
        self._spill_path: Path | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_arrow(cls, data: pa.Table | pa.RecordBatch) -> TableChunk:
        """A chunk from an Arrow table or record batch (no copy when its types are canonical)."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        return cls(data)

    @classmethod
    def from_polars(cls, df: pl.DataFrame) -> TableChunk:
        """A chunk from a Polars DataFrame (zero-copy where Arrow allows)."""
        import polars as pl

        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"from_polars takes a polars.DataFrame, got {type(df).__name__}")
        chunk = cls.__new__(cls)
        chunk._table = None
        chunk._frame = df
        chunk._num_rows = df.height
        chunk._schema = None
        chunk._polars_schema = None
        chunk._nbytes = int(df.estimated_size())
        chunk._spill_path = None
        chunk._lock = threading.Lock()
        return chunk

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, *, preserve_index: bool = False) -> TableChunk:
        """A chunk from a pandas DataFrame (the index is dropped unless ``preserve_index``)."""
        return cls(pa.Table.from_pandas(df, preserve_index=preserve_index))

    @classmethod
    def from_message(cls, msg: Message[Any]) -> TableChunk:
        """The TableChunk a message carries.

        Raises
        ------
        TypeError
            The message carries something else.
        """
        payload = msg.payload
        if not isinstance(payload, TableChunk):
            raise TypeError(
                f"message {msg.sequence_number} carries a {type(payload).__name__}, "
                "not a TableChunk"
            )
        return payload

    # ----------------------------------------------------------------- metadata
    @property
    def num_rows(self) -> int:
        """Number of rows."""
        return self._num_rows

    @property
    def num_columns(self) -> int:
        """Number of columns."""
        return len(self.column_names)

    @property
    def column_names(self) -> list[str]:
        """Column names, in order."""
        frame = self._frame
        if self._schema is None and frame is not None:
            return list(frame.columns)
        return list(self.schema.names)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema, with the canonical types (a Polars-held chunk is not converted)."""
        if self._schema is None:
            frame = self._frame
            self._schema = (
                arrow_schema_of(frame.schema) if frame is not None else self._arrow().schema
            )
        return self._schema

    def _names_and_dtypes(self) -> tuple[list[str], list[Any]] | None:
        """Column names and Polars types of a chunk held by Polars alone (its Arrow schema not
        yet known), else None: what its stream's check compares, cheaper than a schema."""
        frame = self._frame
        if self._schema is not None or frame is None:
            return None
        if self._polars_schema is None:
            self._polars_schema = (frame.columns, frame.dtypes)
        return self._polars_schema

    def __stream_check__(
        self, stream: StreamSchema | None, channel: str, sequence_number: int
    ) -> StreamSchema:
        """The stream's schema once this chunk entered ``channel`` (see `channels.Channel`).

        Raises
        ------
        SchemaError
            The chunk does not have the schema of the stream's first chunk.
        """
        return check_stream(stream, self, channel, sequence_number)

    @property
    def nbytes(self) -> int:
        """Bytes the table's buffers take in memory (also while spilled)."""
        return self._nbytes

    # ----------------------------------------------------------------- data
    def table_view(self) -> TableView:
        """A view of the table with ``num_rows()`` and ``num_columns()``."""
        return TableView(self._arrow())

    def to_arrow(self) -> pa.Table:
        """The data as a ``pyarrow.Table`` with the canonical types (no copy when it holds one)."""
        return self._arrow()

    def to_polars(self) -> pl.DataFrame:
        """The data as a Polars DataFrame (zero-copy where Arrow allows)."""
        import polars as pl

        frame = self._frame
        if frame is not None:
            return frame
        df = pl.from_arrow(self._arrow())
        assert isinstance(df, pl.DataFrame)
        self._frame = df
        return df

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("TableChunk.to_pandas needs pandas: pip install pandas") from exc
        return self._arrow().to_pandas()

    def __repr__(self) -> str:
        where = "spilled" if self.is_spilled else "in memory"
        return (
            f"<TableChunk {self._num_rows} rows x {self.num_columns} columns, "
            f"{self._nbytes} bytes, {where}>"
        )

    # ----------------------------------------------------------------- spilling
    @property
    def is_spilled(self) -> bool:
        """True while the data lives on disk rather than in memory."""
        return self._spill_path is not None

    def spill(self, directory: SpillDirectory | str | os.PathLike[str] | None = None) -> int:
        """Write the data to an Arrow IPC file and free it from memory.

        ``directory`` is where: a Context's spill directory (``ctx.spills``), or
        a folder. By default, that of the Context of the running actor, and
        outside any actor Python's temporary directory. Returns the bytes freed
        (0 if already spilled). The file is removed when the chunk is loaded
        again or garbage-collected, when the run that spilled it fails, or when
        its Context closes (see :class:`SpillDirectory`).

        Raises
        ------
        SpillError
            The file cannot be written (a full disk); the message names it.
        """
        with self._lock:
            if self._spill_path is not None:
                return 0
            table = self._table
            if table is None:
                assert self._frame is not None
                table = polars_to_arrow(self._frame)
            if directory is None:
                from streamnet._actor import current_actor

                node = current_actor()
                directory = node.ctx.spills if node is not None else None
            if isinstance(directory, SpillDirectory):
                path = directory.new_file(self._nbytes)
            else:
                folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"streamnet-spill-{uuid.uuid4().hex}.arrow"
            try:
                with (
                    pa.OSFile(str(path), "wb") as sink,
                    pa.ipc.new_file(sink, table.schema) as writer,
                ):
                    writer.write_table(table)
            except OSError as exc:
                path.unlink(missing_ok=True)
                raise SpillError(f"cannot spill a chunk to `{path}`: {exc}") from exc
            self._spill_path = path
            self._schema = table.schema
            self._table = None
            self._frame = None
            return int(self._nbytes)

    def make_available(self) -> TableChunk:
        """Load the data back into memory if it was spilled; returns self."""
        if self._spill_path is not None:
            self._arrow()
        return self

    def _arrow(self) -> pa.Table:
        table = self._table
        if table is not None:
            return table
        with self._lock:
            if self._table is None:
                path = self._spill_path
                if path is not None:
                    try:
                        with pa.OSFile(str(path), "rb") as source:
                            self._table = pa.ipc.open_file(source).read_all()
                    except FileNotFoundError as exc:
                        raise SpillError(
                            f"chunk spilled to `{path}` cannot be loaded: its file is gone (a "
                            "failed run removes the files of the chunks it spilled, and a "
                            "closed Context all of its own); got no file at that path"
                        ) from exc
                    path.unlink(missing_ok=True)
                    self._spill_path = None
                else:
                    assert self._frame is not None
                    self._table = polars_to_arrow(self._frame)
            return self._table

    def __del__(self) -> None:
        path = getattr(self, "_spill_path", None)
        if path is not None:
            with contextlib.suppress(OSError):  # best effort, also at interpreter exit
                path.unlink(missing_ok=True)
