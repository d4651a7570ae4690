"""TableChunk: one chunk of a table, a handle on a backend's native table.

The chunk holds its backend, the backend's table and what it knows of it
without touching data (schema, rows, bytes); every operation on data is the
backend's (``streamnet.backends``).

The module stays whole (above 400 lines): it is the public surface users and
rapidsmpf's examples know (constructors, host conversions, metadata, spilling,
the table view), each member a few delegating lines, documented in one place.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from channels import Message
from channels.lowlevel import import_lazily
from streamnet._errors import SchemaError
from streamnet._schema import (
    SchemaInfo,
    StreamSchema,
    check_stream,
    info_of_arrow,
)
from streamnet._typing import BackendName, Tier
from streamnet.memory._spill import SpillDirectory

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")

__all__ = ["TableChunk", "TableView"]


class _Backend(Protocol):
    """What a chunk asks of its `streamnet.Backend` (whose module imports this one)."""

    @property
    def name(self) -> BackendName: ...
    @property
    def tiers(self) -> tuple[Tier, ...]: ...
    def from_arrow(self, data: pa.Table | pa.RecordBatch) -> TableChunk: ...
    def from_polars(self, df: pl.DataFrame, *, schema: pa.Schema | None = None) -> TableChunk: ...
    def from_pandas(self, df: pd.DataFrame, *, preserve_index: bool = False) -> TableChunk: ...
    def to_arrow(self, chunk: TableChunk) -> pa.Table: ...
    def to_polars(self, chunk: TableChunk, *, convert: Iterable[str] = ()) -> pl.DataFrame: ...
    def to_pandas(self, chunk: TableChunk) -> pd.DataFrame: ...
    def describe(
        self, native: object, *, info: SchemaInfo | None = None
    ) -> tuple[SchemaInfo | None, int, int]: ...
    def schema_info(self, native: object) -> SchemaInfo: ...
    def slice(self, chunk: TableChunk, offset: int, length: int | None = None) -> TableChunk: ...
    def residence(self, chunk: TableChunk) -> Tier: ...
    def nbytes_in(self, chunk: TableChunk, tier: Tier) -> int: ...
    def spill(
        self, chunk: TableChunk, *, to: Tier = "disk", directory: SpillDirectory | Path
    ) -> int: ...
    def make_available(self, chunk: TableChunk) -> None: ...
    def make_available_cost(self, chunk: TableChunk) -> int: ...
    def native_view(self, chunk: TableChunk) -> object: ...


class TableView:
    """A read-only view of a chunk's table (rapidsmpf's ``table_view()``).

    Its metadata needs no data: asking a chunk held by Polars for its view
    converts nothing.
    """

    __slots__ = ("_backend", "_chunk")

    def __init__(self, chunk: TableChunk, backend: _Backend) -> None:
        self._chunk = chunk
        self._backend = backend

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

    def native(self) -> object:
        """The backend's own table: a ``pyarrow.Table`` (canonical types) on the CPU.

        Made available first if the chunk was spilled.
        """
        return self._backend.native_view(self._chunk)

    def __repr__(self) -> str:
        return f"<TableView {self.num_rows()} rows x {self.num_columns()} columns>"


class TableChunk:
    """One chunk of a table, on one backend. On the CPU backend it holds a ``pyarrow.Table``.

    A handle: it holds the `Backend` that owns the table, the backend's native
    table, and the table's schema, rows and bytes, known without touching data.
    On the CPU a chunk made from a Polars DataFrame keeps the frame and converts
    to Arrow only when asked (and the other way round), so a chain of Polars
    transforms never converts back and forth. Its schema has the canonical Arrow
    types, what Polars exports (``large_string``, ``large_binary``,
    ``large_list``...): equal tables give equal schemas whatever their origin. A
    table of other flavours (``string``, ``string_view``, ``list``...) is kept as
    it is and cast only when asked for as Arrow (``to_arrow``, in the kernel that
    asks); no other type is ever changed. A chunk may be spilled to a slower tier
    (on the CPU: from host memory to disk) to free memory and is made available
    again transparently the next time its data is used; metadata (rows, columns,
    schema, bytes) never needs it. Spilling and loading are atomic: a reader
    never sees a half-spilled chunk.

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
    >>> chunk.backend, chunk.residence, chunk.is_available
    ('cpu', 'host', True)
    """

    __slots__ = ("_backend", "_info", "_native", "_nbytes", "_num_rows")
    _backend: _Backend  # the Backend object (``backend`` is its name)
    _native: object  # the backend's table (on the CPU a `CpuTable`, which knows if it spilled)
    _info: SchemaInfo | None  # interned: channel checks are identity checks; None until asked
    _num_rows: int
    _nbytes: int

    def __init__(self, table: pa.Table) -> None:
        if not isinstance(table, pa.Table):
            raise TypeError(
                "TableChunk holds a pyarrow.Table; use TableChunk.from_polars, from_pandas or "
                f"from_arrow for other inputs, got {type(table).__module__}.{type(table).__name__}"
            )
        made: TableChunk = _backend_here(None).from_arrow(table)
        self._backend = made._backend
        self._native = made._native
        self._info = made._info
        self._num_rows = made._num_rows
        self._nbytes = made._nbytes

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_native(
        cls,
        backend: _Backend,
        native: object,
        *,
        schema: pa.Schema | None = None,
        like: TableChunk | None = None,
    ) -> TableChunk:
        """A chunk of one of ``backend``'s native tables (for backends; users call the
        ``from_*`` constructors).

        ``schema``, if given, is the table's schema with the canonical types,
        as `TableChunk.schema` gives it (a kernel that knows its output schema):
        the chunk then shares it, which makes the checks of its channels an
        identity comparison. ``like``, instead, is a chunk of the same schema
        (the chunk a slice or a concatenation came from): the chunk shares its
        schema without looking it up. It must be right; by default the backend
        works it out, when first needed where that costs a conversion.

        Raises
        ------
        TypeError
            ``native`` is not one of the backend's tables.
        """
        known = None
        if like is not None:
            source: TableChunk = like
            known = source._schema_info()
        elif schema is not None:
            known = info_of_arrow(schema)
        info, rows, nbytes = backend.describe(native, info=known)
        chunk: TableChunk = cls.__new__(cls)
        chunk._backend = backend
        chunk._native = native
        chunk._info = known if known is not None else info
        chunk._num_rows = rows
        chunk._nbytes = nbytes
        return chunk

    @classmethod
    def from_arrow(
        cls, data: pa.Table | pa.RecordBatch, *, backend: _Backend | None = None
    ) -> TableChunk:
        """A chunk from an Arrow table or record batch (no copy on the CPU: other
        flavours than the canonical ones are cast only when the chunk is asked
        for as Arrow).

        ``backend`` is where the chunk lives: by default the running actor's
        (``ctx.backend``), outside any actor the process's default backend
        (see `default_backend`).
        """
        return _backend_here(backend).from_arrow(data)

    @classmethod
    def from_polars(
        cls,
        df: pl.DataFrame,
        *,
        schema: pa.Schema | None = None,
        backend: _Backend | None = None,
    ) -> TableChunk:
        """A chunk from a Polars DataFrame (zero-copy on the CPU where Arrow allows).

        ``schema`` is the frame's Arrow schema if the caller knows it, as
        `TableChunk.schema` gives it (the schema of the chunks a kernel made
        from frames of the same types): the chunk then shares it, which makes
        the checks of its channels an identity comparison. It must be right;
        by default it is worked out from the frame's types when first needed.
        ``backend`` as for `from_arrow`.
        """
        return _backend_here(backend).from_polars(df, schema=schema)

    @classmethod
    def from_pandas(
        cls, df: pd.DataFrame, *, preserve_index: bool = False, backend: _Backend | None = None
    ) -> TableChunk:
        """A chunk from a pandas DataFrame (the index is dropped unless ``preserve_index``).

        ``backend`` as for `from_arrow`.
        """
        return _backend_here(backend).from_pandas(df, preserve_index=preserve_index)

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

    # ----------------------------------------------------------------- for backends
    def native_for(self, backend: _Backend) -> object:
        """The backend's native table of this chunk, as it is (for backends: the one way
        they reach a chunk's data; a spilled chunk's table says where its data went).

        Raises
        ------
        TypeError
            The chunk belongs to another backend; the message names both and the fix.
        """
        own = self._backend
        if own is not backend and self.backend != backend.name:
            raise TypeError(
                f"a chunk of the `{self.backend}` backend was given to the `{backend.name}` "
                f"backend; move it with `backend.from_arrow(chunk.to_arrow())`; got {self!r}"
            )
        return self._native

    # ----------------------------------------------------------------- metadata
    @property
    def backend(self) -> BackendName:
        """The name of the backend that holds the chunk (``"cpu"``)."""
        return self._backend.name

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
        """Column names, in order (also of a frame with a type Arrow cannot hold)."""
        try:
            return list(self._schema_info().arrow.names)
        except SchemaError:  # a Polars frame of such a type: it still has its names
            return list(self._backend.to_polars(self).columns)

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
        if info is None:  # only a chunk held by Polars learns its schema late
            info = self._info = self._backend.schema_info(self._native)
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
        return self._backend.slice(self, offset, length)

    def table_view(self) -> TableView:
        """A view of the table with ``num_rows()``, ``num_columns()`` and ``native()``."""
        return TableView(self, self._backend)

    def to_arrow(self) -> pa.Table:
        """The data as a ``pyarrow.Table`` with the canonical types.

        No copy when the chunk holds such a table; a table of other flavours
        (``string``...) is cast once, here (call it from a kernel thread for a
        large chunk: ``await ctx.to_thread(chunk.to_arrow)``).
        """
        return self._backend.to_arrow(self)

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
        return self._backend.to_polars(self, convert=convert)

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame (needs pandas installed)."""
        return self._backend.to_pandas(self)

    def __repr__(self) -> str:
        where = "in memory" if self.is_available else f"spilled to {self.residence}"
        return (
            f"<TableChunk {self._num_rows} rows x {self.num_columns} columns, "
            f"{self._nbytes} bytes, {where}>"
        )

    # ----------------------------------------------------------------- tiers
    @property
    def residence(self) -> Tier:
        """The memory tier the data is in (on the CPU ``"host"``, or ``"disk"`` while spilled)."""
        return self._backend.residence(self)

    @property
    def is_available(self) -> bool:
        """True while the data is in the backend's fastest tier, ready for kernels."""
        return self._backend.residence(self) == self._backend.tiers[0]

    @property
    def is_spilled(self) -> bool:
        """True while the data lives in a slower tier (on the CPU: on disk)."""
        return not self.is_available

    def nbytes_in(self, tier: Tier) -> int:
        """Bytes the data takes in ``tier`` (0 in a tier it is not in).

        Raises
        ------
        ValueError
            The backend has no such tier.
        """
        return self._backend.nbytes_in(self, tier)

    def make_available_cost(self) -> int:
        """Bytes the fastest tier must find to make the chunk available (0 if it is)."""
        return self._backend.make_available_cost(self)

    def spill(self, directory: SpillDirectory | str | os.PathLike[str] | None = None) -> int:
        """Move the data to the backend's slowest tier (on the CPU: an Arrow IPC file).

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
        if directory is None:
            node = _imported().current_actor()
            directory = node.ctx.spills if node is not None else Path(tempfile.gettempdir())
        elif not isinstance(directory, SpillDirectory):
            directory = Path(directory)
        self._schema_info()  # known before the data goes
        backend = self._backend
        return backend.spill(self, to=backend.tiers[-1], directory=directory)

    def make_available(self) -> TableChunk:
        """Bring the data back to the backend's fastest tier if it was spilled; returns self."""
        self._backend.make_available(self)
        return self


_process_backends: dict[str, _Backend] = {}


def _backend_here(backend: _Backend | None) -> _Backend:
    """``backend``, else the running actor's, else the process's default one (made once)."""
    if backend is not None:
        given: object = backend
        if not isinstance(given, _imported().Backend):
            raise TypeError(
                f"`backend` must be a streamnet.Backend (such as `ctx.backend`) or None, "
                f"got {type(backend).__name__}"
            )
        return backend
    runtime = _imported()
    node = runtime.current_actor()
    if node is not None:
        here: _Backend = node.ctx.backend
        return here
    name = runtime.default_backend()
    made = _process_backends.get(name)
    if made is None:
        new: _Backend = runtime.backend_for(name)
        made = _process_backends.setdefault(name, new)
    return made


class _Runtime:
    """The runtime's functions a chunk needs, imported once, when first used (they
    import this module)."""

    def __init__(self) -> None:
        from streamnet._actor import current_actor
        from streamnet.backends._base import Backend
        from streamnet.backends._registry import backend_for, default_backend

        self.current_actor = current_actor
        self.Backend = Backend
        self.backend_for = backend_for
        self.default_backend = default_backend


@functools.cache
def _imported() -> _Runtime:
    return _Runtime()
