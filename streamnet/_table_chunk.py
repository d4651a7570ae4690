"""TableChunk: one chunk of a table on one backend, possibly spilled.

One class, one module (above 400 lines): the chunk's forms (an Arrow table, a
Polars frame, a file it was spilled to) share one lock and one state.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from channels import Message
from streamnet._errors import SchemaError, SpillError
from streamnet._schema import (
    CANNOT_HOLD,
    SchemaInfo,
    StreamSchema,
    check_stream,
    describe_schema,
    info_of_arrow,
    info_of_frame,
    polars_to_arrow,
)
from streamnet.memory._spill import SpillDirectory

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["TableChunk", "TableView"]


class TableView:
    """A read-only view of a chunk's table (rapidsmpf's ``table_view()``).

    Its metadata needs no data: asking a chunk held by Polars for its view
    converts nothing.
    """

    __slots__ = ("_chunk",)

    def __init__(self, chunk: TableChunk) -> None:
        self._chunk = chunk

    def num_rows(self) -> int:
        """Number of rows."""
        return self._chunk.num_rows

    def num_columns(self) -> int:
        """Number of columns."""
        return self._chunk.num_columns

    def column_names(self) -> list[str]:
        """Column names, in order."""
        return self._chunk.column_names

    def schema(self) -> pa.Schema:
        """The Arrow schema (with the canonical types)."""
        return self._chunk.schema

    def __repr__(self) -> str:
        return f"<TableView {self.num_rows()} rows x {self.num_columns()} columns>"


class TableChunk:
    """One chunk of a table. On the CPU backend it holds a ``pyarrow.Table``.

    A chunk made from a Polars DataFrame keeps the frame and converts to Arrow
    only when asked (and the other way round), so a chain of Polars transforms
    never converts back and forth. Its schema has the canonical Arrow types,
    what Polars exports (``large_string``, ``large_binary``, ``large_list``...):
    equal tables give equal schemas whatever their origin. A table of other
    flavours (``string``, ``string_view``, ``list``...) is kept as it is and
    cast only when asked for as Arrow (``to_arrow``, in the kernel that asks);
    no other type is ever changed. A chunk may be spilled to disk to free memory
    and is loaded back transparently the next time its data is used; metadata
    (rows, columns, schema, bytes) never needs a load. Spilling and loading are
    atomic: a reader never sees a half-spilled chunk.

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
        "_canonical",
        "_frame",
        "_info",
        "_lock",
        "_nbytes",
        "_num_rows",
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
        info = info_of_arrow(table.schema)
        self._table: pa.Table | None = table
        # Whether the table has the canonical flavours already (else to_arrow casts it).
        self._canonical = table.schema.equals(info.arrow, check_metadata=False)
        self._frame: pl.DataFrame | None = None
        self._num_rows = int(table.num_rows)
        self._info: SchemaInfo | None = info
        self._nbytes = int(table.nbytes)
        self._spill_path: Path | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_arrow(cls, data: pa.Table | pa.RecordBatch) -> TableChunk:
        """A chunk from an Arrow table or record batch (no copy: other flavours than the
        canonical ones are cast only when the chunk is asked for as Arrow)."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        return cls(data)

    @classmethod
    def from_polars(cls, df: pl.DataFrame, *, schema: pa.Schema | None = None) -> TableChunk:
        """A chunk from a Polars DataFrame (zero-copy where Arrow allows).

        ``schema`` is the frame's Arrow schema if the caller knows it, as
        `TableChunk.schema` gives it (the schema of the chunks a kernel made
        from frames of the same types): the chunk then shares it, which makes
        the checks of its channels an identity comparison. It must be right;
        by default it is worked out from the frame's types when first needed.
        """
        import polars as pl

        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"from_polars takes a polars.DataFrame, got {type(df).__name__}")
        info = None
        if schema is not None:
            if not isinstance(schema, pa.Schema):
                raise TypeError(
                    f"from_polars: `schema` must be a pyarrow.Schema, got {type(schema).__name__}"
                )
            if len(schema) != df.width:
                raise ValueError(
                    f"from_polars: `schema` has {len(schema)} columns, the frame has "
                    f"{df.width}; got {schema.names}"
                )
            info = info_of_arrow(schema)
        chunk: TableChunk = cls.__new__(cls)
        chunk._table = None
        chunk._canonical = True
        chunk._frame = df
        chunk._num_rows = df.height
        chunk._info = info
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
        info = self._info
        if info is None and self._frame is not None:
            return int(self._frame.width)
        return len(self.schema)

    @property
    def column_names(self) -> list[str]:
        """Column names, in order."""
        info = self._info
        if info is None and self._frame is not None:
            return list(self._frame.columns)
        return list(self.schema.names)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema, with the canonical types (no data is converted for it).

        Chunks of equal schemas share one schema object.

        Raises
        ------
        SchemaError
            A chunk held by Polars has a column of a type Arrow cannot hold.
        """
        return self._schema_info().arrow

    def _schema_info(self) -> SchemaInfo:
        info = self._info
        if info is None:
            frame = self._frame
            assert frame is not None  # only a chunk held by Polars learns its schema late
            info = self._info = info_of_frame(frame)
        return info

    def __stream_check__(
        self, stream: StreamSchema | None, channel: str, sequence_number: int
    ) -> StreamSchema:
        """The stream's schema once this chunk entered ``channel`` (see `channels.Channel`).

        Raises
        ------
        SchemaError
            The chunk does not have the schema of the stream's first chunk.
        """
        return check_stream(stream, self._schema_info(), channel, sequence_number)

    @property
    def nbytes(self) -> int:
        """Bytes the table's buffers take in memory (also while spilled)."""
        return self._nbytes

    # ----------------------------------------------------------------- data
    def slice(self, offset: int = 0, length: int | None = None) -> TableChunk:
        """Rows ``offset`` to ``offset + length`` (to the end when None) as a chunk of the
        same schema, without copying or converting data."""
        info = self._schema_info()  # worked out once for all the slices of a chunk
        frame = self._frame
        if frame is not None:
            part: TableChunk = TableChunk.from_polars(frame.slice(offset, length))
            part._info = info
            return part
        piece: TableChunk = TableChunk.from_arrow(self._arrow(canonical=False).slice(offset, length))
        piece._canonical = self._canonical
        piece._info = info
        return piece

    def table_view(self) -> TableView:
        """A view of the table with ``num_rows()`` and ``num_columns()``."""
        return TableView(self)

    def to_arrow(self) -> pa.Table:
        """The data as a ``pyarrow.Table`` with the canonical types.

        No copy when the chunk holds such a table; a table of other flavours
        (``string``...) is cast once, here (call it from a kernel thread for a
        large chunk: ``await ctx.to_thread(chunk.to_arrow)``).
        """
        return self._arrow(canonical=True)

    def to_polars(self, *, convert: Iterable[str] = ()) -> pl.DataFrame:
        """The data as a Polars DataFrame (zero-copy where Arrow allows).

        A column of a type Polars does not hold exactly (``date64``,
        ``timestamp[s]``, ``time32``, ``fixed_size_binary``, an extension type,
        ``decimal256``...) is never converted silently: it raises, unless it is
        named in ``convert``, for a caller that converts it on purpose (as
        ``actors.cast`` does); it then gets Polars' nearest type
        (``timestamp[s]`` becomes ``Datetime("ms")``).

        Raises
        ------
        SchemaError
            A column's type is one Polars does not hold exactly, or cannot hold;
            the message names the column, its type and what Polars would make of it.
        """
        import polars as pl

        frame = self._frame
        if frame is not None:
            return frame
        info = self._schema_info()
        inexact = info.inexact()
        if inexact:
            allowed = set(convert)
            refused = [c for c in inexact if c[0] not in allowed or c[2] == CANNOT_HOLD]
            if refused:
                raise _not_exact(refused)
        table = self._arrow(canonical=False)
        try:
            df = pl.from_arrow(table)
        except Exception:  # a flavour Polars cannot import (list views): the canonical one
            df = pl.from_arrow(self._arrow(canonical=True))
        assert isinstance(df, pl.DataFrame)
        if not inexact:  # keep it: the frame is the chunk's data, exactly
            self._frame = df
        return df

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("TableChunk.to_pandas needs pandas: pip install pandas") from exc
        return self._arrow(canonical=True).to_pandas()

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
                self._schema_info()  # known before the frame goes
                table = self._exported()
                self._canonical = True
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
            self._table = None
            self._frame = None
            return int(self._nbytes)

    def make_available(self) -> TableChunk:
        """Load the data back into memory if it was spilled; returns self."""
        if self._spill_path is not None:
            self._arrow(canonical=False)
        return self

    def _arrow(self, *, canonical: bool) -> pa.Table:
        """The Arrow table, loaded if spilled; with ``canonical``, cast to the canonical
        flavours if it has others."""
        table = self._table
        if table is not None and (self._canonical or not canonical):
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
                    self._table = self._exported()
                    self._canonical = True
            if canonical and not self._canonical:
                self._table = self._table.cast(self._schema_info().arrow)
                self._canonical = True
            return self._table

    def _exported(self) -> pa.Table:
        """The Polars frame as Arrow, checked against the schema the chunk was given."""
        assert self._frame is not None
        table = polars_to_arrow(self._frame)
        info = self._schema_info()
        if not table.schema.equals(info.arrow, check_metadata=False):
            raise SchemaError(
                "a chunk made with `TableChunk.from_polars(df, schema=...)` was given a schema "
                f"that is not its frame's: {describe_schema(info.arrow)}; "
                f"got {describe_schema(table.schema)}"
            )
        return table

    def __del__(self) -> None:
        path = getattr(self, "_spill_path", None)
        if path is not None:
            with contextlib.suppress(OSError):  # best effort, also at interpreter exit
                path.unlink(missing_ok=True)


def _not_exact(columns: list[tuple[str, pa.DataType, str]]) -> SchemaError:
    """The error of a chunk that cannot become a Polars frame without changing types."""
    from streamnet._actor import current_actor_name

    actor = current_actor_name()
    where = f"actor `{actor}`: " if actor else ""
    listed = "; ".join(f"column `{name}` has type {dtype}, and {why}" for name, dtype, why in columns)
    if all(why == CANNOT_HOLD for _, _, why in columns):
        fix = "cast the source table with pyarrow to a type Polars has"
    else:
        fix = (
            "cast them first to a type Polars has, with `actors.cast` (or cast the source "
            "table)"
        )
    return SchemaError(
        f"{where}{listed}; Polars does not hold these types exactly, so they are not converted "
        f"implicitly: {fix}; got {', '.join(str(dtype) for _, dtype, _ in columns)}"
    )
